"""Bargaining: two players split a pool of items they value privately. General-sum.

Text (one line per turn, as ``vocab.render`` shows it; three item types)::

  chance> items 2,1,3⟨eot⟩
  one> offer:2,0,1⟨eot⟩
  two> offer:1,1,3⟨eot⟩
  one> accept⟨eot⟩

Chance draws how many items of each type there are (1 to ``max_count``) and each
player's value of one item of each type (0 to ``max_value``; a player valuing nothing
values everything at 1), and writes the counts in the opening. Players then move in
turn, player one first: ``offer:a,b,c`` proposes that the proposer keeps a, b and c
items of each type and the other player gets the rest; ``accept`` accepts the offer made
in the turn just before. The game is decided by an accept; it ends without a deal after
``max_rounds`` player turns, on end-of-game or when the transcript is full. A malformed
turn (also an offer of more items than there are, or an accept with no offer before it)
is no offer: nothing stands for the next player to accept.

Payoff: with a deal, each player's value of its share divided by its value of all the
items (so in [0, 1]); without one, 0 for both.

Hidden: each player's values, from the other (``hidden["one"]``, ``hidden["two"]``); each
seat's scripted players read only their own. The counts are public. The values never
appear in the shared transcript: each seat's private text states its own
(``values 5,0,2``), which its model player reads before the transcript.

Measures of a game's outcome among every split of its items (``deal_measures``): whether
it is Pareto optimal, its welfare and its Nash product, each against the best split.
"""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text

OFFER, ACCEPT = "offer:", "accept"


