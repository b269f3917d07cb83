"""The extensive form of a small token game, enumerated by playing the game itself.

A card game such as Kuhn or Leduc poker is small enough to write down whole: every deal,
every history of actions, every information state. ``build_tree`` drives the token game
(``chance_outcomes``, ``opening_from``, ``game_lib.step``, ``legal_mask``) from every deal
at once, so the tree is the game that play samples, not a second description of it:

  * a state with exactly one legal token (end-of-turn after an action, a public card) is
    stepped through: forced tokens are no decisions;
  * a state with several legal tokens is a decision node of the mover, whose actions are
    the game's action tokens that are legal there;
  * a finished state is a terminal node paying its returns.

An information state of a seat is what a model in that seat reads there: its view
(``game_lib.view``, its private text then the transcript). Histories with the same view
are one information state. Chance moves only at the root (each deal, a public card
included, is one root), so every history carries its deal's probability.

The result is static numpy arrays; ``strategy`` and ``exploitability`` turn them into
constants of their jitted computations.
"""

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import vocab

# States stepped per call of the jitted expansion: one compiled shape for any tree.
CHUNK = 1024


class Tree(NamedTuple):
  """A game tree as static arrays. N nodes (sorted by depth, parents first), I information
  states (seat one's first), A actions.

  Attributes:
    actions: ``[A]`` int32 token ids of the actions, in the game's order.
    parent: ``[N]`` int32 parent node, -1 at the roots (one root per deal).
    depth: ``[N]`` int32 actions taken since the deal.
    action: ``[N]`` int32 index of the action leading here, -1 at the roots.
    player: ``[N]`` int32 seat to move (1 or 2), 0 at terminal nodes.
    infostate: ``[N]`` int32 the mover's information state, -1 at terminal nodes.
    deal: ``[N]`` int32 the deal (index into ``chance_outcomes``) the history starts from.
    chance: ``[N]`` float64 probability of that deal.
    payoff: ``[N, 2]`` float64 payoffs at terminal nodes, seat one's first; 0 elsewhere.
    children: ``[N, A]`` int32 node reached by each action, -1 where illegal or terminal.
    seat: ``[I]`` int32 seat of each information state.
    views: ``[I, L]`` int32 the seat's view tokens, PAD after ``lengths``.
    lengths: ``[I]`` int32 view tokens of each information state.
    legal: ``[I, A]`` bool the actions legal there.
    states: ``GameState`` of numpy arrays with leading axis ``[I]``: the state at the first
      history of each information state (None for trees not built from a token game).
  """
  actions: np.ndarray
  parent: np.ndarray
  depth: np.ndarray
  action: np.ndarray
  player: np.ndarray
  infostate: np.ndarray
  deal: np.ndarray
  chance: np.ndarray
  payoff: np.ndarray
  children: np.ndarray
  seat: np.ndarray
  views: np.ndarray
  lengths: np.ndarray
  legal: np.ndarray
  states: game_lib.GameState | None

  @property
  def sizes(self) -> tuple[int, int]:
    """Information states of seat one and of seat two (the rows of their tables)."""
    return int(np.sum(self.seat == game_lib.ONE)), int(np.sum(self.seat == game_lib.TWO))


def _take(states, index: np.ndarray):
  return jax.tree.map(lambda x: x[index], states)


def _concat(parts):
  return jax.tree.map(lambda *x: np.concatenate(x), *parts)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _expand(game: game_lib.Game, actions: tuple[int, ...], states: game_lib.GameState):
  """What the enumeration needs of each state of a chunk ``[C]``: its number of legal
  tokens ``[C]``, its legal actions ``[C, A]``, the state after its first legal token
  (the forced one when it is the only one) ``[C]``, the state after each action
  ``[C, A]`` and the mover's view ``[C, P + T]``."""
  tokens = np.asarray(actions, np.int32)

  def one(state):
    legal = game.legal_mask(state)
    forced, _ = game_lib.step(game, state, jnp.argmax(legal))
    children = jax.vmap(lambda t: game_lib.step(game, state, t)[0])(tokens)
    view = game_lib.view(game, state.tokens, state.hidden, state.to_move)
    return legal.sum(), legal[tokens], forced, children, view

  return jax.vmap(one)(states)


