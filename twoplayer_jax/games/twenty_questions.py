"""Twenty questions: player two finds player one's secret number. Cooperative.

Text (one line per turn, as ``vocab.render`` shows it; N = 64, secret 37)::

  one> [0,64)⟨eot⟩
  two> <32?⟨eot⟩
  one> no⟨eot⟩
  two> <48?⟨eot⟩
  one> yes⟨eot⟩
  ...
  two> =37⟨eot⟩

Chance draws the secret uniformly from [0, N); player one's opening states the range, so
player two moves first. Each of player two's turns is a question ``<k?`` ("is the secret
less than k?") or a guess ``=k`` (k in decimal, up to as many digits as N has, leading
zeros allowed); player one answers ``yes`` or ``no`` truthfully, and ``?`` to any other
(malformed) turn. The game ends (is decided) on a correct guess, after player two's
``max_questions``-th turn, on end-of-game or when the transcript is full.

Payoff, the same for both players: ``guess_reward`` if player two guessed right, minus
``question_cost`` for each other turn player two closed with end-of-turn (questions,
wrong guesses and malformed turns alike; a turn cut off unfinished is not charged). With
``per_turn_rewards`` the same amounts are paid as they fall due, at the end-of-turn of
each of player two's turns, so that the rewards sum to the payoff. With ``shaping`` every
step also pays the change of the potential ``question_cost * log2(N / size)`` (the bits
the answers so far have given, ``size`` being the length of the interval they leave the
secret in; 0 once the game has ended): potential-based shaping, which sums to 0 over a
game (the rewards still sum to the payoff) but pays each question, when answered, by the
bits it gave (``question_cost * (log2(size before / size after))``), so that a question
splitting the interval in half earns back its cost on either answer and a lopsided one
loses on average.

Hidden: the secret, from player two (``hidden["one"]``); only player one's scripted
players and the payoff read it. With ``secret_in_private`` a model can play player one
too: each seat has private text, ``secret 37`` for seat one (the secret in as many places
as N has digits, leading zeros included: ``secret 05``) and as many ``?`` for seat two
(``secret ??``), so seat two's view is the same whatever the secret; without it (the
default) there is no private text. The expert plays binary search from the transcript:
``ceil(log2 N)`` questions and a guess, the best that any player two can guarantee, since
t charged turns tell at most 2**t secrets apart. The lopsided player asks at a quarter of
the interval most of the time, a systematically worse search.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text


@dataclasses.dataclass(frozen=True)
class TwentyQuestions(game_lib.Game):
  """Find a secret in [0, ``num_secrets``) with threshold questions.

  Attributes:
    num_secrets: N, the number of possible secrets, 2 to 10**8.
    max_questions: player two's turns, guesses included, before the game ends.
    guess_reward: paid for a correct guess.
    question_cost: charged for each of player two's turns that is not a correct guess.
    per_turn_rewards: pay costs and reward as they fall due instead of at the end.
    shaping: also pay, at every step, the change of the potential ``question_cost *
      log2(N / size)`` of the interval the answers leave (0 once the game has ended).
    turn_slack: tokens a player-two turn may hold beyond the longest question.
    secret_in_private: state the secret in seat one's private text, so that a model can
      play player one.
  """
  num_secrets: int = 64
  max_questions: int = 10
  guess_reward: float = 1.0
  question_cost: float = 0.05
  per_turn_rewards: bool = False
  shaping: bool = False
  turn_slack: int = 2
  secret_in_private: bool = False

  def __post_init__(self):
    if not 2 <= self.num_secrets <= 10 ** 8:
      raise ValueError(f"num_secrets must be in [2, 10**8], got {self.num_secrets}")
    if self.max_questions < 1:
      raise ValueError(f"max_questions must be positive, got {self.max_questions}")

  @property
  def digits(self) -> int:
    return len(str(self.num_secrets))

  @property
  def max_opening_length(self) -> int:
    return len(f"[0,{self.num_secrets})") + 2  # BOS range EOT

  @property
  def min_opening_length(self) -> int:
    return self.max_opening_length  # Every opening has the same length.

  @property
  def private_length(self) -> int:
    return len("secret ") + self.digits if self.secret_in_private else 0

  def private(self, hidden, seat) -> jax.Array:
    """``secret 37``, the secret in ``digits`` places, for seat one; ``secret ??`` for
    seat two; no text without ``secret_in_private``."""
    if not self.secret_in_private:
      return super().private(hidden, seat)
    powers = jnp.asarray(10 ** np.arange(self.digits - 1, -1, -1), jnp.int32)
    digits = text.ZERO + hidden["one"]["secret"] // powers % 10
    shown = jnp.where(seat == game_lib.ONE, digits, ord("?"))
    return jnp.concatenate([text.literal("secret ")[0], shown]).astype(jnp.int32)

  @property
  def max_length(self) -> int:
    question = self.digits + 3 + self.turn_slack  # < k ? EOT
    answer = 4  # y e s EOT
    return (self.max_opening_length + self.max_questions * question
            + (self.max_questions - 1) * answer)

  @property
  def max_turns(self) -> int:
    return 2 * self.max_questions  # The opening and then turns of two and one alternately.

  def opening(self, key: jax.Array) -> game_lib.GameState:
    secret = jax.random.randint(key, (), 0, self.num_secrets, jnp.int32)
    tokens, length = text.concat(text.token(vocab.BOS), text.literal(f"[0,{self.num_secrets})"),
                                 text.token(vocab.EOT))
    owner = jnp.where(jnp.arange(tokens.shape[0]) == 0, game_lib.CHANCE, game_lib.ONE)
    return game_lib.new_state(self, tokens, owner, length, to_move=game_lib.TWO, turn=1,
                              hidden={"one": {"secret": secret}})

  def read_move(self, transcript: jax.Array, start: jax.Array, end: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Reads the turn ``transcript[start:end]`` (its end-of-turn at ``end``).

    Returns:
      ``question []`` bool (``<k?``), ``guess []`` bool (``=k``) and ``k []`` int32.
    """
    k, n = text.read_number(transcript, start + 1, self.digits)
    head = transcript.at[start].get(mode="fill", fill_value=vocab.PAD)
    after = transcript.at[start + 1 + n].get(mode="fill", fill_value=vocab.PAD)
    question = (head == ord("<")) & (n >= 1) & (after == ord("?")) & (end == start + n + 2)
    guess = (head == ord("=")) & (n >= 1) & (end == start + n + 1)
    return question, guess, k

  def _guessed(self, state: game_lib.GameState, start, end) -> jax.Array:
    _, guess, k = self.read_move(state.tokens, start, end)
    return guess & (k == state.hidden["one"]["secret"])

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    starts = text.turn_starts(state.tokens, state.length, self.max_turns)
    turn = jnp.arange(1, self.max_turns, 2)  # Player two's turns; the opening is turn 0.
    closed = turn < jnp.sum((state.tokens == vocab.EOT) & (jnp.arange(self.max_length)
                                                           < state.length))
    guessed = jax.vmap(lambda s, e: self._guessed(state, s, e))(starts[turn],
                                                                starts[turn + 1] - 1)
    paid = (self.guess_reward * jnp.any(closed & guessed)
            - self.question_cost * jnp.sum(closed & ~guessed))
    return paid * jnp.ones(2, jnp.float32)

  def reward(self, state: game_lib.GameState, next_state: game_lib.GameState) -> jax.Array:
    shaped = self.potential(next_state) - self.potential(state) if self.shaping else 0.0
    if not self.per_turn_rewards:
      return super().reward(state, next_state) + shaped
    closes = ~state.done & (state.to_move == game_lib.TWO) & (next_state.turn > state.turn)
    start = text.turn_start(next_state.tokens, state.length)
    paid = jnp.where(self._guessed(next_state, start, state.length), self.guess_reward,
                     -self.question_cost)
    return (jnp.where(closes, paid, 0.0) + shaped) * jnp.ones(2, jnp.float32)

  def potential(self, state: game_lib.GameState) -> jax.Array:
    """``[]`` the shaping potential: ``question_cost * log2(N / size)`` of the interval
    the answers so far leave, 0 once the game has ended."""
    lo, hi = interval(self, state)
    bits = jnp.log2(self.num_secrets / jnp.maximum(hi - lo, 1).astype(jnp.float32))
    return jnp.where(state.done, 0.0, self.question_cost * bits)

  def decided(self, state: game_lib.GameState) -> jax.Array:
    end = state.length - 1
    closed_by_two = (state.tokens[end] == vocab.EOT) & (state.owner[end] == game_lib.TWO)
    return closed_by_two & self._guessed(state, text.turn_start(state.tokens, end), end)


