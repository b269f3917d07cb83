"""play(): a whole batch of games between two players inside one jitted function.

Chance writes each opening, the players read it (a model player in one prefill pass),
then a ``lax.while_loop`` advances every game by one token per iteration until all
have ended: no Python loop per token. ``start``, ``advance`` and ``finish`` are the parts
of ``play``, public so that a caller can drive the games one token at a time;
``play_out`` returns the games in play at their end (``InPlay``), the players' carries
with them.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax import vocab
from twoplayer_jax.players import Player


class InPlay(NamedTuple):
  """A batch of games in play with what has been recorded of them (``[B, ...]``)."""
  state: game_lib.GameState
  carries: tuple[Any, Any]
  logprob: jax.Array  # [B, T]
  value: jax.Array  # [B, T]
  reward: jax.Array  # [B, T, 2]
  legal: jax.Array | None  # [B, T, V] when the game restricts moves, else None


def start(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
          key: jax.Array, batch_size: int, group_size: int = 1) -> InPlay:
  """Chance writes ``batch_size`` openings and both players read them.

  Each run of ``group_size`` adjacent games shares one opening (the same chance move); a
  player with a ``keyless_init`` reads it once for the whole group.
  """
  if len(players) != 2 or len(params) != 2:
    raise ValueError(f"play takes two players and two params, got {len(players)} and "
                     f"{len(params)}")
  if group_size < 1 or batch_size % group_size:
    raise ValueError(f"group_size={group_size} must divide batch_size={batch_size}")

  k_chance, k_players = jax.random.split(key)
  openings = jax.vmap(game_lib.init, in_axes=(None, 0))(
      game, jax.random.split(k_chance, batch_size // group_size))
  grouped = lambda x: jnp.repeat(x, group_size, axis=0)
  state = jax.tree.map(grouped, openings)
  keys = jax.vmap(jax.random.split)(jax.random.split(k_players, batch_size))  # [B, 2]

  def read(player, params, seat):
    init = jax.vmap(player.init, in_axes=(None, 0, 0))
    if player.keyless_init:
      return jax.tree.map(grouped, init(params, openings, keys[::group_size, seat]))
    return init(params, state, keys[:, seat])

  carries = (read(players[0], params[0], 0), read(players[1], params[1], 1))
  t = game.max_length
  legal = (jnp.zeros((batch_size, t, vocab.VOCAB_SIZE), bool) if game.restricts_moves
           else None)
  return InPlay(state, carries, jnp.zeros((batch_size, t)), jnp.zeros((batch_size, t)),
                jnp.zeros((batch_size, t, 2)), legal)


def advance(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
            in_play: InPlay, keys: jax.Array) -> InPlay:
  """Every unfinished game advances by one token; ``keys [B, 2]``: each game's key for
  each seat's player."""

  def one(state, carries, keys):
    move_one, carry_one = players[0].act(params[0], carries[0], state, keys[0])
    move_two, carry_two = players[1].act(params[1], carries[1], state, keys[1])
    move = jax.tree.map(lambda a, b: jnp.where(state.to_move == game_lib.ONE, a, b),
                        move_one, move_two)
    next_state, reward = game_lib.step(game, state, move.token)
    return next_state, (carry_one, carry_two), move, reward

  state, carries, move, reward = jax.vmap(one)(in_play.state, in_play.carries, keys)
  # Finished games record nothing: their index points past the end and is dropped.
  pos = jnp.where(in_play.state.done, game.max_length, in_play.state.length)
  rows = jnp.arange(pos.shape[0])

  def record(buffer, x):
    return buffer.at[rows, pos].set(x, mode="drop")

  legal = in_play.legal
  if legal is not None:  # The mask each token was sampled under, for training to reuse.
    legal = record(legal, jax.vmap(game.legal_mask)(in_play.state))
  return InPlay(state, carries, record(in_play.logprob, move.logprob),
                record(in_play.value, move.value), record(in_play.reward, reward), legal)


def finish(in_play: InPlay) -> game_lib.Trajectory:
  """The trajectory of games in play that have all ended."""
  s = in_play.state
  return game_lib.Trajectory(s.tokens, s.owner, in_play.logprob, in_play.value,
                             in_play.reward, s.opening_length, s.length, s.returns, s.hidden,
                             in_play.legal)


@functools.partial(jax.jit, static_argnames=("game", "players", "batch_size", "group_size"))
def play_out(game: game_lib.Game, players: tuple[Player, Player], params: tuple[Any, Any],
             key: jax.Array, batch_size: int, group_size: int = 1) -> InPlay:
  """``play``, returning the games in play at their end: the trajectory's parts and the
  players' final carries (e.g. which player of a ``players.mixture`` played each game)."""
  k_start, k_play = jax.random.split(key)
  in_play = start(game, players, params, k_start, batch_size, group_size)
  # Every key of play drawn at once: one call of the hash, not three per token. A game
  # writes at most max_length tokens.
  keys = jax.random.split(k_play, (game.max_length, batch_size, 2))

  def body(carry):
    in_play, step = carry
    return advance(game, players, params, in_play, keys[step]), step + 1

  in_play, _ = jax.lax.while_loop(lambda c: ~jnp.all(c[0].state.done), body, (in_play, 0))
  return in_play


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
  return finish(play_out(game, players, params, key, batch_size, group_size))
