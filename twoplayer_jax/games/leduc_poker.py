"""Leduc poker, exactly OpenSpiel's ``leduc_poker`` (default settings). Zero-sum.

Text (the shared transcript, as ``vocab.render`` shows it)::

  chance> leduc⟨eot⟩
  one> r⟨eot⟩
  two> c⟨eot⟩
  one> qc⟨eot⟩
  two> r⟨eot⟩
  one> f

Cards: six, two suits of three ranks J < Q < K; OpenSpiel's card c has rank c // 2 and
suit c % 2, written as one token ``JjQqKk``[c] (upper case suit 0, lower case suit 1).
Chance deals one private card to each player and draws the public card (all three
distinct); each antes one chip. Two betting rounds; in each, OpenSpiel's player 0 (player
one) acts first. An action is one token, in OpenSpiel's order: ``f`` fold (action 0,
legal only when facing a bet), ``c`` call (1; a check when there is nothing to call),
``r`` raise (2; call, then raise by 2 chips in round one and 4 in round two; at most two
raises per round). A call ends the round unless it is the round's first action; a fold
ends the game, and so does the end of round two (showdown: a pair with the public card
wins, else the higher rank; equal ranks split the pot).

Moves and turns. After an action that does not end the game the only legal token is
end-of-turn, which hands the move to the other seat. When round one ends the public card
is revealed: the seat to move (the one that did not end round one) writes its token, the
only legal token then. If that seat is player one it goes on to act in the same turn;
else it ends its turn (end-of-turn, forced) and player one acts. The game ends right
after its last action (``decided``). Every legal token at a decision is an action
(``legal_mask``); tokens written against the mask are skipped when the transcript is
read (a card token is read as the revealed card wherever the reveal is due).

Payoff: the chips won, ``[2]`` float32, exactly OpenSpiel's returns (-13 to 13); a game
that ends unfinished pays 0 to both; a showdown is settled with the dealt public card.

Hidden and private text: ``hidden = {"one": {"card": []}, "two": {"card": []},
"public": []}`` int32. Each seat reads only its own card, as its private text
``private(hidden, seat)``: the seat's digit and its card, e.g. ``1q`` (``private_length``
2). The public card is in no private text; the shared transcript shows it once revealed.
Scripted players see the state through ``game.seen_by`` (``twoplayer_jax.game``), which
keeps ``"public"`` (the payoff and the legal mask of the reveal need it); the strategies
here read the public card from the transcript only.

Information states. At a decision a seat knows its private text and the transcript,
which holds the public actions and, in round two, the public card (``betting`` reads
them); that is OpenSpiel's information state. ``information_state(state, seat)`` (or
``information_state_string(betting(state), card, seat)``) writes OpenSpiel's string, e.g.
``[Observer: 0][Private: 0][Round 2][Player: 0][Pot: 10][Money: 95 95][Public: 5]
[Round1: 2 2 1][Round2: ]`` (no line break): the seat (0 or 1) and its card's index, the
round (1 or 2), the player to act, the chips in the pot, each player's money (100 minus
its stake), the public card's index once revealed, and each round's actions (OpenSpiel's
indices). The 936 at decisions are one to one with the seats' token views (private text
+ transcript).

Exhaustive enumeration (exact best responses): ``ACTIONS``, ``chance_outcomes`` (every
deal: both private cards and the public card, with its probability), ``opening_from``,
then ``game_lib.step`` with action tokens at decisions and the only legal token elsewhere
(end-of-turn, the public card). Scripted players sample from behaviour strategies
``STRATEGIES[name](game, state, seat) -> [3]`` probabilities of ``ACTIONS``.
"""

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import kuhn_poker

FOLD, CALL, RAISE = 0, 1, 2  # OpenSpiel's actions.
ACTIONS = (ord("f"), ord("c"), ord("r"))  # Token of each action, in OpenSpiel's order.
CARDS = tuple(ord(c) for c in "JjQqKk")  # Token of each card 0..5; rank card // 2.
NUM_CARDS = 6
ANTE = 1
RAISE_SIZES = (2, 4)  # Per round.
MAX_RAISES = 2  # Per round.
STARTING_MONEY = 100  # Only shown in OpenSpiel's information state strings.
MAX_ROUND_ACTIONS = 4  # c r r c
MAX_ACTIONS = 2 * MAX_ROUND_ACTIONS
OPENING = "leduc"  # The opening's public text, between BOS and end-of-turn.
OPENING_LENGTH = len(OPENING) + 2
# Longest play: round one c r r c with four end-of-turns, the card, round two c r r c.
PLAY_LENGTH = 2 * MAX_ROUND_ACTIONS + 1 + 2 * MAX_ROUND_ACTIONS - 1