def human(game: TwentyQuestions) -> players_lib.Player:
  """Player one: answers player two's last turn truthfully from the secret it holds."""
  replies = (text.literal("yes"), text.literal("no"), text.literal("?"))

  def plan(state, key):
    del key
    end = state.length - 1  # Player two's end-of-turn.
    question, guess, k = game.read_move(state.tokens, text.turn_start(state.tokens, end), end)
    secret = state.hidden["one"]["secret"]
    yes = jnp.where(question, secret < k, secret == k)
    tokens, length = text.choose(jnp.where(question | guess, jnp.where(yes, 0, 1), 2), *replies)
    return tokens, length, jnp.float32(0.0)

  return text.speaker(game_lib.ONE, plan, 3)


def interval(game: TwentyQuestions, state: game_lib.GameState) -> tuple[jax.Array, jax.Array]:
  """``[lo, hi)``: where the secret lies by the answers to player two's questions so far."""
  starts = text.turn_starts(state.tokens, state.length, game.max_turns + 1)
  ask = jnp.arange(1, game.max_turns, 2)
  answered = ask + 1 < jnp.sum((state.tokens == vocab.EOT)
                               & (jnp.arange(game.max_length) < state.length))
  question, _, k = jax.vmap(lambda s, e: game.read_move(state.tokens, s, e))(
      starts[ask], starts[ask + 1] - 1)
  said = lambda word: jax.vmap(lambda s, e: text.spells(state.tokens, s, e, text.literal(word)))(
      starts[ask + 1], starts[ask + 2] - 1)
  lo = jnp.max(jnp.where(answered & question & said("no"), k, 0))
  hi = jnp.min(jnp.where(answered & question & said("yes"), k, game.num_secrets))
  return lo, hi


