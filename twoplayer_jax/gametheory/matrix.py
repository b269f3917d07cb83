"""Games between policies: cross-play matrices, their Nash equilibria and ratings.

A population of policies plays every pairing (``cross_play``); the matrix of mean payoffs
is a two-player matrix game, the meta-game. Its Nash equilibrium (``zero_sum_nash``, by
regret matching) is PSRO's meta-strategy and the basis of Nash averaging (``ratings``);
``worst_case`` is a policy's payoff against its best opponent of the set. Populations
live in fixed-size buffers (``add_member``) so that a growing population compiles once.
"""

from typing import Any

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax import rollout
from twoplayer_jax.players import Player


def cross_play(game: game_lib.Game, seats: tuple[Player, Player], params_one: Any,
               params_two: Any, key: jax.Array, num_games: int) -> jax.Array:
  """``[K1, K2, 2]`` mean payoffs of every member of a population in seat one against
  every member of another in seat two, ``num_games`` games each, vmapped over pairs.

  Args:
    game: the game.
    seats: the player of seat one and of seat two (e.g. model players of one
      architecture), each reading the params of its population's member.
    params_one: seat one's population, parameters stacked ``[K1, ...]``.
    params_two: seat two's population, ``[K2, ...]``.
    key: PRNG key; every pairing plays the same deals (common random numbers).
    num_games: games per pairing.
  """
  def pair(p_one, p_two):
    traj = rollout.play(game, seats, (p_one, p_two), key, num_games)
    return jnp.mean(traj.returns, axis=0)

  return jax.vmap(jax.vmap(pair, in_axes=(None, 0)), in_axes=(0, None))(params_one, params_two)


def zero_sum_nash(payoff: jax.Array, rows: jax.Array | None = None,
                  columns: jax.Array | None = None, iterations: int = 2000
                  ) -> tuple[jax.Array, jax.Array]:
  """An approximate Nash equilibrium of the zero-sum matrix game ``payoff [K1, K2]`` (the
  row player's payoff; the column player's is its negative), by regret matching+ with
  alternating updates and linearly weighted averages.

  Args:
    payoff: ``[K1, K2]`` the row player's payoff.
    rows, columns: ``[K1]``, ``[K2]`` bool members that exist (a population buffer's
      filled slots); all by default. Missing members get probability 0.
    iterations: regret-matching iterations; the average strategies' exploitability
      falls as O(1/sqrt(iterations)) or faster.

  Returns:
    The average strategies ``[K1]`` of the row player and ``[K2]`` of the column player.
  """
  k1, k2 = payoff.shape
  rows = jnp.ones(k1, bool) if rows is None else rows
  columns = jnp.ones(k2, bool) if columns is None else columns

  def policy(regret, valid):
    positive = jnp.where(valid, jnp.maximum(regret, 0.0), 0.0)
    total = jnp.sum(positive)
    return jnp.where(total > 0, positive / jnp.where(total > 0, total, 1.0),
                     valid / jnp.sum(valid))

  def body(carry, t):
    r_row, r_col, avg_row, avg_col = carry
    x = policy(r_row, rows)
    y = policy(r_col, columns)
    u_row = payoff @ y
    r_row = jnp.maximum(r_row + u_row - x @ u_row, 0.0)
    x = policy(r_row, rows)
    u_col = -(x @ payoff)
    r_col = jnp.maximum(r_col + u_col - y @ u_col, 0.0)
    y = policy(r_col, columns)
    return (r_row, r_col, avg_row + t * x, avg_col + t * y), None

  zeros = (jnp.zeros(k1), jnp.zeros(k2), jnp.zeros(k1), jnp.zeros(k2))
  (_, _, avg_row, avg_col), _ = jax.lax.scan(
      body, zeros, jnp.arange(1, iterations + 1, dtype=jnp.float32))
  return avg_row / jnp.sum(avg_row), avg_col / jnp.sum(avg_col)


def exploitability(payoff: jax.Array, row: jax.Array, column: jax.Array) -> jax.Array:
  """``[]`` NashConv of the strategy pair in the zero-sum matrix game ``payoff [K1, K2]``:
  what each player gains by a best response, summed (0 at an equilibrium)."""
  value = row @ payoff @ column
  return (jnp.max(payoff @ column) - value) + (value - jnp.min(row @ payoff))


def worst_case(payoff: jax.Array, columns: jax.Array | None = None) -> jax.Array:
  """``[K1]`` each row's payoff against its worst column (of the ``columns [K2]`` that
  exist)."""
  columns = jnp.ones(payoff.shape[1], bool) if columns is None else columns
  return jnp.min(jnp.where(columns, payoff, jnp.inf), axis=1)


def ratings(payoff: jax.Array, rows: jax.Array | None = None,
            columns: jax.Array | None = None) -> jax.Array:
  """``[K1]`` Nash averaging (Balduzzi et al. 2018) of the rows: each row's payoff
  against the column player's equilibrium mixture. Adding copies of a column does not
  change it, unlike a mean over columns."""
  _, column = zero_sum_nash(payoff, rows, columns)
  return payoff @ column


def add_member(population: Any, params: Any, index: jax.Array) -> Any:
  """The population buffer ``[K, ...]`` with ``params`` written into slot ``index``."""
  return jax.tree.map(lambda buffer, p: buffer.at[index].set(p), population, params)
