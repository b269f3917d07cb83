"""Arithmetic: player one asks for a sum or a product, player two answers. Cooperative.

Text (one line per turn, as ``vocab.render`` shows it). Q-A format, player two answers
directly::

  one> 317+45=⟨eot⟩
  two> 362⟨eot⟩

Reversed Q-A format, the answer's digits least significant first (the order in which a
carry travels, and the chain's)::

  one> 317+45=⟨eot⟩
  two> 263⟨eot⟩

Filler format, a dot for every character of the Q-C-A chain, then ``=`` and the answer:
as many tokens before the answer as the chain, with nothing computed in them::

  one> 317+45=⟨eot⟩
  two> ...........................=362⟨eot⟩

Q-C-A format, player two first writes its chain of intermediate steps, each closed by
``;``, then ``=`` and the answer. Addition goes digit place by digit place from the least
significant, over the places of the longer operand, as ``digit+digit+carry in=place sum``
(the carry out is the sum's tens digit)::

  one> 317+45=⟨eot⟩
  two> 7+5+0=12;1+4+1=6;3+0+0=3;=362⟨eot⟩

Multiplication takes one partial product per digit of the second operand, least
significant first, and adds it to the running total (the first step has no total yet)::

  one> 317*45=⟨eot⟩
  two> 317*5=1585;317*40=12680+1585=14265;=14265⟨eot⟩

Chance draws two operands uniformly from [0, 10**num_digits); player one's question is
part of the opening (player one is the fixed "human" asking it), so player two moves
first in play. The game ends when player two ends its turn (two turns in all), writes
end-of-game, or fills the transcript. Payoff: (1, 1) when player two's answer, the text
it writes after its last ``=`` (its whole turn when it writes none), is exactly the
decimal result (its digits reversed in the reversed format) followed by end-of-turn,
else (0, 0). The chain is not scored, so the
Q-A and Q-C-A replies of one problem are scored alike. Nothing is hidden: the operands
are in the question.
"""

import dataclasses

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text

OPERATORS = {"add": "+", "mul": "*"}
MAX_DIGITS = {"add": 8, "mul": 4}  # Results stay within text.number's 9 int32 digits.
EQUALS = ord("=")
FORMATS = ("qa", "reversed", "filler", "qca")
ANSWER_ONLY = ("qa", "reversed")  # Formats whose reply is the answer alone.


def _masked(piece, keep):
  """``piece`` when ``keep``, else the empty text."""
  return piece[0], jnp.where(keep, piece[1], 0)