def _move(game: TwentyQuestions, guess: jax.Array, k: jax.Array):
  """The text of a guess ``=k`` or a question ``<k?``."""
  return text.choose(guess.astype(jnp.int32),
                     text.concat(text.literal("<"), text.number(k, game.digits),
                                 text.literal("?")),
                     text.concat(text.literal("="), text.number(k, game.digits)))


def _searcher(game: TwentyQuestions, error_rate: float) -> players_lib.Player:
  """Player two that plays binary search, erring with probability ``error_rate``.

  An error is, with equal chances, a guess uniform in the interval left (premature unless
  one number is left) or a question at a threshold uniform inside it (a lopsided split).
  """

  def plan(state, key):
    k_err, k_kind, k_k = jax.random.split(key, 3)
    lo, hi = interval(game, state)
    size = jnp.maximum(hi - lo, 1)
    best_guess, best_k = size == 1, lo + size // 2
    wrong = jax.random.bernoulli(k_err, error_rate)
    wild_guess = jax.random.bernoulli(k_kind)
    splits = jnp.maximum(size - 1, 1)
    wild_k = jnp.where(wild_guess, lo + jax.random.randint(k_k, (), 0, size),
                       lo + 1 + jax.random.randint(k_k, (), 0, splits))
    guess = jnp.where(wrong, wild_guess, best_guess)
    k = jnp.clip(jnp.where(wrong, wild_k, best_k), 0, game.num_secrets)
    p = (1 - error_rate) * ((guess == best_guess) & (k == best_k)) + error_rate / 2 * (
        jnp.where(guess, 1 / size, 1 / splits))
    return *_move(game, guess, k), jnp.log(p)

  return text.speaker(game_lib.TWO, plan, game.digits + 2)


def expert(game: TwentyQuestions) -> players_lib.Player:
  """Player two that plays binary search: ``ceil(log2 N)`` questions, then the guess."""
  return _searcher(game, 0.0)


def average(game: TwentyQuestions, error_rate: float = 0.2) -> players_lib.Player:
  """Player two that plays binary search but errs with probability ``error_rate``."""
  return _searcher(game, error_rate)


def lopsided(game: TwentyQuestions, rate: float = 0.8) -> players_lib.Player:
  """Player two that asks at a quarter of the interval left (``<lo + max(size // 4, 1)?``)
  in ``rate`` of its questions and at the half otherwise, and guesses once one number is
  left: a search systematically worse than binary search (about ``0.19 log2 N`` more
  questions at ``rate`` 0.8), that never errs otherwise."""

  def plan(state, key):
    lo, hi = interval(game, state)
    size = jnp.maximum(hi - lo, 1)
    guess, half, quarter = size == 1, lo + size // 2, lo + jnp.maximum(size // 4, 1)
    k = jnp.where(guess, lo, jnp.where(jax.random.bernoulli(key, rate), quarter, half))
    p = jnp.where(guess | (half == quarter), 1.0, jnp.where(k == quarter, rate, 1 - rate))
    return *_move(game, guess, k), jnp.log(p)

  return text.speaker(game_lib.TWO, plan, game.digits + 2)


def noisy(game: TwentyQuestions) -> players_lib.Player:
  """Player two that guesses uniformly at random a quarter of the time, else asks about a
  uniformly random threshold in [1, N)."""
  n = game.num_secrets

  def plan(state, key):
    del state
    k_kind, k_k = jax.random.split(key)
    guess = jax.random.bernoulli(k_kind, 0.25)
    k = jnp.where(guess, jax.random.randint(k_k, (), 0, n), jax.random.randint(k_k, (), 1, n))
    return *_move(game, guess, k), jnp.log(jnp.where(guess, 0.25 / n, 0.75 / (n - 1)))

  return text.speaker(game_lib.TWO, plan, game.digits + 2)


PLAYER_ONE = {"human": human}
PLAYER_TWO = {"expert": expert, "average": average, "lopsided": lopsided, "noisy": noisy}