DECIDE, END_TURN, REVEAL, ENDED = 0, 1, 2, 3  # Phases: what is due next.
EOT_CLASS, CARD_CLASS, OTHER_CLASS = 3, 4, 5  # Token classes after FOLD, CALL, RAISE.


class _Node(NamedTuple):
  """A public state (see ``Betting``; ``revealed`` stands for its ``public``)."""
  phase: int
  player: int
  round: int
  stakes: int
  contrib: tuple[int, int]
  raises: int
  acted: int
  folded: int
  revealed: bool
  mover: int
  actions: tuple[int, ...]
  rounds: tuple[int, ...]


def _legal(node: _Node) -> tuple[bool, bool, bool]:
  """Fold only facing a bet, call always, raise below the raise limit."""
  return node.stakes > node.contrib[node.player], True, node.raises < MAX_RAISES


def _act(node: _Node, a: int) -> _Node:
  """The node after OpenSpiel's player ``node.player`` takes the legal action ``a``."""
  p = node.player
  stakes = node.stakes + (RAISE_SIZES[node.round] if a == RAISE else 0)
  contrib = list(node.contrib)
  if a != FOLD:
    contrib[p] = stakes  # A call or a raise brings the player's stake up to the stakes.
  acted = node.acted + 1
  round_over = a == CALL and acted >= 2  # A call ends the round unless it opens it.
  next_round = round_over and node.round == 0
  ended = a == FOLD or (round_over and node.round == 1)
  return node._replace(
      phase=ENDED if ended else END_TURN, player=0 if next_round else 1 - p,
      round=node.round + next_round, stakes=stakes, contrib=tuple(contrib),
      raises=0 if next_round else node.raises + (a == RAISE), acted=0 if next_round else acted,
      folded=p if a == FOLD else node.folded, actions=node.actions + (a,),
      rounds=node.rounds + (node.round,))


def _advance(node: _Node, c: int) -> _Node:
  """The node after a token of class ``c``: a legal action while one is due,
  end-of-turn while it is due, a card while the reveal is due; any other is skipped."""
  if node.phase == DECIDE and c in (FOLD, CALL, RAISE) and _legal(node)[c]:
    return _act(node, c)
  if node.phase == END_TURN and c == EOT_CLASS:
    reveal = node.round == 1 and not node.revealed
    return node._replace(phase=REVEAL if reveal else DECIDE, mover=1 - node.mover)
  if node.phase == REVEAL and c == CARD_CLASS:
    # The revealer acts on if it is player one (the first to act in round two).
    return node._replace(phase=DECIDE if node.mover == node.player else END_TURN,
                         revealed=True)
  return node


def _padded(xs: tuple[int, ...]) -> tuple[int, ...]:
  return xs + (-1,) * (MAX_ACTIONS - len(xs))


_NODES, _NEXT = kuhn_poker.automaton(
    _Node(DECIDE, 0, 0, ANTE, (ANTE, ANTE), 0, 0, -1, False, 0, (), ()), _advance, 6)
_CLASS = kuhn_poker.token_classes(
    {**{t: a for a, t in enumerate(ACTIONS)}, vocab.EOT: EOT_CLASS,
     **{t: CARD_CLASS for t in CARDS}}, OTHER_CLASS)
_CARD_OF = kuhn_poker.token_classes({t: c for c, t in enumerate(CARDS)}, -1)
_FIELDS = ("phase", "player", "round", "stakes", "contrib", "raises", "acted", "folded",
           "mover")
_TABLES = {
    **{k: np.array([getattr(n, k) for n in _NODES], np.int32) for k in _FIELDS},
    "actions": np.array([_padded(n.actions) for n in _NODES], np.int32),
    "rounds": np.array([_padded(n.rounds) for n in _NODES], np.int32),
    "num_actions": np.array([len(n.actions) for n in _NODES], np.int32),
    "legal": np.array([_legal(n) for n in _NODES], bool),
}


