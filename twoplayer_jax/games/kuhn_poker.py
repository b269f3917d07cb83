"""Kuhn poker, exactly OpenSpiel's ``kuhn_poker``: three cards, one each, one bet. Zero-sum.

Text (the shared transcript, as ``vocab.render`` shows it)::

  chance> kuhn⟨eot⟩
  one> p⟨eot⟩
  two> b⟨eot⟩
  one> b

Chance deals one card of J < Q < K (OpenSpiel's cards 0, 1, 2) to each player, the second
from the two the first left; each antes one chip. Player one is OpenSpiel's player 0 and
acts first. An action is one token: ``p`` (pass: check, or fold facing a bet; OpenSpiel's
action 0) or ``b`` (bet one chip, or call a bet; action 1). After an action that does
not end the game the only legal token is end-of-turn, which hands the move to the other
seat; at a decision both actions are legal (``legal_mask``). The game is decided by its
last action (``pp``, ``bp``, ``bb``, ``pbp``, ``pbb``): a player who passes facing a bet
folds and loses its stake, else the higher card wins the pot.

Payoff: the chips won, ``[2]`` float32, exactly OpenSpiel's returns (-2 to 2); a game
that ends unfinished (a transcript not written under the legal mask) pays 0 to both.
Tokens written against the legal mask are skipped when the transcript is read.

Hidden and private text: ``hidden = {"one": {"card": []}, "two": {"card": []}}`` int32.
Each seat reads only its own card, as its private text ``private(hidden, seat)``: the
seat's digit and its card, e.g. ``1K`` (``private_length`` 2); the cards never appear in
the shared transcript. Scripted players see the state through ``game.seen_by``
(``twoplayer_jax.game``).

Information states. At a decision a seat knows its private text and the transcript;
the transcript holds exactly the public actions, so the seat's information state is its
card and the action history (``betting`` reads the public state, ``history`` the
actions). OpenSpiel's information state string is the card's index followed by the
actions as ``p``/``b``: ``"0"``, ``"1b"``, ``"0pb"`` (``information_state(state, seat)``,
or ``information_state_string(betting(state), card, seat)``); the 12 at decisions are one
to one with the seats' token views (private text + transcript).

Exhaustive enumeration (exact best responses): ``ACTIONS``, ``chance_outcomes`` (every
deal with its probability), ``opening_from`` (the opening of one deal), then
``game_lib.step`` with action tokens at decisions and the only legal token elsewhere.
Scripted players sample from behaviour strategies ``STRATEGIES[name](game, state, seat)
-> [2]`` probabilities of ``ACTIONS``, which can be read at any information state.
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab

PASS, BET = 0, 1  # OpenSpiel's actions.
ACTIONS = (ord("p"), ord("b"))  # Token of each action, in OpenSpiel's order.
CARDS = (ord("J"), ord("Q"), ord("K"))  # Token of each card: 0 J < 1 Q < 2 K.
ANTE = 1
MAX_ACTIONS = 3  # Longest betting: pass, bet, call or fold.
OPENING = "kuhn"  # The opening's public text, between BOS and end-of-turn.
OPENING_LENGTH = len(OPENING) + 2
PLAY_LENGTH = 2 * MAX_ACTIONS - 1  # Longest play: three actions, two end-of-turns.

DECIDE, END_TURN, ENDED = 0, 1, 2  # Phases: an action is due; end-of-turn is due; over.
DECISIONS = ("", "p", "b", "pb")  # Public histories at a decision, OpenSpiel's spelling.

Probs = Callable[[Any, game_lib.GameState, Any], jax.Array]


# Reading a transcript. The public states of a game form a small automaton over token
# classes, built once from the rules below in plain Python; ``betting`` runs it over the
# transcript (one table lookup per token) and gathers the state's fields from tables.

def automaton(start: Any, advance: Callable[[Any, int], Any], num_classes: int
              ) -> tuple[list, np.ndarray]:
  """Every node reachable from ``start`` and the transition table.

  Args:
    start: the first node (hashable).
    advance: ``advance(node, token_class) -> node``.
    num_classes: token classes.

  Returns:
    The nodes (``start`` first) and ``[num_nodes, num_classes]`` int32 the index of the
    node each class leads to.
  """
  nodes, index, table = [start], {start: 0}, []
  for node in nodes:  # Grows while it is read: breadth first.
    row = []
    for c in range(num_classes):
      after = advance(node, c)
      if after not in index:
        index[after] = len(nodes)
        nodes.append(after)
      row.append(index[after])
    table.append(row)
  return nodes, np.array(table, np.int32)


def token_classes(classes: dict[int, int], other: int) -> np.ndarray:
  """``[VOCAB_SIZE]`` int32 the class of each token: ``classes[token]``, else ``other``."""
  table = np.full(vocab.VOCAB_SIZE, other, np.int32)
  for token, c in classes.items():
    table[token] = c
  return table


class _Node(NamedTuple):
  phase: int
  actions: tuple[int, ...]


EOT_CLASS, OTHER_CLASS = 2, 3  # Token classes: PASS, BET, end-of-turn, any other.


def _ended(actions: tuple[int, ...]) -> bool:
  """Whether the actions end the game: pp, bp, bb, pbp or pbb."""
  return len(actions) == 3 or (len(actions) == 2 and actions != (PASS, BET))


def _advance(node: _Node, c: int) -> _Node:
  """The node after a token of class ``c``: an action while one is due, end-of-turn
  while it is due; any other token is skipped."""
  if node.phase == DECIDE and c in (PASS, BET):
    actions = node.actions + (c,)
    return _Node(ENDED if _ended(actions) else END_TURN, actions)
  if node.phase == END_TURN and c == EOT_CLASS:
    return _Node(DECIDE, node.actions)
  return node


_NODES, _NEXT = automaton(_Node(DECIDE, ()), _advance, 4)
_CLASS = token_classes({ACTIONS[PASS]: PASS, ACTIONS[BET]: BET, vocab.EOT: EOT_CLASS},
                       OTHER_CLASS)
_HISTORY = np.array([n.actions + (-1,) * (MAX_ACTIONS - len(n.actions)) for n in _NODES],
                    np.int32)
_HISTORY_NAME = ["".join("pb"[a] for a in n.actions) for n in _NODES]
_TABLES = {
    "phase": np.array([n.phase for n in _NODES], np.int32),
    "player": np.array([len(n.actions) % 2 for n in _NODES], np.int32),
    "actions": _HISTORY,
    "num_actions": np.array([len(n.actions) for n in _NODES], np.int32),
    "decision": np.array([DECISIONS.index(h) if h in DECISIONS else 0
                          for h in _HISTORY_NAME], np.int32),
}


class Betting(NamedTuple):
  """The public state of one game, read from its transcript by ``betting``.

  Attributes:
    node: ``[]`` int32 the public state's index (``betting``'s automaton).
    phase: ``[]`` int32 ``DECIDE`` (an action is due), ``END_TURN`` (end-of-turn is
      due) or ``ENDED`` (the last action decided the game).
    player: ``[]`` int32 OpenSpiel's player to act next (0 or 1; seat ``player + 1``).
    actions: ``[MAX_ACTIONS]`` int32 the actions taken (``PASS``, ``BET``), -1 after.
    num_actions: ``[]`` int32 number of actions taken.
    decision: ``[]`` int32 index in ``DECISIONS`` of the actions (0 where no decision).
  """
  node: jax.Array
  phase: jax.Array
  player: jax.Array
  actions: jax.Array
  num_actions: jax.Array
  decision: jax.Array


def run_automaton(state: game_lib.GameState, start: int, next_table: np.ndarray,
                  classes: np.ndarray, skip: int) -> tuple[jax.Array, jax.Array]:
  """Reads the transcript from position ``start`` (after the opening) with an automaton.

  Args:
    state: one game.
    start: first position read.
    next_table: ``[num_nodes, num_classes]`` int32 transitions (node 0 first).
    classes: ``[VOCAB_SIZE]`` int32 the class of each token.
    skip: a class that leaves every node as it is, read past the transcript's length.

  Returns:
    ``[]`` int32 the node reached, and ``[T - start]`` int32 the node before each token.
  """
  tokens, next_table, classes = state.tokens, jnp.asarray(next_table), jnp.asarray(classes)

  def read(node, pos):
    token = jnp.clip(tokens[pos], 0, vocab.VOCAB_SIZE - 1)
    c = jnp.where(pos < state.length, classes[token], skip)
    return next_table[node, c], node

  return jax.lax.scan(read, jnp.int32(0), jnp.arange(start, tokens.shape[0]))


def betting(state: game_lib.GameState) -> Betting:
  """Reads the public state of one game from its transcript (jittable).

  Tokens after the opening are read in order: an action token while an action is due,
  end-of-turn while one is due; any other token is skipped.
  """
  node, _ = run_automaton(state, OPENING_LENGTH, _NEXT, _CLASS, OTHER_CLASS)
  return Betting(node, **{k: jnp.asarray(v)[node] for k, v in _TABLES.items()})


def own_card(hidden: dict, seat: int | jax.Array) -> jax.Array:
  """``[]`` int32 the card of ``seat`` (1 or 2). With a Python int seat only that seat's
  hidden information is read (so it works on ``game_lib.seen_by(state, seat)``)."""
  if isinstance(seat, int):
    return hidden["one" if seat == game_lib.ONE else "two"]["card"]
  return jnp.where(seat == game_lib.ONE, hidden["one"]["card"], hidden["two"]["card"])


_betting = jax.jit(betting)


def history(state: game_lib.GameState) -> list[int]:
  """The actions taken so far, OpenSpiel's action indices in order (Python, one game)."""
  b = jax.device_get(_betting(state))
  return [int(a) for a in b.actions[:int(b.num_actions)]]