@dataclasses.dataclass(frozen=True)
class Arithmetic(game_lib.Game):
  """Addition or multiplication of two numbers of up to ``num_digits`` digits.

  Attributes:
    num_digits: digits per operand, 1 to 8 for "add", 1 to 4 for "mul".
    operation: "add" or "mul".
    answer_format: "qa" (the answer only), "reversed" (the answer only, least
      significant digit first), "filler" (dots as long as the chain, then the answer) or
      "qca" (chain of steps, then the answer);
      sets the demonstrators' replies and the transcript capacity, not the payoff.
    answer_slack: tokens player two may write beyond the longest demonstrator reply.
  """
  num_digits: int = 3
  operation: str = "add"
  answer_format: str = "qa"
  answer_slack: int = 2

  def __post_init__(self):
    if self.operation not in OPERATORS:
      raise ValueError(f"operation must be one of {sorted(OPERATORS)}, got {self.operation!r}")
    if not 1 <= self.num_digits <= MAX_DIGITS[self.operation]:
      raise ValueError(f"num_digits must be in [1, {MAX_DIGITS[self.operation]}] for "
                       f"{self.operation!r}, got {self.num_digits}")
    if self.answer_format not in FORMATS:
      raise ValueError(f"answer_format must be one of {FORMATS}, got {self.answer_format!r}")

  @property
  def answer_width(self) -> int:
    """Most digits of a result."""
    return self.num_digits + 1 if self.operation == "add" else 2 * self.num_digits

  @property
  def max_reply_length(self) -> int:
    """Longest demonstrator reply without its end-of-turn (both operands all nines)."""
    n = self.num_digits
    if self.answer_format in ANSWER_ONLY:
      return self.answer_width
    if self.operation == "add":
      chain = len("9+9+1=19;") * n
    else:  # Step 0 "a*d=p;", step i "a*d0..0=p+total=total;" with widths as in _chain.
      chain = (2 * n + 5) + (n - 1) * (6 * n + 8)
    return chain + 1 + self.answer_width

  @property
  def max_opening_length(self) -> int:
    return 2 * self.num_digits + 4  # BOS a + b = EOT

  @property
  def min_opening_length(self) -> int:
    return 6  # Both operands of one digit.

  @property
  def max_length(self) -> int:
    return self.max_opening_length + self.max_reply_length + 1 + self.answer_slack

  @property
  def max_turns(self) -> int:
    return 2

  def opening(self, key: jax.Array) -> game_lib.GameState:
    a, b = jax.random.randint(key, (2,), 0, 10 ** self.num_digits, jnp.int32)
    width = self.num_digits
    tokens, length = text.concat(text.token(vocab.BOS), text.number(a, width),
                                 text.literal(OPERATORS[self.operation]), text.number(b, width),
                                 text.literal("="), text.token(vocab.EOT))
    owner = jnp.where(jnp.arange(tokens.shape[0]) == 0, game_lib.CHANCE, game_lib.ONE)
    return game_lib.new_state(self, tokens, owner, length, to_move=game_lib.TWO, turn=1,
                              hidden={"operands": jnp.stack([a, b])})

  def result(self, operands: jax.Array) -> jax.Array:
    """``[]`` the sum or product of ``operands [2]``."""
    return jnp.sum(operands) if self.operation == "add" else operands[0] * operands[1]

  def answer(self, hidden) -> tuple[jax.Array, jax.Array]:
    """The correct answer's digits as a piece of text, in the format's order."""
    return self._written(self.result(hidden["operands"]))

  def _written(self, answer: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``answer``'s digits, reversed in the reversed format."""
    piece = text.number(answer, self.answer_width)
    return text.reverse(piece) if self.answer_format == "reversed" else piece

  def num_steps(self, operands: jax.Array) -> jax.Array:
    """``[]`` steps of the Q-C-A chain: digits of the longer operand (addition) or of the
    second operand (multiplication)."""
    counted = jnp.max(operands) if self.operation == "add" else operands[1]
    return text.number(counted, self.num_digits)[1]

  def carries(self, operands: jax.Array) -> jax.Array:
    """``[]`` bool: whether adding ``operands [2]`` carries at any digit place (a digit
    place's sum of 10 or more; the first such place takes no carry in)."""
    places = 10 ** jnp.arange(self.num_digits)
    return jnp.any(operands[0] // places % 10 + operands[1] // places % 10 >= 10)

  def num_carries(self, operands: jax.Array) -> jax.Array:
    """``[]`` int32: the digit places of adding ``operands [2]`` that carry out, carries
    in counted (place ``i`` carries when the operands' last ``i + 1`` digits sum to
    ``10 ** (i + 1)`` or more)."""
    places = 10 ** jnp.arange(1, self.num_digits + 1)
    return jnp.sum(operands[0] % places + operands[1] % places >= places).astype(jnp.int32)

  def carryless(self, operands: jax.Array) -> jax.Array:
    """``[]`` the sum of ``operands [2]`` with every carry forgotten: each digit place's
    sum mod 10."""
    places = 10 ** jnp.arange(self.num_digits)
    return jnp.sum((operands[0] // places % 10 + operands[1] // places % 10) % 10 * places)

  def reply(self, operands: jax.Array, slip_step: jax.Array, slip: jax.Array,
            forget: jax.Array = False) -> tuple[jax.Array, jax.Array]:
    """Player two's reply in the game's format, without its end-of-turn.

    Args:
      operands: ``[2]`` int32.
      slip_step: ``[]`` Q-C-A step that goes wrong.
      slip: ``[]`` amount added to that step's result (Q-C-A, and filler's unwritten
        chain) or to the answer (Q-A); 0
        for the correct reply. Where it would make a result negative, or a digit-place
        sum leave [0, 19], it is subtracted instead. Later steps build on the slip, so
        it propagates to the answer.
      forget: ``[]`` bool, addition only: every carry is forgotten (each Q-C-A step takes
        carry in 0, and the answer is ``carryless``).
    """
    if self.answer_format in ANSWER_ONLY:
      total = self.result(operands)
      if self.operation == "add":
        total = jnp.where(forget, self.carryless(operands), total)
      return self._written(jnp.where(total + slip < 0, total - slip, total + slip))
    steps, answer = self._chain(operands, slip_step, slip, forget)
    chain = text.concat(*steps)
    if self.answer_format == "filler":
      chain = jnp.where(jnp.arange(chain[0].shape[0]) < chain[1], ord("."), vocab.PAD), chain[1]
    return text.concat(chain, text.literal("="), text.number(answer, self.answer_width))

  def _chain(self, operands, slip_step, slip, forget):
    """The Q-C-A steps as pieces (empty past ``num_steps``) and the answer they reach."""
    a, b = operands[0], operands[1]
    n, steps = self.num_digits, self.num_steps(operands)
    pieces, carry, total = [], jnp.int32(0), jnp.int32(0)
    for i in range(n):
      slipped = jnp.where(i == slip_step, slip, 0)
      if self.operation == "add":
        a_i, b_i = a // 10 ** i % 10, b // 10 ** i % 10
        s = a_i + b_i + carry + slipped
        s = jnp.where((s < 0) | (s > 19), s - 2 * slipped, s)
        piece = text.concat(text.number(a_i, 1), text.literal("+"), text.number(b_i, 1),
                            text.literal("+"), text.number(carry, 1), text.literal("="),
                            text.number(s, 2), text.literal(";"))
        total, carry = total + s % 10 * 10 ** i, jnp.where(forget, 0, s // 10)
      else:
        d = b // 10 ** i % 10
        q = a * d + slipped
        partial = jnp.where(q < 0, a * d - slipped, q) * 10 ** i
        head = [text.number(a, n), text.literal("*"), text.number(d * 10 ** i, i + 1),
                text.literal("="), text.number(partial, n + 1 + i)]
        if i:
          head += [text.literal("+"), text.number(total, n + i), text.literal("="),
                   text.number(total + partial, n + i + 1)]
        piece = text.concat(*head, text.literal(";"))
        total = total + partial
      pieces.append(_masked(piece, i < steps))
    return pieces, total + carry * 10 ** n

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    start = state.opening_length
    pos = jnp.arange(state.tokens.shape[0])
    equals = (state.tokens == EQUALS) & (pos >= start) & (pos < state.length)
    start = jnp.max(jnp.where(equals, pos + 1, start))
    answer = text.concat(self.answer(state.hidden), text.token(vocab.EOT))
    correct = text.matches(state.tokens, start, answer) & (state.length >= start + answer[1])
    return jnp.where(correct, 1.0, 0.0) * jnp.ones(2)


def _answer_player(game: Arithmetic, error_rate: float, forget_rate: float = 0.0
                   ) -> players_lib.Player:
  """Player two that replies in the game's format, wrongly with probability ``error_rate``,
  forgetting every carry of an addition with probability ``forget_rate``.

  A wrong Q-A answer is the result moved by a uniform nonzero amount in [-10, 10]; a wrong
  Q-C-A chain slips by one at a uniform step (a place sum, or a partial product in its
  own place), and the rest of the chain and the answer follow from the slip. The reply
  is planned at the first token of the turn (``text.speaker``); that token's
  log-probability is the whole reply's (counting each slip once, and forgetting only
  where the problem carries), the others' are 0.
  """
  for name, rate in (("error_rate", error_rate), ("forget_rate", forget_rate)):
    if not 0 <= rate <= 1:
      raise ValueError(f"{name} must be in [0, 1], got {rate}")
  if forget_rate and game.operation != "add":
    raise ValueError(f"forgetting carries is addition's: operation must be 'add', got "
                     f"{game.operation!r}")

  def plan(state, key):
    k_err, k_step, k_sign, k_size, k_forget = jax.random.split(key, 5)
    operands = state.hidden["operands"]
    wrong = jax.random.bernoulli(k_err, error_rate)
    forget = jax.random.bernoulli(k_forget, forget_rate)
    sign = jnp.where(jax.random.bernoulli(k_sign), 1, -1)
    if game.answer_format in ANSWER_ONLY:
      step, size, choices = jnp.int32(0), jax.random.randint(k_size, (), 1, 11), 20
    else:
      steps = game.num_steps(operands)
      step, size, choices = jax.random.randint(k_step, (), 0, steps), 1, 2 * steps
    tokens, length = game.reply(operands, step, jnp.where(wrong, sign * size, 0), forget)
    logp = jnp.log(jnp.where(wrong, error_rate / choices, 1 - error_rate))
    if forget_rate:
      logp += jnp.where(game.carries(operands),
                        jnp.log(jnp.where(forget, forget_rate, 1 - forget_rate)), 0.0)
    return tokens, length, logp

  return text.speaker(game_lib.TWO, plan, game.max_reply_length)


def expert(game: Arithmetic) -> players_lib.Player:
  """Player two that always replies correctly (the exact chain in Q-C-A)."""
  return _answer_player(game, 0.0)


def average(game: Arithmetic, error_rate: float = 0.2) -> players_lib.Player:
  """Player two that replies wrongly with probability ``error_rate``."""
  return _answer_player(game, error_rate)


def careless(game: Arithmetic, forget_rate: float = 0.8) -> players_lib.Player:
  """Player two of addition that forgets every carry with probability ``forget_rate`` (its
  answer then ``carryless``), else replies correctly: right on problems without a carry,
  systematically wrong on most of those with one."""
  return _answer_player(game, 0.0, forget_rate)


def noisy(game: Arithmetic) -> players_lib.Player:
  """Player two that writes 1 to ``answer_width`` uniformly random digits."""
  most = game.answer_width
  stop = 1.0 / most

  def policy(carry, state, key):
    k_stop, k_digit = jax.random.split(key)
    ends = (state.turn_length > 0) & (
        jax.random.bernoulli(k_stop, stop) | (state.turn_length >= most))
    digit = text.ZERO + jax.random.randint(k_digit, (), 0, 10)
    logp = jnp.where(ends, jnp.log(stop), jnp.log((1 - stop) / 10))
    logp = jnp.where(state.turn_length == 0, jnp.log(0.1),
                     jnp.where(state.turn_length >= most, 0.0, logp))
    return jnp.where(ends, vocab.EOT, digit), logp, carry

  return players_lib.scripted(policy)


def human(game: Arithmetic) -> players_lib.Player:
  """Player one. Its question is the opening; given the move again, it ends the game."""
  del game
  return players_lib.scripted(lambda carry, state, key: (vocab.EOG, 0.0, carry))


PLAYER_ONE = {"human": human}
PLAYER_TWO = {"expert": expert, "average": average, "careless": careless, "noisy": noisy}
