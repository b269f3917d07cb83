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

import flax.linen as nn
import jax
import jax.numpy as jnp

from twoplayer_jax import vocab
from twoplayer_jax.models.interface import Model, from_module
from twoplayer_jax.models.layers import (RMSNorm, attention, blocks, mix, param, rope,
                                         rope_frequencies)


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
  def outputs(self) -> int:
    """The width of the logits."""
    return self.vocab_size

  @property
  def head_dim(self) -> int:
    return self.d_model // self.num_heads


class Block(nn.Module):
  config: TransformerConfig

  @nn.compact
  def __call__(self, x, positions, segments, kv):
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    h, d = cfg.num_heads, cfg.head_dim
    y = RMSNorm(dtype, name="attn_norm")(x)
    qkv = param(self, "qkv", (3, cfg.d_model, h, d), (None, "embed", "heads", "head_dim"))
    q, k, v = (mix("bld,dhk->bhlk", y, w, dtype) for w in qkv)
    frequencies = rope_frequencies(d, cfg.rope_base)
    q, k = (rope(x, positions, frequencies, cfg.max_length) for x in (q, k))
    y, kv = attention(q, k, v, positions, segments, kv, dtype)
    out = param(self, "out", (h, d, cfg.d_model), ("heads", "head_dim", "embed"))
    x = x + mix("bhlk,hkd->bld", y, out, dtype)
    y = RMSNorm(dtype, name="mlp_norm")(x)
    w_in = param(self, "mlp_in", (cfg.d_model, cfg.d_ff), ("embed", "mlp"))
    w_out = param(self, "mlp_out", (cfg.d_ff, cfg.d_model), ("mlp", "embed"))
    # ReLU: on CPU its gradient fuses into the transposed copy XLA makes for the weight
    # gradient far more cheaply than SiLU's or GELU's (1.3x the whole small train step).
    y = mix("bld,df->blf", jax.nn.relu(mix("bld,df->blf", y, w_in, dtype)), w_out, dtype)
    return x + y, kv


class Transformer(nn.Module):
  config: TransformerConfig

  @nn.compact
  def __call__(self, tokens, positions, segments, cache):
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    embed = param(self, "embed", (cfg.vocab_size, cfg.d_model), ("vocab", "embed"),
                  nn.initializers.normal(1.0))
    # A token outside the vocabulary reads NaN, never a silently clamped row.
    x = jnp.take(embed, tokens, axis=0, mode="fill", fill_value=jnp.nan).astype(dtype)
    x, cache = blocks([Block(cfg, name=f"block_{i}") for i in range(cfg.num_layers)],
                      x, positions, segments, cache)
    x = RMSNorm(dtype, name="final_norm")(x)
    unembed = param(self, "unembed", (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))
    logits = jnp.dot(x, unembed.astype(dtype), preferred_element_type=jnp.float32)
    scalars = None
    if cfg.scalar_head:
      head = param(self, "scalar_head", (cfg.d_model,), ("embed",), nn.initializers.zeros)
      scalars = jnp.dot(x, head.astype(dtype), preferred_element_type=jnp.float32)
    return logits, scalars, cache


@functools.cache
def make(config: TransformerConfig) -> Model:
  """The pure init/apply functions of a transformer of this configuration. Equal configs
  give the same ``Model``, so ``jit`` compiles once for a model built twice."""
  return from_module(config, Transformer(config), kv_heads=config.num_heads)


def num_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
