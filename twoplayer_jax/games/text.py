"""Writing and reading text inside jitted game code.

A piece of text is a pair ``(tokens [W], length [])``: W is a static capacity, the
tokens after ``length`` are PAD. Pieces concatenate into one left-aligned buffer.
"""

import jax
import jax.numpy as jnp
import numpy as np

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
