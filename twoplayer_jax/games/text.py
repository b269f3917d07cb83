"""Writing and reading text inside jitted game code.

A piece of text is a pair ``(tokens [W], length [])``: W is a static capacity, the
tokens after ``length`` are PAD. Pieces concatenate into one left-aligned buffer.
Reading helpers find turns and numbers in a transcript; ``speaker`` makes a scripted
player that plans a turn's text and writes it.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab

ZERO = ord("0")


def literal(text: str) -> tuple[jax.Array, jax.Array]:
  """A constant piece of text."""
  tokens = vocab.from_bytes(text.encode("utf-8"))
  return jnp.asarray(tokens), jnp.int32(len(tokens))


def token(tok: int) -> tuple[jax.Array, jax.Array]:
  """A piece of one token (e.g. ``vocab.EOT``)."""
  return jnp.array([tok], jnp.int32), jnp.int32(1)


def number(x: jax.Array, width: int) -> tuple[jax.Array, jax.Array]:
  """Decimal digits of a non-negative int32 ``x``, most significant first, in ``width``
  (at most 9) places; a number with more digits keeps its last ``width`` digits."""
  if not 1 <= width <= 9:
    raise ValueError(f"width must be in [1, 9] for int32 numbers, got {width}")
  x = jnp.asarray(x, jnp.int32)
  powers = jnp.asarray(10 ** np.arange(width), jnp.int32)  # [width]
  length = 1 + jnp.sum(x >= powers[1:]).astype(jnp.int32)
  place = length - 1 - jnp.arange(width)  # Power of ten of each output place.
  digit = (x // powers[jnp.clip(place, 0, width - 1)]) % 10
  return jnp.where(place >= 0, ZERO + digit, vocab.PAD).astype(jnp.int32), length


def reverse(piece: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """The piece's text written backwards, in the same capacity."""
  tokens, length = piece
  source = length - 1 - jnp.arange(tokens.shape[0])
  return jnp.where(source >= 0, tokens[jnp.maximum(source, 0)], vocab.PAD), length