def _digit_list(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``a,b,c``: single digits ``x [n]`` separated by commas."""
  n = x.shape[0]
  pairs = jnp.stack([text.ZERO + x, jnp.full(n, ord(","))], 1).reshape(-1)[:2 * n - 1]
  return pairs.astype(jnp.int32), jnp.int32(2 * n - 1)


@dataclasses.dataclass(frozen=True)
class Bargaining(game_lib.Game):
  """Alternating offers over a pool of items.

  Attributes:
    num_types: item types, 1 to 5.
    max_count: most items of one type, 1 to 9.
    max_value: highest value of one item, 1 to 9.
    max_rounds: player turns before the game ends without a deal.
    turn_slack: tokens a turn may hold beyond the longest offer.
  """
  num_types: int = 3
  max_count: int = 3
  max_value: int = 5
  max_rounds: int = 6
  turn_slack: int = 2

  def __post_init__(self):
    if not (1 <= self.num_types <= 5 and 1 <= self.max_count <= 9 and 1 <= self.max_value <= 9):
      raise ValueError(f"need 1 <= num_types <= 5, 1 <= max_count <= 9 and 1 <= max_value <= 9"
                       f", got {self.num_types}, {self.max_count}, {self.max_value}")
    if self.max_rounds < 2:
      raise ValueError(f"max_rounds must be at least 2 (an offer and an accept), got "
                       f"{self.max_rounds}")

  @property
  def offer_width(self) -> int:
    return len(OFFER) + 2 * self.num_types - 1

  @property
  def max_opening_length(self) -> int:
    return 2 + len("items ") + 2 * self.num_types - 1  # BOS ... EOT

  @property
  def private_length(self) -> int:
    return len("values ") + 2 * self.num_types - 1

  def private(self, hidden, seat) -> jax.Array:
    """``values a,b,c``: the seat's own values."""
    values = jnp.where(seat == game_lib.ONE, hidden["one"]["values"], hidden["two"]["values"])
    return text.concat(text.literal("values "), _digit_list(values))[0]

  @property
  def min_opening_length(self) -> int:
    return self.max_opening_length  # Every opening has the same length.

  @property
  def max_length(self) -> int:
    return self.max_opening_length + self.max_rounds * (self.offer_width + 1 + self.turn_slack)

  @property
  def max_turns(self) -> int:
    return 1 + self.max_rounds

  def opening(self, key: jax.Array) -> game_lib.GameState:
    k_count, k_one, k_two = jax.random.split(key, 3)
    counts = jax.random.randint(k_count, (self.num_types,), 1, self.max_count + 1, jnp.int32)

    def values(key):
      v = jax.random.randint(key, (self.num_types,), 0, self.max_value + 1, jnp.int32)
      return jnp.where(jnp.all(v == 0), 1, v)

    hidden = {"counts": counts, "one": {"values": values(k_one)},
              "two": {"values": values(k_two)}}
    tokens, length = text.concat(text.token(vocab.BOS), text.literal("items "),
                                 _digit_list(counts), text.token(vocab.EOT))
    return game_lib.new_state(self, tokens, jnp.zeros_like(tokens), length, to_move=game_lib.ONE,
                              turn=1, hidden=hidden)

  def read_offer(self, transcript: jax.Array, start: jax.Array, end: jax.Array,
                 counts: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reads ``transcript[start:end]`` as an offer: ``valid []`` bool, ``keep [num_types]``."""
    listed = text.window(transcript, start + len(OFFER), 2 * self.num_types - 1)
    keep = listed[0::2] - text.ZERO
    valid = (text.matches(transcript, start, text.literal(OFFER))
             & (end - start == self.offer_width) & jnp.all(listed[1::2] == ord(","))
             & jnp.all((keep >= 0) & (keep <= counts)))
    return valid, jnp.where(valid, keep, 0)

  def standing_offer(self, state: game_lib.GameState, end: jax.Array):
    """The offer of the turn closed by the end-of-turn at ``end``.

    Returns:
      ``valid []`` bool, ``keep [num_types]`` what its proposer keeps, and ``proposer []``.
    """
    start = text.turn_start(state.tokens, end)
    valid, keep = self.read_offer(state.tokens, start, end, state.hidden["counts"])
    # The opening (chance's, from position 0) is never an offer: it starts with BOS.
    return valid, keep, state.owner[start]

  def _deal(self, state: game_lib.GameState):
    """Whether the last turn accepted the offer before it: ``deal``, ``keep``, ``proposer``."""
    end = state.length - 1
    start = text.turn_start(state.tokens, end)
    accepted = (state.tokens[end] == vocab.EOT) & text.spells(state.tokens, start, end,
                                                              text.literal(ACCEPT))
    valid, keep, proposer = self.standing_offer(state, start - 1)
    return accepted & valid & (start > 0), keep, proposer

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    deal, keep, proposer = self._deal(state)
    counts = state.hidden["counts"]
    share_one = jnp.where(proposer == game_lib.ONE, keep, counts - keep)
    shares = jnp.stack([share_one, counts - share_one])
    values = jnp.stack([state.hidden["one"]["values"], state.hidden["two"]["values"]])
    worth = jnp.sum(shares * values, 1) / jnp.sum(counts * values, 1)
    return jnp.where(deal, worth, 0.0).astype(jnp.float32)

  def decided(self, state: game_lib.GameState) -> jax.Array:
    return self._deal(state)[0]


def _move(accept: jax.Array, keep: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The text of ``accept`` or of an offer to keep ``keep [num_types]``."""
  return text.choose(accept.astype(jnp.int32),
                     text.concat(text.literal(OFFER), _digit_list(keep)), text.literal(ACCEPT))


def _splits(game: Bargaining) -> np.ndarray:
  """``[S, num_types]`` every way to keep up to ``max_count`` items of each type."""
  return np.array(list(itertools.product(range(game.max_count + 1), repeat=game.num_types)),
                  np.int32)


def deal_measures(game: Bargaining, hidden: dict, payoffs: jax.Array) -> dict[str, jax.Array]:
  """How good one finished game's outcome is among every split of its items; ``vmap``
  for a batch.

  Each feasible split (player one's share, at most the counts) pays each player as
  ``payoff`` does: the value of its share over its value of all the items. No deal is the
  outcome (0, 0), judged as any other.

  Args:
    game: the rules.
    hidden: the game's hidden information: ``counts``, both seats' ``values`` (each
      ``[num_types]``).
    payoffs: ``[2]`` what the game paid, player one's first.

  Returns:
    ``[]`` arrays: ``pareto_optimal`` bool, no split pays both players at least their
    payoffs and one of them more (up to 1e-6); ``welfare``, the payoffs' sum over the
    most that any split pays both together; ``nash_product``, their product over the
    most that any split gives (1 where every split leaves a player nothing). Both in
    [0, 1] for payoffs that ``payoff`` gives (not a forfeit's).
  """
  counts, payoffs = hidden["counts"], jnp.asarray(payoffs, jnp.float32)
  splits = jnp.asarray(_splits(game))  # [S, num_types]: player one's share.
  feasible = jnp.all(splits <= counts, 1)
  shares = jnp.stack([splits, counts - splits])  # [2, S, num_types]
  values = jnp.stack([hidden["one"]["values"], hidden["two"]["values"]])
  worth = jnp.sum(shares * values[:, None], 2) / jnp.sum(counts * values, 1)[:, None]  # [2, S]
  paid = payoffs[:, None]
  dominates = feasible & jnp.all(worth >= paid - 1e-6, 0) & jnp.any(worth > paid + 1e-6, 0)
  most_welfare = jnp.max(jnp.where(feasible, worth[0] + worth[1], 0.0))
  most_product = jnp.max(jnp.where(feasible, worth[0] * worth[1], 0.0))
  product = payoffs[0] * payoffs[1]
  return {"pareto_optimal": ~jnp.any(dominates),
          "welfare": jnp.sum(payoffs) / most_welfare,
          "nash_product": jnp.where(most_product > 0, product / most_product, 1.0)}


def _random_move(game: Bargaining, state, key):
  """Accept, or an offer uniform over the possible ones, with equal chances."""
  k_accept, k_split = jax.random.split(key)
  splits = jnp.asarray(_splits(game))
  possible = jnp.all(splits <= state.hidden["counts"], 1)
  pick = jax.random.categorical(k_split, jnp.where(possible, 0.0, -jnp.inf))
  accept = jax.random.bernoulli(k_accept)
  logp = jnp.log(jnp.where(accept, 0.5, 0.5 / jnp.sum(possible)))
  return accept, splits[pick], logp


def _negotiator(game: Bargaining, seat: int, first_target: float, last_target: float,
                error_rate: float = 0.0) -> players_lib.Player:
  """A player for ``seat`` that wants a share worth a target fraction of its values.

  The target falls linearly from ``first_target`` at the first player turn to
  ``last_target`` at the last but one; at the last turn (no deal else) it is 0. It
  accepts a standing offer that meets its target; otherwise it offers the split that
  meets its target and gives the most items away (so never keeps items it values at 0:
  they cost it nothing and may be worth something to the other player). With probability
  ``error_rate`` it makes ``_random_move`` instead.
  """
  seat_key = "one" if seat == game_lib.ONE else "two"
  splits = _splits(game)

  def plan(state, key):
    k_err, k_random = jax.random.split(key)
    counts, values = state.hidden["counts"], state.hidden[seat_key]["values"]
    total = jnp.sum(counts * values)
    played = state.turn - 1  # Player turns before this one.
    progress = jnp.minimum(played / max(game.max_rounds - 2, 1), 1.0)
    target = jnp.where(played >= game.max_rounds - 1, 0.0,
                       first_target + (last_target - first_target) * progress)
    standing, keep, proposer = game.standing_offer(state, state.length - 1)
    offered = jnp.sum((counts - keep) * values) / total
    accept = standing & (proposer == 3 - seat) & (offered >= target)
    worth = jnp.asarray(splits) @ values / total
    fits = jnp.all(splits <= counts, 1) & (worth >= target - 1e-6)
    given = jnp.sum(counts - splits, 1)
    best = jnp.argmax(jnp.where(fits, given * (game.max_value + 1.0) + worth, -jnp.inf))
    wrong = jax.random.bernoulli(k_err, error_rate)
    r_accept, r_keep, r_logp = _random_move(game, state, k_random)
    accept = jnp.where(wrong, r_accept, accept)
    keep = jnp.where(wrong, r_keep, jnp.asarray(splits)[best])
    logp = jnp.where(wrong, jnp.log(error_rate) + r_logp, jnp.log(1 - error_rate))
    return *_move(accept, keep), logp

  return text.speaker(seat, plan, game.offer_width)


def human(game: Bargaining) -> players_lib.Player:
  """Player one: asks for 90% of its values at first, settles for half by the end."""
  return _negotiator(game, game_lib.ONE, 0.9, 0.5)


def expert(game: Bargaining) -> players_lib.Player:
  """Player two: holds out for all it values at first, settles for 60% by the end."""
  return _negotiator(game, game_lib.TWO, 1.0, 0.6)


def average(game: Bargaining, error_rate: float = 0.2) -> players_lib.Player:
  """The expert, making a random move with probability ``error_rate``."""
  return _negotiator(game, game_lib.TWO, 1.0, 0.6, error_rate)


def noisy(game: Bargaining) -> players_lib.Player:
  """Player two that accepts or makes a uniformly random offer, with equal chances."""

  def plan(state, key):
    accept, keep, logp = _random_move(game, state, key)
    return *_move(accept, keep), logp

  return text.speaker(game_lib.TWO, plan, game.offer_width)


PLAYER_ONE = {"human": human}
PLAYER_TWO = {"expert": expert, "average": average, "noisy": noisy}
