"""Facts: player one asks for an entity's colour; player two answers or abstains.

Text (one line per turn, as ``vocab.render`` shows it)::

  one> colour of kemo?⟨eot⟩
  two> red⟨eot⟩

or, abstaining, ``two> idk⟨eot⟩``. The knowledge base is generated from ``seed``: each
of ``num_entities`` entities has a distinct four-letter name (consonant, vowel,
consonant, vowel) and a colour drawn from the first ``num_values`` of ``COLOURS``.
Entities ``0 .. num_seen - 1`` are "seen": pre-training text states their facts, as
``fact_text`` writes them (``kemo is red.``); the others are never stated anywhere, so
nothing can teach their colour. ``ask`` says which entities chance asks about; the last
``held_out`` entities (unseen ones) it never asks about, so that training on the game
leaves them out.

Chance writes player one's question as the opening (player one is the fixed "human"),
so player two moves first in play; the game ends when player two ends its turn, writes
end-of-game or fills the transcript. Payoff, the same for both players (cooperative):
+1 when player two's turn is exactly the entity's colour followed by end-of-turn, 0 when
it is exactly ``idk`` followed by end-of-turn (abstaining), ``-wrong_cost`` for anything
else (a wrong colour, garbage, or no end-of-turn). Hidden from player two: the colour
(and whether the entity was seen, which only its training can tell it).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text

COLOURS = ("red", "blue", "green", "black", "white", "pink", "grey", "brown")
ABSTAIN = "idk"
CONSONANTS, VOWELS = "bdfghjklmnprstvz", "aeiou"
NAME_LENGTH = 4
NUM_NAMES = (len(CONSONANTS) * len(VOWELS)) ** 2
WORD_WIDTH = max(len(w) for w in COLOURS + (ABSTAIN,))
QUESTION = ("colour of ", "?")


def _word_table(words) -> np.ndarray:
  """``[len(words), WORD_WIDTH]`` tokens of each word, PAD after it."""
  table = np.full((len(words), WORD_WIDTH), vocab.PAD, np.int32)
  for i, w in enumerate(words):
    table[i, :len(w)] = vocab.from_bytes(w.encode())
  return table


@functools.lru_cache(maxsize=16)
def knowledge_base(seed: int, num_entities: int, num_values: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Names ``[num_entities, 4]`` int32 tokens (distinct) and colours ``[num_entities]``."""
  rng = np.random.default_rng(seed)
  code = rng.choice(NUM_NAMES, num_entities, replace=False)
  places = []
  for alphabet in (VOWELS, CONSONANTS, VOWELS, CONSONANTS):  # Last letter first.
    places.append(np.frombuffer(alphabet.encode(), np.uint8)[code % len(alphabet)])
    code = code // len(alphabet)
  names = np.stack(places[::-1], axis=1).astype(np.int32)
  return names, rng.integers(num_values, size=num_entities).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Facts(game_lib.Game):
  """Answer what you know, abstain on what you cannot.

  Attributes:
    num_entities: entities in the knowledge base, 1 to 6400.
    num_seen: entities whose facts pre-training states (the first ones).
    ask: which entities chance asks about: "seen", "unseen" or "all".
    held_out: the last entities, unseen ones, that chance never asks about.
    wrong_cost: what a wrong answer costs, c >= 0 (abstaining pays 0).
    num_values: colours in use, 2 to 8.
    seed: generates the knowledge base.
    answer_slack: tokens player two may write beyond the longest colour.
  """
  num_entities: int = 64
  num_seen: int = 32
  ask: str = "all"
  held_out: int = 0
  wrong_cost: float = 1.0
  num_values: int = len(COLOURS)
  seed: int = 0
  answer_slack: int = 2

  def __post_init__(self):
    if not 1 <= self.num_entities <= NUM_NAMES:
      raise ValueError(f"num_entities must be in [1, {NUM_NAMES}], got {self.num_entities}")
    if not 2 <= self.num_values <= len(COLOURS):
      raise ValueError(f"num_values must be in [2, {len(COLOURS)}], got {self.num_values}")
    if self.ask not in ("seen", "unseen", "all"):
      raise ValueError(f"ask must be 'seen', 'unseen' or 'all', got {self.ask!r}")
    low, high = self.asked_range
    if not (0 <= self.num_seen <= self.num_entities and low < high):
      raise ValueError(f"num_seen={self.num_seen} of {self.num_entities} entities leaves "
                       f"none to ask about with ask={self.ask!r}")
    if not 0 <= self.held_out <= self.num_entities - self.num_seen:
      raise ValueError(f"held_out must be in [0, {self.num_entities - self.num_seen}] (the "
                       f"unseen entities), got {self.held_out}")
    if self.wrong_cost < 0:
      raise ValueError(f"wrong_cost must be >= 0, got {self.wrong_cost}")

  @property
  def asked_range(self) -> tuple[int, int]:
    """Entities ``[low, high)`` chance asks about."""
    asked = self.num_entities - self.held_out
    return {"seen": (0, self.num_seen), "unseen": (self.num_seen, asked),
            "all": (0, asked)}[self.ask]

  @property
  def max_opening_length(self) -> int:
    return 1 + len(QUESTION[0]) + NAME_LENGTH + len(QUESTION[1]) + 1

  @property
  def min_opening_length(self) -> int:
    return self.max_opening_length  # Every opening has the same length.

  @property
  def max_length(self) -> int:
    return self.max_opening_length + WORD_WIDTH + 1 + self.answer_slack

  @property
  def max_turns(self) -> int:
    return 2

  def name(self, entity: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The entity's name as a piece of text."""
    names, _ = knowledge_base(self.seed, self.num_entities, self.num_values)
    return jnp.asarray(names)[entity], jnp.int32(NAME_LENGTH)

  def colour(self, entity: jax.Array) -> jax.Array:
    """``[]`` int32 index into ``COLOURS`` of the entity's colour."""
    _, colours = knowledge_base(self.seed, self.num_entities, self.num_values)
    return jnp.asarray(colours)[entity]

  def opening(self, key: jax.Array) -> game_lib.GameState:
    entity = jax.random.randint(key, (), *self.asked_range, jnp.int32)
    tokens, length = text.concat(text.token(vocab.BOS), text.literal(QUESTION[0]),
                                 self.name(entity), text.literal(QUESTION[1]),
                                 text.token(vocab.EOT))
    owner = jnp.where(jnp.arange(tokens.shape[0]) == 0, game_lib.CHANCE, game_lib.ONE)
    return game_lib.new_state(
        self, tokens, owner, length, to_move=game_lib.TWO, turn=1,
        hidden={"entity": entity, "colour": self.colour(entity),
                "seen": entity < self.num_seen})

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    start = state.opening_length

    def said(word):
      piece = text.concat(word, text.token(vocab.EOT))
      return text.matches(state.tokens, start, piece) & (state.length >= start + piece[1])

    paid = jnp.where(said(colour_word(state.hidden["colour"])), 1.0,
                     jnp.where(said(text.literal(ABSTAIN)), 0.0, -self.wrong_cost))
    return paid * jnp.ones(2)


def colour_word(colour: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Colour ``colour`` (an index into ``COLOURS``) as a piece of text."""
  table = _word_table(COLOURS)
  return jnp.asarray(table)[colour], jnp.sum(jnp.asarray(table)[colour] != vocab.PAD)


def fact_text(game: Facts, entity: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The statement of an entity's fact for pre-training text, e.g. ``kemo is red.``"""
  return text.concat(game.name(entity), text.literal(" is "),
                     colour_word(game.colour(entity)), text.literal("."))


def _reply(choose) -> players_lib.Player:
  """Player two that writes the word ``choose(state, key) -> (word, logp)`` picks at the
  first token of its turn (``text.speaker``): a colour index, or -1 to abstain. The
  first token's log-probability is the whole reply's, the others' are 0."""
  abstain = jnp.asarray(_word_table((ABSTAIN,))[0])

  def plan(state, key):
    word, logp = choose(state, key)
    tokens, length = colour_word(jnp.maximum(word, 0))
    return (jnp.where(word < 0, abstain, tokens), jnp.where(word < 0, len(ABSTAIN), length),
            logp)

  return text.speaker(game_lib.TWO, plan, WORD_WIDTH)


def expert(game: Facts) -> players_lib.Player:
  """Player two that knows exactly the seen facts: answers them, abstains on the rest."""
  del game
  return _reply(lambda state, key: (
      jnp.where(state.hidden["seen"], state.hidden["colour"], -1), jnp.float32(0.0)))


def average(game: Facts, error_rate: float = 0.2) -> players_lib.Player:
  """The always-answering player: on seen entities wrong with probability
  ``error_rate`` (a uniform other colour); on unseen ones it guesses a uniform colour
  rather than abstain, the habit that is hallucination."""
  v = game.num_values

  def choose(state, key):
    k_err, k_other, k_guess = jax.random.split(key, 3)
    colour, seen = state.hidden["colour"], state.hidden["seen"]
    wrong = jax.random.bernoulli(k_err, error_rate)
    recalled = jnp.where(wrong, (colour + jax.random.randint(k_other, (), 1, v)) % v, colour)
    guess = jax.random.randint(k_guess, (), 0, v)
    logp = jnp.where(seen, jnp.log(jnp.where(wrong, error_rate / (v - 1), 1 - error_rate)),
                     -jnp.log(v))
    return jnp.where(seen, recalled, guess), logp

  return _reply(choose)


def noisy(game: Facts) -> players_lib.Player:
  """Player two that writes 1 to ``WORD_WIDTH`` uniformly random lowercase letters."""
  del game

  def policy(length, state, key):
    k_length, k_letter = jax.random.split(key)
    first = state.turn_length == 0
    length = jnp.where(first, jax.random.randint(k_length, (), 1, WORD_WIDTH + 1), length)
    ends = state.turn_length >= length
    letter = ord("a") + jax.random.randint(k_letter, (), 0, 26)
    logp = jnp.where(ends, 0.0, -jnp.log(26.0)) - jnp.where(first, jnp.log(WORD_WIDTH), 0.0)
    return jnp.where(ends, vocab.EOT, letter), logp, length

  return players_lib.scripted(policy, init_carry=lambda state: jnp.int32(0))


def human(game: Facts) -> players_lib.Player:
  """Player one. Its question is the opening; given the move again, it ends the game."""
  del game
  return players_lib.scripted(lambda carry, state, key: (vocab.EOG, 0.0, carry))


PLAYER_ONE = {"human": human}
PLAYER_TWO = {"expert": expert, "average": average, "noisy": noisy}