def concat(*pieces: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """Pieces written one after another: ``(tokens [sum of W], length [])``."""
  width = sum(p[0].shape[0] for p in pieces)
  out = jnp.full((width,), vocab.PAD, jnp.int32)
  offset = jnp.int32(0)
  for tokens, length in pieces:
    idx = jnp.arange(tokens.shape[0])
    out = out.at[jnp.where(idx < length, offset + idx, width)].set(tokens, mode="drop")
    offset = offset + length
  return out, offset


def matches(transcript: jax.Array, start: jax.Array, piece: tuple[jax.Array, jax.Array]
            ) -> jax.Array:
  """Whether ``transcript [T]`` holds ``piece`` exactly at position ``start``."""
  tokens, length = piece
  idx = start + jnp.arange(tokens.shape[0])
  found = transcript.at[idx].get(mode="fill", fill_value=vocab.PAD)
  return jnp.all((found == tokens) | (jnp.arange(tokens.shape[0]) >= length))


def spell(piece: tuple[jax.Array, jax.Array], position: jax.Array) -> jax.Array:
  """``[]`` token at ``position`` of ``piece``, then end-of-turn once the piece is written.

  A scripted player writes a planned reply with this, one token per move.
  """
  tokens, length = piece
  return jnp.where(position < length, tokens[jnp.clip(position, 0, tokens.shape[0] - 1)],
                   vocab.EOT).astype(jnp.int32)


def window(transcript: jax.Array, start: jax.Array, width: int) -> jax.Array:
  """``[width]`` tokens of ``transcript`` from ``start``, PAD past its end."""
  return transcript.at[start + jnp.arange(width)].get(mode="fill", fill_value=vocab.PAD)


def read_number(transcript: jax.Array, start: jax.Array, width: int
                ) -> tuple[jax.Array, jax.Array]:
  """The decimal number written at ``start``: its value and how many digits it has.

  Reads the run of digits beginning at ``start``, at most ``width`` (at most 9) of them;
  a caller that needs the number to end there checks the token after them.

  Returns:
    ``value []`` int32 (0 when there is no digit) and ``num_digits []`` int32.
  """
  if not 1 <= width <= 9:
    raise ValueError(f"width must be in [1, 9] for int32 numbers, got {width}")
  digit = window(transcript, start, width) - ZERO
  num_digits = jnp.sum(jnp.cumprod((digit >= 0) & (digit <= 9))).astype(jnp.int32)
  place = num_digits - 1 - jnp.arange(width)
  powers = jnp.asarray(10 ** np.arange(width), jnp.int32)
  value = jnp.sum(jnp.where(place >= 0, digit * powers[jnp.clip(place, 0, width - 1)], 0))
  return value.astype(jnp.int32), num_digits


def spells(transcript: jax.Array, start: jax.Array, end: jax.Array,
           piece: tuple[jax.Array, jax.Array]) -> jax.Array:
  """Whether ``transcript[start:end]`` is exactly the text of ``piece``."""
  return matches(transcript, start, piece) & (end - start == piece[1])


def turn_start(transcript: jax.Array, end: jax.Array) -> jax.Array:
  """``[]`` position of the first token of the turn that the end-of-turn at ``end`` closes
  (or that is still open at ``end``): one past the previous end-of-turn, else 0."""
  pos = jnp.arange(transcript.shape[0])
  return 1 + jnp.max(jnp.where((pos < end) & (transcript == vocab.EOT), pos, -1))


def turn_starts(transcript: jax.Array, length: jax.Array, num_turns: int) -> jax.Array:
  """``[num_turns + 1]`` int32 first position of turns 0 to ``num_turns``.

  Turn j is what follows the j-th end-of-turn (turn 0 starts the transcript); a turn that
  has not started yet starts at ``length``. Turn j, when closed, spans
  ``[starts[j], starts[j + 1] - 1)`` and its end-of-turn is at ``starts[j + 1] - 1``.
  """
  pos = jnp.arange(transcript.shape[0])
  written = pos < length
  eot = (transcript == vocab.EOT) & written
  closed_before = jnp.cumsum(eot) - eot
  turns = jnp.arange(num_turns + 1)[:, None]
  return jnp.sum((closed_before[None] < turns) & written[None], axis=1).astype(jnp.int32)


def speaker(seat: int, plan: Callable, width: int) -> players_lib.Player:
  """A scripted player for ``seat`` that plans its whole turn at the turn's first token,
  keeps it in its carry and writes it token by token, then end-of-turn.

  Args:
    seat: 1 or 2; ``plan`` sees the state through ``seen_by(state, seat)``.
    plan: ``plan(state, key) -> (tokens [W], length [], logprob [])``: the turn's text
      (without end-of-turn), ``W <= width``, and its log-probability, which is recorded
      on the turn's first token (the others get 0).
    width: longest text ``plan`` writes.
  """

  def policy(carry, state, key):
    first = state.turn_length == 0
    tokens, length, logprob = plan(game_lib.seen_by(state, seat), key)
    tokens = jnp.pad(tokens, (0, width - tokens.shape[0]), constant_values=vocab.PAD)
    tokens, length = jax.tree.map(lambda new, old: jnp.where(first, new, old),
                                  (tokens, length), carry)
    token = spell((tokens, length), state.turn_length)
    return token, jnp.where(first, logprob, 0.0), (tokens, length)

  return players_lib.scripted(
      policy, init_carry=lambda state: (jnp.full((width,), vocab.PAD, jnp.int32), jnp.int32(0)))


def choose(index: jax.Array, *pieces: tuple[jax.Array, jax.Array]
           ) -> tuple[jax.Array, jax.Array]:
  """The piece at ``index`` among ``pieces``, as wide as the widest of them."""
  width = max(tokens.shape[0] for tokens, _ in pieces)
  tokens = jnp.stack([jnp.pad(t, (0, width - t.shape[0]), constant_values=vocab.PAD)
                      for t, _ in pieces])
  lengths = jnp.stack([jnp.asarray(n, jnp.int32) for _, n in pieces])
  return tokens[index], lengths[index]
