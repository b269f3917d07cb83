"""Arithmetic: player one asks for a sum, player two answers. Cooperative.

Text (one line per turn, as ``vocab.render`` shows it)::

  one> 317+45=⟨eot⟩
  two> 362⟨eot⟩

Chance draws two operands uniformly from [0, 10**num_digits); player one's question is
part of the opening (player one is the fixed "human" asking it), so player two moves
first in play. The game ends when player two ends its turn (two turns in all), writes
end-of-game, or fills the transcript. Payoff: (1, 1) when player two's turn is exactly
the decimal sum followed by end-of-turn, else (0, 0). Nothing is hidden: the operands
are in the question.
"""

import dataclasses

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text


@dataclasses.dataclass(frozen=True)
class Arithmetic(game_lib.Game):
  """Addition of two numbers of up to ``num_digits`` digits.

  Attributes:
    num_digits: digits per operand, 1 to 8.
    answer_slack: tokens player two may write beyond the longest correct answer.
  """
  num_digits: int = 3
  answer_slack: int = 2

  def __post_init__(self):
    if not 1 <= self.num_digits <= 8:
      raise ValueError(f"num_digits must be in [1, 8], got {self.num_digits}")

  @property
  def max_opening_length(self) -> int:
    return 2 * self.num_digits + 4  # BOS a + b = EOT

  @property
  def max_length(self) -> int:
    return self.max_opening_length + self.num_digits + 2 + self.answer_slack

  @property
  def max_turns(self) -> int:
    return 2

  def opening(self, key: jax.Array) -> game_lib.GameState:
    a, b = jax.random.randint(key, (2,), 0, 10 ** self.num_digits, jnp.int32)
    width = self.num_digits
    tokens, length = text.concat(text.token(vocab.BOS), text.number(a, width),
                                 text.literal("+"), text.number(b, width),
                                 text.literal("="), text.token(vocab.EOT))
    owner = jnp.where(jnp.arange(tokens.shape[0]) == 0, game_lib.CHANCE, game_lib.ONE)
    return game_lib.new_state(self, tokens, owner, length, to_move=game_lib.TWO, turn=1,
                              hidden={"operands": jnp.stack([a, b]), "opening_length": length})

  def answer(self, hidden) -> tuple[jax.Array, jax.Array]:
    """The correct answer's digits as a piece of text."""
    return text.number(jnp.sum(hidden["operands"]), self.num_digits + 1)

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    start = state.hidden["opening_length"]
    answer = text.concat(self.answer(state.hidden), text.token(vocab.EOT))
    correct = text.matches(state.tokens, start, answer) & (state.length >= start + answer[1])
    return jnp.where(correct, 1.0, 0.0) * jnp.ones(2)


def _answer_player(game: Arithmetic, error_rate: float) -> players_lib.Player:
  """Player two that answers, wrongly with probability ``error_rate``.

  A wrong answer is the sum moved by a uniform nonzero amount in [-10, 10] (moved up
  instead where it would turn negative). The answer is chosen at the first token of the turn and kept in the
  carry; that token's log-probability is the whole answer's, the others' are 0.
  """

  def policy(planned, state, key):
    k_err, k_delta = jax.random.split(key)
    total = jnp.sum(state.hidden["operands"])
    wrong = jax.random.bernoulli(k_err, error_rate)
    delta = jax.random.randint(k_delta, (), 1, 11) * jnp.where(
        jax.random.bernoulli(k_delta), 1, -1)
    choice = jnp.where(wrong, jnp.where(total + delta < 0, total - delta, total + delta), total)
    logp = jnp.log(jnp.where(wrong, error_rate / 20, 1 - error_rate))
    first = state.turn_length == 0
    planned = jnp.where(first, choice, planned)
    digits, length = text.number(planned, game.num_digits + 1)
    token = jnp.where(state.turn_length < length,
                      digits[jnp.minimum(state.turn_length, game.num_digits)], vocab.EOT)
    return token, jnp.where(first, logp, 0.0), planned

  return players_lib.scripted(policy, init_carry=lambda state: jnp.int32(0))


def expert(game: Arithmetic) -> players_lib.Player:
  """Player two that always answers correctly."""
  return _answer_player(game, 0.0)


def average(game: Arithmetic, error_rate: float = 0.2) -> players_lib.Player:
  """Player two that answers wrongly with probability ``error_rate``."""
  return _answer_player(game, error_rate)


def noisy(game: Arithmetic) -> players_lib.Player:
  """Player two that writes 1 to ``num_digits + 1`` uniformly random digits."""
  stop = 1.0 / (game.num_digits + 1)

  def policy(carry, state, key):
    k_stop, k_digit = jax.random.split(key)
    ends = (state.turn_length > 0) & (
        jax.random.bernoulli(k_stop, stop) | (state.turn_length > game.num_digits))
    digit = text.ZERO + jax.random.randint(k_digit, (), 0, 10)
    logp = jnp.where(ends, jnp.log(stop), jnp.log((1 - stop) / 10))
    logp = jnp.where(state.turn_length == 0, jnp.log(0.1),
                     jnp.where(state.turn_length > game.num_digits, 0.0, logp))
    return jnp.where(ends, vocab.EOT, digit), logp, carry

  return players_lib.scripted(policy)


def human(game: Arithmetic) -> players_lib.Player:
  """Player one. Its question is the opening; given the move again, it ends the game."""
  del game
  return players_lib.scripted(lambda carry, state, key: (vocab.EOG, 0.0, carry))


PLAYER_ONE = {"human": human}
PLAYER_TWO = {"expert": expert, "average": average, "noisy": noisy}