def information_state_string(b: Betting, card: int, seat: int) -> str:
  """OpenSpiel's information state string of player ``seat - 1`` holding ``card``, from
  the public state ``b`` of one game (numpy or jax scalars): the card's index, then the
  actions as ``p``/``b``. (The seat does not show; the signature is Leduc's.)"""
  del seat
  actions = b.actions[:int(b.num_actions)]
  return str(int(card)) + "".join("pb"[int(a)] for a in actions)


def information_state(state: game_lib.GameState, seat: int) -> str:
  """OpenSpiel's ``information_state_string(seat - 1)`` of ``state`` (Python, one game)."""
  b = jax.device_get(_betting(state))
  return information_state_string(b, int(own_card(state.hidden, seat)), seat)


@dataclasses.dataclass(frozen=True)
class KuhnPoker(game_lib.Game):
  """OpenSpiel's ``kuhn_poker`` with its default rules (two players); no settings."""

  @property
  def max_opening_length(self) -> int:
    return OPENING_LENGTH  # BOS "kuhn" EOT

  @property
  def min_opening_length(self) -> int:
    return OPENING_LENGTH  # Every opening has the same length.

  @property
  def max_length(self) -> int:
    return OPENING_LENGTH + PLAY_LENGTH

  @property
  def max_turns(self) -> int:
    return self.max_length  # Never binding: a game is decided by its last action.

  @property
  def private_length(self) -> int:
    return 2

  @property
  def restricts_moves(self) -> bool:
    return True

  def chance_outcomes(self) -> tuple[dict, np.ndarray]:
    """Every deal, in OpenSpiel's order (player 0's card, then player 1's).

    Returns:
      ``hidden``: the hidden information of each deal with a leading axis ``[6]``
      (numpy int32), and ``probs [6]`` float64, each 1/6.
    """
    deals = np.array([(a, b) for a in range(3) for b in range(3) if a != b], np.int32)
    hidden = {"one": {"card": deals[:, 0]}, "two": {"card": deals[:, 1]}}
    return hidden, np.full(len(deals), 1.0 / len(deals))

  def opening_from(self, hidden: dict) -> game_lib.GameState:
    """The opening of the deal ``hidden`` (one deal, no leading axis): BOS ``kuhn`` EOT."""
    hidden = jax.tree.map(lambda x: jnp.asarray(x, jnp.int32), hidden)
    tokens = jnp.asarray([vocab.BOS, *vocab.from_bytes(OPENING.encode()), vocab.EOT],
                         jnp.int32)
    return game_lib.new_state(self, tokens, jnp.zeros_like(tokens), OPENING_LENGTH,
                              to_move=game_lib.ONE, turn=1, hidden=hidden)

  def opening(self, key: jax.Array) -> game_lib.GameState:
    hidden, probs = self.chance_outcomes()
    deal = jax.random.categorical(key, jnp.log(jnp.asarray(probs, jnp.float32)))
    return self.opening_from(jax.tree.map(lambda x: jnp.asarray(x)[deal], hidden))

  def private(self, hidden: dict, seat: int | jax.Array) -> jax.Array:
    """``[2]`` int32: the seat's digit and its card, e.g. ``1K``."""
    card = jnp.asarray(CARDS, jnp.int32)[own_card(hidden, seat)]
    return jnp.stack([ord("0") + jnp.asarray(seat, jnp.int32), card]).astype(jnp.int32)

  def legal_mask(self, state: game_lib.GameState) -> jax.Array:
    """Both actions at a decision; else end-of-turn only (also once the game is over)."""
    decide = jnp.zeros(vocab.VOCAB_SIZE, bool).at[jnp.asarray(ACTIONS)].set(True)
    end_turn = jnp.arange(vocab.VOCAB_SIZE) == vocab.EOT
    return jnp.where(betting(state).phase == DECIDE, decide, end_turn)

  def decided(self, state: game_lib.GameState) -> jax.Array:
    return betting(state).phase == ENDED

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    b = betting(state)
    cards = jnp.stack([state.hidden["one"]["card"], state.hidden["two"]["card"]])
    actor = jnp.arange(MAX_ACTIONS) % 2
    stake = ANTE + jnp.sum((b.actions == BET) & (actor == jnp.arange(2)[:, None]), 1)
    last = b.actions[jnp.maximum(b.num_actions - 1, 0)]
    folded = (last == PASS) & jnp.any(b.actions == BET)
    loser = jnp.where(folded, (b.num_actions - 1) % 2, jnp.argmin(cards))
    won = stake[loser]
    chips = jnp.where(jnp.arange(2) == loser, -won, won)
    return jnp.where(b.phase == ENDED, chips, 0).astype(jnp.float32)