def _expand_all(game, actions, states, size):
  """``_expand`` over ``size`` states, in chunks padded with copies of the first."""
  padded = -(-size // CHUNK) * CHUNK
  index = np.concatenate([np.arange(size), np.zeros(padded - size, int)])
  outs = [jax.device_get(_expand(game, actions, _take(states, index[i:i + CHUNK])))
          for i in range(0, padded, CHUNK)]
  return _take(_concat(outs), np.arange(size))


def build_tree(game: game_lib.Game, actions: Sequence[int]) -> Tree:
  """Enumerates the extensive form of ``game`` from every deal.

  Args:
    game: a token game with ``chance_outcomes()`` (every deal's hidden information with
      a leading axis ``[D]`` and its probability ``[D]``) and ``opening_from(hidden)``
      (the opening of one deal); small enough to enumerate.
    actions: the action token ids, in the order of the strategy tables' columns.

  Returns:
    The tree. Raises ValueError if a decision offers a token that is not an action, if
    a live state has no legal token, or if the histories of one information state
    differ in their legal actions or their depth (the backward passes of
    ``exploitability`` need every information state on one level).
  """
  actions = tuple(int(a) for a in actions)
  hidden, probs = game.chance_outcomes()
  probs = np.asarray(probs, np.float64)
  frontier = jax.device_get(jax.jit(jax.vmap(game.opening_from))(hidden))
  # Per frontier entry: (deal, parent node, action into it, depth).
  meta = np.stack([np.arange(len(probs)), -np.ones(len(probs), int),
                   -np.ones(len(probs), int), np.zeros(len(probs), int)], 1)
  nodes, node_states, views, legals = [], [], [], []
  count = 0
  while len(meta):
    num_legal, legal, forced, children, view = _expand_all(game, actions, frontier, len(meta))
    done = frontier.done
    if np.any(~done & (num_legal == 0)):
      raise ValueError("a live state with no legal token")
    settled = done | (num_legal > 1)
    if np.any(settled & ~done & (legal.sum(1) != num_legal)):
      raise ValueError(f"a decision offers tokens outside the actions {actions}")
    ids = count + np.arange(settled.sum())
    count += len(ids)
    player = np.where(done, 0, frontier.to_move)
    nodes.append(np.concatenate([meta[settled], player[settled, None]], 1))
    node_states.append(_take(frontier, settled))
    views.append(view[settled])
    legals.append(legal[settled] & ~done[settled, None])
    # The next frontier: forced states step on, decisions branch into their legal actions.
    stepped = ~settled
    branch, a = np.nonzero(legal[settled] & ~done[settled, None])
    meta = np.concatenate([
        meta[stepped],
        np.stack([meta[settled][branch, 0], ids[branch], a, meta[settled][branch, 3] + 1], 1)])
    frontier = _concat([_take(forced, stepped), _take(_take(children, settled), (branch, a))])
  return _assemble(game, actions, np.concatenate(nodes), _concat(node_states),
                   np.concatenate(views), np.concatenate(legals), probs)


def _assemble(game, actions, nodes, states, views, legal, probs) -> Tree:
  """Sorts the enumerated nodes by depth and groups decisions by view into information
  states. ``nodes [N, 5]`` holds (deal, parent, action, depth, player) in order of
  enumeration; ``states``, ``views`` and ``legal`` are per node."""
  order = np.argsort(nodes[:, 3], kind="stable")
  rank = np.empty_like(order)
  rank[order] = np.arange(len(order))
  deal, parent, action, depth, player = nodes[order].T
  parent = np.where(parent >= 0, rank[np.maximum(parent, 0)], -1)
  states, views, legal = _take(states, order), views[order], legal[order]
  lengths = game.private_length + states.length
  infostate = -np.ones(len(order), int)
  keys = {}
  for seat in (game_lib.ONE, game_lib.TWO):
    for n in np.flatnonzero(player == seat):
      infostate[n] = keys.setdefault((seat, views[n, :lengths[n]].tobytes()), len(keys))
  ids, first = np.unique(infostate, return_index=True)
  first = first[ids >= 0]  # The first history of each information state.
  decision = infostate >= 0
  if (np.any(legal[decision] != legal[first][infostate[decision]])
      or np.any(depth[decision] != depth[first][infostate[decision]])):
    raise ValueError("the histories of an information state differ in their legal actions "
                     "or their depth")
  children = -np.ones((len(order), len(actions)), int)
  children[parent[parent >= 0], action[parent >= 0]] = np.flatnonzero(parent >= 0)
  terminal = player == 0
  width = int(lengths[first].max())
  return Tree(
      actions=np.asarray(actions, np.int32),
      parent=parent.astype(np.int32),
      depth=depth.astype(np.int32),
      action=action.astype(np.int32),
      player=player.astype(np.int32),
      infostate=infostate.astype(np.int32),
      deal=deal.astype(np.int32),
      chance=probs[deal],
      payoff=np.where(terminal[:, None], states.returns, 0.0).astype(np.float64),
      children=children.astype(np.int32),
      seat=player[first].astype(np.int32),
      views=np.where(np.arange(width) < lengths[first, None], views[first, :width],
                     vocab.PAD).astype(np.int32),
      lengths=lengths[first].astype(np.int32),
      legal=legal[first],
      states=_take(states, first))
