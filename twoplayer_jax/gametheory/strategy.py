"""Behaviour strategies of a small token game's seats, as tables over information states.

A seat's strategy is a table ``[I_seat, A]``: at each of its information states (rows in
the tree's order, ``Tree.seat``), the probability of each action (0 where illegal). A
pair ``(strategy_one, strategy_two)`` is what ``exploitability.evaluate`` measures. The
tables come from

  * a model: what a model player samples from at every information state, read by one
    batched forward pass over all views (``model_strategy``, a pure function of params,
    cheap enough to run every few training iterations);
  * a scripted strategy ``fn(game, state, seat) -> [A] probs`` (a game's ``STRATEGIES``),
    asked at one history of each information state, seen by that seat;
  * the uniform distribution over the legal actions.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import vocab
from twoplayer_jax.gametheory.tree import Tree
from twoplayer_jax.models.interface import Model
from twoplayer_jax.objectives.tokens import log_policy


def split(tree: Tree, table: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``table [I, A]`` over all information states as ``([I_1, A], [I_2, A])``."""
  return table[:tree.sizes[0]], table[tree.sizes[0]:]


def model_strategy(model: Model, params, tree: Tree) -> tuple[jax.Array, jax.Array]:
  """What a model samples from (temperature 1, the game's legal mask) at every
  information state of both seats, as ``players.model_player`` in that seat does.

  One forward pass over all views ``[I, L]``, right-padded (causal attention keeps the
  padding out of the real positions); the policy is read at each view's last token.
  Pure: ``jax.jit(functools.partial(model_strategy, model, tree=tree))`` compiles once.

  Args:
    model: the transformer (``models.make``); its context must hold the longest view.
    params: its parameters.
    tree: the game tree (``build_tree``).

  Returns:
    ``([I_1, A], [I_2, A])`` float32 action probabilities, 0 where illegal.
  """
  num_info, width = tree.views.shape
  positions = np.broadcast_to(np.arange(width), (num_info, width))
  logits, _, _ = model.apply(params, tree.views, positions)
  last = logits[np.arange(num_info), tree.lengths - 1]  # [I, V]
  legal = np.zeros((num_info, vocab.VOCAB_SIZE), bool)
  legal[:, tree.actions] = tree.legal
  probs = jnp.exp(log_policy(last, legal)[:, tree.actions])
  return split(tree, jnp.where(tree.legal, probs, 0.0))


def scripted_strategy(game: game_lib.Game, tree: Tree, fn: Callable
                      ) -> tuple[jax.Array, jax.Array]:
  """A scripted strategy's tables: ``fn(game, state, seat) -> [A]`` action probabilities,
  called (vmapped, jitted) at the first history of each of the seat's information
  states, with the state as that seat sees it (``game_lib.seen_by``).

  Returns:
    ``([I_1, A], [I_2, A])`` float32.
  """
  tables = []
  for seat in (game_lib.ONE, game_lib.TWO):
    states = jax.tree.map(lambda x: x[tree.seat == seat], tree.states)
    probs = jax.vmap(lambda s: fn(game, game_lib.seen_by(s, seat), seat))
    tables.append(jax.jit(probs)(states))
  return tuple(jnp.asarray(t, jnp.float32) for t in tables)


def uniform_strategy(tree: Tree) -> tuple[jax.Array, jax.Array]:
  """Both seats uniform over the legal actions: ``([I_1, A], [I_2, A])`` float32."""
  legal = tree.legal.astype(np.float32)
  return split(tree, jnp.asarray(legal / legal.sum(axis=1, keepdims=True)))