# Behaviour strategies. A table ``[4, 3]`` holds the probability of action 1 (bet or
# call) at each public history of ``DECISIONS`` (rows) holding each card (columns J, Q,
# K); rows "" and "pb" are player one's, "p" and "b" player two's.

RANDOM_TABLE = np.full((4, 3), 0.5)
HEURISTIC_TABLE = np.array([
    [0.0, 0.0, 1.0],  # "": bet the K only.
    [0.0, 0.0, 1.0],  # "p": bet the K only.
    [0.0, 0.5, 1.0],  # "b": fold the J, call with the Q half the time, call with the K.
    [0.0, 0.5, 1.0],  # "pb": the same.
])
ALPHA = 1.0 / 3.0  # Player one's J-bluffing rate in STRATEGIES["equilibrium"], in [0, 1/3].


def equilibrium_table(alpha: float = ALPHA) -> np.ndarray:
  """``[4, 3]`` float64 a Nash equilibrium (Kuhn 1950), ``alpha`` in [0, 1/3].

  Player one bets the J with probability alpha, never the Q, the K with 3 alpha; facing
  a bet after its pass it folds the J, calls with the Q with alpha + 1/3, always with the
  K. Player two after a pass bets the J 1/3 of the time, never the Q, always the K;
  facing a bet it folds the J, calls with the Q 1/3 of the time, always with the K.
  Player one's value is -1/18 for every alpha.
  """
  if not 0.0 <= alpha <= 1.0 / 3.0:
    raise ValueError(f"alpha must be in [0, 1/3], got {alpha}")
  third = 1.0 / 3.0
  return np.array([[alpha, 0.0, 3 * alpha],
                   [third, 0.0, 1.0],
                   [0.0, third, 1.0],
                   [0.0, alpha + third, 1.0]])


