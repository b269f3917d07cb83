"""play(): a whole batch of games between two players inside one jitted function.

Chance writes each opening, the players read it (a model player in one prefill pass),
then a ``lax.while_loop`` advances every game by one token per iteration until all
have ended: no Python loop per token. ``start``, ``advance`` and ``finish`` are the parts
of ``play``, public so that a caller can drive the games one token at a time.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax.players import Player


class Table(NamedTuple):
  """A batch of games in progress with what has been recorded of them (``[B, ...]``)."""
  state: game_lib.GameState
  carries: tuple[Any, Any]
  logprob: jax.Array  # [B, T]
  value: jax.Array  # [B, T]
  reward: jax.Array  # [B, T, 2]
  opening_length: jax.Array  # [B]


def start(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
          key: jax.Array, batch_size: int, group_size: int = 1) -> Table:
  """Chance writes ``batch_size`` openings and both players read them.

  Each run of ``group_size`` adjacent games shares one opening (the same chance move).
  """
  if len(players) != 2 or len(params) != 2:
    raise ValueError(f"play takes two players and two params, got {len(players)} and "
                     f"{len(params)}")
  if group_size < 1 or batch_size % group_size:
    raise ValueError(f"group_size={group_size} must divide batch_size={batch_size}")

  def one(k_game, key):
    k_one, k_two = jax.random.split(key)
    state = game_lib.init(game, k_game)
    carries = (players[0].init(params[0], state, k_one), players[1].init(params[1], state, k_two))
    return state, carries

  k_chance, k_players = jax.random.split(key)
  chance = jnp.repeat(jax.random.split(k_chance, batch_size // group_size), group_size, axis=0)
  state, carries = jax.vmap(one)(chance, jax.random.split(k_players, batch_size))
  t = game.max_length
  return Table(state, carries, jnp.zeros((batch_size, t)), jnp.zeros((batch_size, t)),
               jnp.zeros((batch_size, t, 2)), state.length)


def advance(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
            table: Table, key: jax.Array) -> Table:
  """Every unfinished game of the table advances by one token."""

  def one(state, carries, key):
    k_one, k_two = jax.random.split(key)
    move_one, carry_one = players[0].act(params[0], carries[0], state, k_one)
    move_two, carry_two = players[1].act(params[1], carries[1], state, k_two)
    move = jax.tree.map(lambda a, b: jnp.where(state.to_move == game_lib.ONE, a, b),
                        move_one, move_two)
    next_state, reward = game_lib.step(game, state, move.token)
    return next_state, (carry_one, carry_two), move, reward

  keys = jax.random.split(key, table.opening_length.shape[0])
  state, carries, move, reward = jax.vmap(one)(table.state, table.carries, keys)
  # Finished games record nothing: their index points past the end and is dropped.
  pos = jnp.where(table.state.done, game.max_length, table.state.length)
  rows = jnp.arange(pos.shape[0])

  def record(buffer, x):
    return buffer.at[rows, pos].set(x, mode="drop")

  return Table(state, carries, record(table.logprob, move.logprob),
               record(table.value, move.value), record(table.reward, reward),
               table.opening_length)


def finish(table: Table) -> game_lib.Trajectory:
  """The trajectory of a table whose games have ended."""
  s = table.state
  return game_lib.Trajectory(s.tokens, s.owner, table.logprob, table.value, table.reward,
                             table.opening_length, s.length, s.returns, s.hidden)


@functools.partial(jax.jit, static_argnames=("game", "players", "batch_size", "group_size"))
def run(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
        key: jax.Array, batch_size: int, group_size: int = 1) -> Table:
  """``play``, returning the finished table: the trajectory's parts and the players'
  final carries (e.g. which player of a ``players.mixture`` played each game)."""
  k_start, k_play = jax.random.split(key)
  table = start(game, players, params, k_start, batch_size, group_size)

  def body(carry):
    table, key = carry
    key, sub = jax.random.split(key)
    return advance(game, players, params, table, sub), key

  table, _ = jax.lax.while_loop(lambda c: ~jnp.all(c[0].state.done), body, (table, k_play))
  return table


@functools.partial(jax.jit, static_argnames=("game", "players", "batch_size", "group_size"))
def play(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
         key: jax.Array, batch_size: int, group_size: int = 1) -> game_lib.Trajectory:
  """Plays ``batch_size`` games of ``game`` between ``players[0]`` (player one) and
  ``players[1]`` (player two).

  Args:
    game: the game (static).
    players: player one and player two (static; hashable NamedTuples of functions).
    params: each player's parameters (``None`` for scripted players).
    key: PRNG key; the same key plays the same games.
    batch_size: number of games (static).
    group_size: adjacent games that share an opening (static), e.g. the continuations
      of one prompt that GRPO compares.

  Returns:
    The ``Trajectory`` of the finished games, ``[batch_size, game.max_length, ...]``.
  """
  return finish(run(game, players, params, key, batch_size, group_size))
