"""A decoder-only transformer behind a pure init/apply boundary, with a KV cache.

Pre-norm blocks (RMSNorm, rotary positions, ReLU MLP), untied output embedding and an
optional scalar head (a value or a reward). Parameters are float32 and carry logical
axis names for sharding; the compute dtype is a setting. Outside ``models/`` the
transformer is seen only through ``make(config)``:

  model = transformer.make(TransformerConfig(num_layers=2, d_model=128))
  params = model.init(key)
  logits, scalars, cache = model.apply(params, tokens, positions, cache)
"""

import dataclasses
import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import vocab


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Sizes and numerics. Hashable, so it can be a static argument of ``jit``.

  Attributes:
    vocab_size: number of token ids.
    num_layers: transformer blocks.
    d_model: width of the residual stream.
    num_heads: attention heads; must divide ``d_model``.
    d_ff: hidden width of each MLP.
    max_length: longest sequence (and KV cache) the model handles.
    dtype: compute dtype, "float32" or "bfloat16"; parameters stay float32.
    scalar_head: whether to add a scalar output per position (value or reward).
    rope_base: base wavelength of the rotary position encoding.
  """
  vocab_size: int = vocab.VOCAB_SIZE
  num_layers: int = 2
  d_model: int = 128
  num_heads: int = 4
  d_ff: int = 512
  max_length: int = 128
  dtype: str = "float32"
  scalar_head: bool = False
  rope_base: float = 10_000.0

  def __post_init__(self):
    if self.d_model % self.num_heads or (self.d_model // self.num_heads) % 2:
      raise ValueError(f"d_model={self.d_model} must split into num_heads={self.num_heads} "
                       "heads of even width")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")

  @property
  def head_dim(self) -> int:
    return self.d_model // self.num_heads


class Cache(NamedTuple):
  """Keys and values, one ``[B, heads, length, head_dim]`` array per layer.

  Separate arrays per layer, not one stacked array: a decoding step then updates each
  in place instead of slicing and re-stacking the whole cache.
  """
  k: tuple[jax.Array, ...]
  v: tuple[jax.Array, ...]


def _param(module: nn.Module, name: str, shape, axes, init=nn.initializers.lecun_normal()):
  return module.param(name, nn.with_logical_partitioning(init, axes), shape, jnp.float32)


class RMSNorm(nn.Module):
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x):
    scale = _param(self, "scale", (x.shape[-1],), ("embed",), nn.initializers.ones)
    x = x.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)
    return (x * scale).astype(self.dtype)


def _mix(equation, x, w, dtype):
  """``einsum`` of inputs in the compute dtype, summed in float32 (as TPU matrix units
  do), its result in the compute dtype: bfloat16 keeps its speed, not its rounding of
  long sums."""
  return jnp.einsum(equation, x, w.astype(dtype), preferred_element_type=jnp.float32
                    ).astype(dtype)


def _rope(x, positions, base, max_length):
  """Rotates ``x [B, H, L, D]`` by ``positions [B, L]`` (below ``max_length``).

  The angles' sines and cosines are a constant table read by position: computed inside
  the fused rotation, they were recomputed for every head and element (~5% of an update).
  """
  half = x.shape[-1] // 2
  angle = np.arange(max_length)[:, None] * base ** (-np.arange(half) / half)
  sin, cos = (jnp.asarray(f(angle), jnp.float32)[positions][:, None] for f in (np.sin, np.cos))
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)


def _write(cache, new, start):
  """Writes ``new [B, H, L, D]`` into ``cache [B, H, T, D]`` at row-wise ``start [B]``."""
  return jax.vmap(lambda c, n, s: jax.lax.dynamic_update_slice(c, n, (0, s, 0)))(cache, new, start)


class Block(nn.Module):
  config: TransformerConfig

  @nn.compact
  def __call__(self, x, positions, segments, kv):
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    h, d = cfg.num_heads, cfg.head_dim
    y = RMSNorm(dtype, name="attn_norm")(x)
    qkv = _param(self, "qkv", (3, cfg.d_model, h, d), (None, "embed", "heads", "head_dim"))
    # Heads before positions: decoding then reads each head's keys as one block.
    q, k, v = (_mix("bld,dhk->bhlk", y, w, dtype) for w in qkv)
    q, k = (_rope(x, positions, cfg.rope_base, cfg.max_length) for x in (q, k))
    if kv is None:
      keys, values, key_pos = k, v, positions
    else:
      keys, values = _write(kv[0], k, positions[:, 0]), _write(kv[1], v, positions[:, 0])
      key_pos = jnp.broadcast_to(jnp.arange(keys.shape[2]), (keys.shape[0], keys.shape[2]))
      kv = (keys, values)
    scores = jnp.einsum("bhqk,bhsk->bhqs", q, keys, preferred_element_type=jnp.float32)
    visible = key_pos[:, None, None, :] <= positions[:, None, :, None]
    if segments is not None:  # Packed sequences see only their own segment.
      visible &= segments[:, None, None, :] == segments[:, None, :, None]
    scores = jnp.where(visible, scores / jnp.sqrt(d).astype(jnp.float32), -1e30)
    attn = jax.nn.softmax(scores, axis=-1).astype(dtype)
    y = _mix("bhqs,bhsk->bhqk", attn, values, dtype)
    out = _param(self, "out", (h, d, cfg.d_model), ("heads", "head_dim", "embed"))
    x = x + _mix("bhlk,hkd->bld", y, out, dtype)
    y = RMSNorm(dtype, name="mlp_norm")(x)
    w_in = _param(self, "mlp_in", (cfg.d_model, cfg.d_ff), ("embed", "mlp"))
    w_out = _param(self, "mlp_out", (cfg.d_ff, cfg.d_model), ("mlp", "embed"))
    # ReLU: on CPU its gradient fuses into the transposed copy XLA makes for the weight
    # gradient far more cheaply than SiLU's or GELU's (1.3x the whole small train step).
    y = _mix("bld,df->blf", jax.nn.relu(_mix("bld,df->blf", y, w_in, dtype)), w_out, dtype)
    return x + y, kv


class Transformer(nn.Module):
  config: TransformerConfig

  @nn.compact
  def __call__(self, tokens, positions, segments, cache):
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    embed = _param(self, "embed", (cfg.vocab_size, cfg.d_model), ("vocab", "embed"),
                   nn.initializers.normal(1.0))
    # A token outside the vocabulary reads NaN, never a silently clamped row.
    x = jnp.take(embed, tokens, axis=0, mode="fill", fill_value=jnp.nan).astype(dtype)
    keys, values = [], []
    for i in range(cfg.num_layers):
      kv = None if cache is None else (cache.k[i], cache.v[i])
      x, kv = Block(cfg, name=f"block_{i}")(x, positions, segments, kv)
      if kv is not None:
        keys.append(kv[0])
        values.append(kv[1])
    x = RMSNorm(dtype, name="final_norm")(x)
    unembed = _param(self, "unembed", (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))
    logits = jnp.dot(x, unembed.astype(dtype), preferred_element_type=jnp.float32)
    scalars = None
    if cfg.scalar_head:
      head = _param(self, "scalar_head", (cfg.d_model,), ("embed",), nn.initializers.zeros)
      scalars = jnp.dot(x, head.astype(dtype), preferred_element_type=jnp.float32)
    new_cache = None if cache is None else Cache(tuple(keys), tuple(values))
    return logits, scalars, new_cache


class Model(NamedTuple):
  """The pure functions of one transformer configuration.

  Attributes:
    config: the configuration.
    init: ``key -> params``, a pytree of float32 arrays.
    apply: ``(params, tokens [B, L], positions [B, L], cache=None, segments=None) ->
      (logits [B, L, V] float32, scalars [B, L] float32 or None, cache)``. With a cache,
      the L tokens are written at their positions (contiguous in each row) and attend to
      everything before them in the cache; without, attention is causal by position,
      and with ``segments [B, L]`` (packed sequences) only within a segment.
    init_cache: ``(batch, length=max_length) -> Cache`` of zeros; a shorter cache reads
      positions below ``length`` only, at a share of the attention's cost.
    logical_axes: ``() -> `` pytree of ``PartitionSpec`` of logical axis names,
      matching ``params``.
  """
  config: TransformerConfig
  init: Callable
  apply: Callable
  init_cache: Callable
  logical_axes: Callable


@functools.cache
def make(config: TransformerConfig) -> Model:
  """The pure init/apply functions of a transformer of this configuration. Equal configs
  give the same ``Model``, so ``jit`` compiles once for a model built twice."""
  module = Transformer(config)
  dummy = jnp.zeros((1, 1), jnp.int32)

  def init(key):
    return nn.unbox(module.init(key, dummy, dummy, None, None))["params"]

  def apply(params, tokens, positions, cache=None, segments=None):
    tokens, positions = jnp.asarray(tokens), jnp.asarray(positions)
    if tokens.ndim != 2 or positions.shape != tokens.shape:
      raise ValueError(f"tokens {tokens.shape} and positions {positions.shape} must both be "
                       "[batch, length]")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f"tokens must be integer ids, got {tokens.dtype}")
    if tokens.shape[1] > config.max_length:
      raise ValueError(f"{tokens.shape[1]} tokens exceed the model's max_length "
                       f"{config.max_length}")
    if segments is not None and (cache is not None or segments.shape != tokens.shape):
      raise ValueError(f"segments {segments.shape} must match tokens {tokens.shape}, and "
                       "packed sequences are read without a cache")
    if cache is not None and cache.k[0].shape[0] != tokens.shape[0]:
      raise ValueError(f"cache holds {cache.k[0].shape[0]} sequences, tokens {tokens.shape[0]}")
    return module.apply({"params": params}, tokens, positions, segments, cache)

  def init_cache(batch: int, length: int | None = None) -> Cache:
    length = config.max_length if length is None else length
    if not 0 < length <= config.max_length:
      raise ValueError(f"a cache of {length} positions: must be 1 to max_length="
                       f"{config.max_length}")
    shape = (batch, config.num_heads, length, config.head_dim)
    zeros = tuple(jnp.zeros(shape, config.dtype) for _ in range(config.num_layers))
    return Cache(zeros, zeros)

  def logical_axes():
    boxed = jax.eval_shape(module.init, jax.random.key(0), dummy, dummy, None, None)
    return nn.get_partition_spec(boxed)["params"]

  return Model(config, init, apply, init_cache, logical_axes)


def num_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