def table_strategy(table: np.ndarray) -> Probs:
  """The behaviour strategy of a ``[4, 3]`` table, as ``probs(game, state, seat)``.

  ``probs`` reads the seat's card and the public actions of ``state`` (seen by the
  seat) and returns ``[2]`` float32 probabilities of pass and bet; at a decision of the
  seat they are its strategy at its information state.
  """
  table = np.asarray(table, np.float64)
  if table.shape != (4, 3) or (table < 0).any() or (table > 1).any():
    raise ValueError(f"a strategy table is [4, 3] probabilities, got {table}")

  def probs(game, state, seat):
    del game
    bet = jnp.asarray(table, jnp.float32)[betting(state).decision,
                                          own_card(state.hidden, seat)]
    return jnp.stack([1.0 - bet, bet])

  return probs


STRATEGIES = {
    "random": table_strategy(RANDOM_TABLE),
    "heuristic": table_strategy(HEURISTIC_TABLE),
    "equilibrium": table_strategy(equilibrium_table(ALPHA)),
}


def mixed(first: Probs, second: Probs, weight: float) -> Probs:
  """The strategy that plays ``second`` with probability ``weight`` at each decision,
  else ``first``."""

  def probs(game, state, seat):
    return (1.0 - weight) * first(game, state, seat) + weight * second(game, state, seat)

  return probs