class Betting(NamedTuple):
  """The public state of one game, read from its transcript by ``betting``.

  Attributes:
    node: ``[]`` int32 the public state's index (``betting``'s automaton; the public
      card aside).
    phase: ``[]`` int32 ``DECIDE`` (an action is due), ``END_TURN`` (end-of-turn is
      due), ``REVEAL`` (the public card is due) or ``ENDED`` (the game is decided).
    player: ``[]`` int32 OpenSpiel's player to act next (0 or 1; seat ``player + 1``).
    round: ``[]`` int32 betting round, 0 or 1 (OpenSpiel's round minus one).
    stakes: ``[]`` int32 chips each player must have put in to stay in.
    contrib: ``[2]`` int32 chips each player has put in.
    raises: ``[]`` int32 raises in this round.
    acted: ``[]`` int32 actions in this round.
    folded: ``[]`` int32 the player who folded, -1 if none.
    mover: ``[]`` int32 the seat writing (0 for player one, 1 for player two).
    actions: ``[MAX_ACTIONS]`` int32 the actions taken (``FOLD``, ``CALL``, ``RAISE``),
      -1 after ``num_actions``.
    rounds: ``[MAX_ACTIONS]`` int32 the round of each action, -1 after.
    num_actions: ``[]`` int32 number of actions taken.
    legal: ``[3]`` bool the legal actions at a decision: fold only facing a bet, call
      always, raise below the raise limit.
    public: ``[]`` int32 the public card as revealed in the transcript, -1 before.
  """
  node: jax.Array
  phase: jax.Array
  player: jax.Array
  round: jax.Array
  stakes: jax.Array
  contrib: jax.Array
  raises: jax.Array
  acted: jax.Array
  folded: jax.Array
  mover: jax.Array
  actions: jax.Array
  rounds: jax.Array
  num_actions: jax.Array
  legal: jax.Array
  public: jax.Array


def betting(state: game_lib.GameState) -> Betting:
  """Reads the public state of one game from its transcript (jittable).

  Tokens after the opening are read in order: a legal action while an action is due,
  end-of-turn while one is due, a card while the reveal is due; any other is skipped.
  """
  node, before = kuhn_poker.run_automaton(state, OPENING_LENGTH, _NEXT, _CLASS, OTHER_CLASS)
  after = jnp.concatenate([before[1:], node[None]])
  phase = jnp.asarray(_TABLES["phase"])
  revealed_at = (phase[before] == REVEAL) & (phase[after] != REVEAL)
  cards = jnp.asarray(_CARD_OF)[jnp.clip(state.tokens[OPENING_LENGTH:], 0,
                                         vocab.VOCAB_SIZE - 1)]
  public = jnp.max(jnp.where(revealed_at, cards, -1))
  return Betting(node, **{k: jnp.asarray(v)[node] for k, v in _TABLES.items()},
                 public=public.astype(jnp.int32))


_betting = jax.jit(betting)


def history(state: game_lib.GameState) -> list[int]:
  """The actions taken so far, OpenSpiel's action indices in order, both rounds (Python,
  one game; round one's end follows from the rules, see ``Betting.rounds``)."""
  b = jax.device_get(_betting(state))
  return [int(a) for a in b.actions[:int(b.num_actions)]]


def information_state_string(b: Betting, card: int, seat: int) -> str:
  """OpenSpiel's information state string of player ``seat - 1`` holding ``card``, from
  the public state ``b`` of one game (numpy or jax scalars) at a decision."""
  n = int(b.num_actions)
  acts = [[str(int(a)) for a, r in zip(b.actions[:n], b.rounds[:n]) if int(r) == k]
          for k in (0, 1)]
  c0, c1 = (int(c) for c in b.contrib)
  public = f"[Public: {int(b.public)}]" if int(b.public) >= 0 else ""
  return (f"[Observer: {seat - 1}][Private: {int(card)}][Round {int(b.round) + 1}]"
          f"[Player: {int(b.player)}][Pot: {c0 + c1}]"
          f"[Money: {STARTING_MONEY - c0} {STARTING_MONEY - c1}]{public}"
          f"[Round1: {' '.join(acts[0])}][Round2: {' '.join(acts[1])}]")


def information_state(state: game_lib.GameState, seat: int) -> str:
  """OpenSpiel's ``information_state_string(seat - 1)`` of ``state`` at a decision
  (Python, one game)."""
  b = jax.device_get(_betting(state))
  return information_state_string(b, int(kuhn_poker.own_card(state.hidden, seat)), seat)


