"""The pieces every model family shares: parameters with logical axes, RMSNorm, mixed
precision matmuls, rotary positions and attention over a KV cache.

Arrays keep heads before positions (``[B, heads, L, head_dim]``): decoding then reads
each head's keys as one block.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax.models.interface import Cache


def param(module: nn.Module, name: str, shape, axes, init=nn.initializers.lecun_normal(),
          dtype=jnp.float32):
  """A parameter of ``module`` whose dimensions carry the logical ``axes`` names."""
  return module.param(name, nn.with_logical_partitioning(init, axes), shape, dtype)


class RMSNorm(nn.Module):
  """``x / rms(x) * scale``, computed in float32, returned in ``dtype``."""
  dtype: jnp.dtype
  eps: float = 1e-6
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    scale = param(self, "scale", (x.shape[-1],), ("embed",), nn.initializers.ones,
                  self.param_dtype)
    x = x.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)
    return (x.astype(self.param_dtype) * scale).astype(self.dtype)


def mix(equation, x, w, dtype):
  """``einsum`` of inputs in the compute dtype, summed in float32 (as TPU matrix units
  do), its result in the compute dtype: bfloat16 keeps its speed, not its rounding of
  long sums."""
  return jnp.einsum(equation, x, w.astype(dtype), preferred_element_type=jnp.float32
                    ).astype(dtype)


def rope_frequencies(head_dim: int, base: float) -> np.ndarray:
  """``[head_dim // 2]`` float64: the rotary encoding's angular frequency per pair."""
  half = head_dim // 2
  return base ** (-np.arange(half) / half)


def rope(x, positions, frequencies: np.ndarray, max_length: int):
  """Rotates ``x [B, H, L, D]`` by ``positions [B, L]`` (below ``max_length``): element
  ``i`` of the first half pairs with element ``i`` of the second, at angle
  ``position * frequencies[i]`` (the split-half layout Hugging Face's Llama uses).

  The angles' sines and cosines are a constant table read by position: computed inside
  the fused rotation, they were recomputed for every head and element (~5% of an update).
  """
  angle = np.arange(max_length)[:, None] * frequencies
  sin, cos = (jnp.asarray(f(angle), jnp.float32)[positions][:, None] for f in (np.sin, np.cos))
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)


def _write(cache, new, start):
  """Writes ``new [B, H, L, D]`` into ``cache [B, H, T, D]`` at row-wise ``start [B]``."""
  return jax.vmap(lambda c, n, s: jax.lax.dynamic_update_slice(c, n, (0, s, 0)))(cache, new, start)


def attention(q, k, v, positions, segments, kv, dtype):
  """Causal attention of queries ``q [B, H, L, D]`` over keys and values ``[B, KV, L, D]``
  (``H`` a multiple of ``KV``: each group of ``H / KV`` query heads shares one key and
  value head), and the updated cache.

  Args:
    positions: ``[B, L]`` the tokens' positions.
    segments: ``[B, L]`` packed sequences' ids (no cache), or None.
    kv: ``(keys, values)`` ``[B, KV, T, D]`` to write ``k`` and ``v`` into at
      ``positions`` (contiguous in each row) and attend over, or None.

  Returns:
    ``[B, H, L, D]`` in ``dtype`` and the new ``kv`` (None without one).
  """
  if kv is None:
    keys, values, key_pos = k, v, positions
  else:
    keys, values = _write(kv[0], k, positions[:, 0]), _write(kv[1], v, positions[:, 0])
    key_pos = jnp.broadcast_to(jnp.arange(keys.shape[2]), (keys.shape[0], keys.shape[2]))
    kv = (keys, values)
  # A group's query heads become more queries of its key head: [B, KV, G * L, D] (head
  # k * G + g serves key head k, as Hugging Face's repeat_kv pairs them); G = 1 is plain
  # multi-head attention.
  b, h, length, d = q.shape
  groups = h // keys.shape[1]
  q = q.reshape(b, keys.shape[1], groups * length, d)
  query_pos = jnp.tile(positions, (1, groups))
  scores = jnp.einsum("bhqk,bhsk->bhqs", q, keys, preferred_element_type=jnp.float32)
  visible = key_pos[:, None, None, :] <= query_pos[:, None, :, None]
  if segments is not None:  # Packed sequences see only their own segment.
    visible &= segments[:, None, None, :] == jnp.tile(segments, (1, groups))[:, None, :, None]
  scores = jnp.where(visible, scores / jnp.sqrt(d).astype(jnp.float32), -1e30)
  weights = jax.nn.softmax(scores, axis=-1).astype(dtype)
  return mix("bhqs,bhsk->bhqk", weights, values, dtype).reshape(b, h, length, d), kv


def blocks(stack, x, positions, segments, cache):
  """Runs the blocks ``stack`` in order (each ``block(x, positions, segments, kv) -> (x,
  kv)``), layer ``i`` reading and writing ``cache``'s layer ``i``; returns ``x`` and the
  new cache (None without one)."""
  keys, values = [], []
  for i, block in enumerate(stack):
    x, kv = block(x, positions, segments, None if cache is None else (cache.k[i], cache.v[i]))
    if kv is not None:
      keys.append(kv[0])
      values.append(kv[1])
  return x, None if cache is None else Cache(tuple(keys), tuple(values))