def strategy_player(game: game_lib.Game, seat: int, probs: Probs,
                    actions: Sequence[int] = ACTIONS) -> players_lib.Player:
  """A scripted player for ``seat`` that samples its actions from ``probs``.

  Where the legal mask forces a token (end-of-turn; Leduc's public card) the player
  writes it with log-probability 0; at a decision it samples action i with probability
  ``probs(game, seen_by(state, seat), seat)[i]`` and writes ``actions[i]``.
  """
  action_tokens = jnp.asarray(actions, jnp.int32)

  def policy(carry, state, key):
    mask = game.legal_mask(state)
    decision = jnp.any(mask[action_tokens])
    p = probs(game, game_lib.seen_by(state, seat), seat)
    i = jax.random.categorical(key, jnp.log(p))
    token = jnp.where(decision, action_tokens[i], jnp.argmax(mask))
    return token, jnp.where(decision, jnp.log(p[i]), 0.0), carry

  return players_lib.scripted(policy)


def _seat_player(seat: int, name: str) -> Callable[[KuhnPoker], players_lib.Player]:
  def make(game: KuhnPoker) -> players_lib.Player:
    return strategy_player(game, seat, STRATEGIES[name])
  make.__doc__ = f"Seat {seat} playing STRATEGIES[{name!r}]."
  return make


def average(game: KuhnPoker, error_rate: float = 0.2) -> players_lib.Player:
  """Player two playing the equilibrium, uniformly at random with ``error_rate``."""
  return strategy_player(game, game_lib.TWO, mixed(STRATEGIES["equilibrium"],
                                                   STRATEGIES["random"], error_rate))


PLAYER_ONE = {"human": _seat_player(game_lib.ONE, "heuristic"),
              **{name: _seat_player(game_lib.ONE, name) for name in STRATEGIES}}
PLAYER_TWO = {"expert": _seat_player(game_lib.TWO, "equilibrium"), "average": average,
              "noisy": _seat_player(game_lib.TWO, "random"),
              **{name: _seat_player(game_lib.TWO, name) for name in STRATEGIES}}