def _rank_strength(card: jax.Array, public: jax.Array) -> jax.Array:
  """Showdown strength: a pair with the public card beats any rank; else the rank."""
  rank = card // 2
  return jnp.where(rank == public // 2, 3 + rank, rank)


@dataclasses.dataclass(frozen=True)
class LeducPoker(game_lib.Game):
  """OpenSpiel's ``leduc_poker`` with its default rules (two players); no settings."""

  @property
  def max_opening_length(self) -> int:
    return OPENING_LENGTH  # BOS "leduc" EOT

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
    """Every deal, in OpenSpiel's order: player 0's card, player 1's, the public card.

    Returns:
      ``hidden``: the hidden information of each deal with a leading axis ``[120]``
      (numpy int32), and ``probs [120]`` float64, each 1/120.
    """
    deals = np.array([(a, b, c) for a in range(NUM_CARDS) for b in range(NUM_CARDS)
                      for c in range(NUM_CARDS) if len({a, b, c}) == 3], np.int32)
    hidden = {"one": {"card": deals[:, 0]}, "two": {"card": deals[:, 1]},
              "public": deals[:, 2]}
    return hidden, np.full(len(deals), 1.0 / len(deals))

  def opening_from(self, hidden: dict) -> game_lib.GameState:
    """The opening of the deal ``hidden`` (one deal, no leading axis): BOS ``leduc`` EOT."""
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
    """``[2]`` int32: the seat's digit and its card, e.g. ``1q``."""
    card = jnp.asarray(CARDS, jnp.int32)[kuhn_poker.own_card(hidden, seat)]
    return jnp.stack([ord("0") + jnp.asarray(seat, jnp.int32), card]).astype(jnp.int32)

  def legal_mask(self, state: game_lib.GameState) -> jax.Array:
    """The legal actions at a decision; the public card when it is due; else end-of-turn
    only (also once the game is over)."""
    b = betting(state)
    token = jnp.arange(vocab.VOCAB_SIZE)
    decide = jnp.zeros(vocab.VOCAB_SIZE, bool).at[jnp.asarray(ACTIONS)].set(b.legal)
    reveal = token == jnp.asarray(CARDS)[state.hidden["public"]]
    return jnp.where(b.phase == DECIDE, decide,
                     jnp.where(b.phase == REVEAL, reveal, token == vocab.EOT))

  def decided(self, state: game_lib.GameState) -> jax.Array:
    return betting(state).phase == ENDED

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    b = betting(state)
    public = state.hidden["public"]
    strength = jnp.stack([_rank_strength(state.hidden["one"]["card"], public),
                          _rank_strength(state.hidden["two"]["card"], public)])
    showdown = jnp.sign(strength[0] - strength[1]) * b.contrib[1]  # Stakes are equal.
    folded = jnp.where(b.folded == 0, -b.contrib[0], b.contrib[1])
    one = jnp.where(b.folded >= 0, folded, showdown)
    return jnp.where(b.phase == ENDED, jnp.stack([one, -one]), 0).astype(jnp.float32)


# Behaviour strategies: ``probs(game, state, seat) -> [3]`` float32 probabilities of fold,
# call and raise, zero on the illegal ones, from the seat's card and the public state of
# ``state`` (seen by the seat); at a decision of the seat, its strategy there.


def random_strategy(game, state, seat):
  """Uniform over the legal actions."""
  del game, seat
  legal = betting(state).legal.astype(jnp.float32)
  return legal / jnp.sum(legal)


def heuristic_strategy(game, state, seat):
  """Raises a strong hand (round one: a K; round two: a pair with the public card), or
  calls once the raises are spent; calls a fair one (round one: a Q; round two: a rank
  above the public card's); checks or folds the rest (folds facing a bet)."""
  del game
  b = betting(state)
  rank, public = kuhn_poker.own_card(state.hidden, seat) // 2, b.public // 2
  first = b.round == 0
  strong = jnp.where(first, rank == 2, rank == public)
  fair = jnp.where(first, rank == 1, rank > public)
  legal = b.legal
  action = jnp.where(strong, jnp.where(legal[RAISE], RAISE, CALL),
                     jnp.where(fair | ~legal[FOLD], CALL, FOLD))
  return (jnp.arange(3) == action).astype(jnp.float32)


STRATEGIES = {"random": random_strategy, "heuristic": heuristic_strategy}


def _seat_player(seat: int, name: str) -> Callable[[LeducPoker], players_lib.Player]:
  def make(game: LeducPoker) -> players_lib.Player:
    return kuhn_poker.strategy_player(game, seat, STRATEGIES[name], ACTIONS)
  make.__doc__ = f"Seat {seat} playing STRATEGIES[{name!r}]."
  return make


def average(game: LeducPoker, error_rate: float = 0.2) -> players_lib.Player:
  """Player two playing the heuristic, uniformly at random with ``error_rate``."""
  probs = kuhn_poker.mixed(heuristic_strategy, random_strategy, error_rate)
  return kuhn_poker.strategy_player(game, game_lib.TWO, probs, ACTIONS)


PLAYER_ONE = {"human": _seat_player(game_lib.ONE, "heuristic"),
              **{name: _seat_player(game_lib.ONE, name) for name in STRATEGIES}}
PLAYER_TWO = {"expert": _seat_player(game_lib.TWO, "heuristic"), "average": average,
              "noisy": _seat_player(game_lib.TWO, "random"),
              **{name: _seat_player(game_lib.TWO, name) for name in STRATEGIES}}
