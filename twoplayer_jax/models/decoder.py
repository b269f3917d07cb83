"""The Llama and Qwen2 decoders, behind the same ``Model`` interface as ``transformer``.

Both are pre-norm decoders with RMSNorm, rotary positions in the split-half layout,
grouped-query attention (``num_kv_heads`` key and value heads shared by groups of query
heads) and a SwiGLU MLP (``down(silu(gate(x)) * up(x))``). Qwen2 adds biases to the
query, key and value projections; Llama 3 scales the rotary frequencies for long
contexts (``rope_scaling``). ``hf.config_from_hf`` reads a ``DecoderConfig`` from a
Hugging Face ``config.json``, ``hf.load`` the parameters from its safetensors.

The model works in its own token ids (``vocab_size`` of them) unless ``symbols`` is set
(``bridge.symbols`` builds it from a tokenizer): it then reads and writes a game's
vocabulary, each game symbol being one of its tokens, and computes the logits of those
tokens only (260 columns of the output layer, not the whole vocabulary).
"""

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax.models.interface import Model, from_module
from twoplayer_jax.models.layers import (RMSNorm, attention, blocks, mix, param, rope,
                                         rope_frequencies)


@dataclasses.dataclass(frozen=True)
class Llama3Scaling:
  """Llama 3's rotary frequency scaling: wavelengths beyond ``original_length /
  low_freq_factor`` are stretched by ``factor``, those below ``original_length /
  high_freq_factor`` kept, the ones between interpolated."""
  factor: float
  low_freq_factor: float
  high_freq_factor: float
  original_length: int

  def __call__(self, frequencies: np.ndarray) -> np.ndarray:
    wavelength = 2 * math.pi / frequencies
    low, high = (self.original_length / f for f in (self.low_freq_factor,
                                                    self.high_freq_factor))
    scaled = np.where(wavelength > low, frequencies / self.factor, frequencies)
    smooth = ((self.original_length / wavelength - self.low_freq_factor)
              / (self.high_freq_factor - self.low_freq_factor))
    between = (wavelength >= high) & (wavelength <= low)
    return np.where(between, (1 - smooth) * scaled / self.factor + smooth * scaled, scaled)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """A Llama or Qwen2 decoder's sizes and numerics. Hashable (a static argument of jit).

  Attributes:
    family: "llama" or "qwen2" (informative; the fields below decide the network).
    vocab_size: the model's own token ids.
    num_layers, d_model, d_ff: blocks, residual width, MLP hidden width.
    num_heads, num_kv_heads, head_dim: query heads, key and value heads (dividing
      ``num_heads``), and each head's width.
    max_length: longest sequence (and KV cache) the model handles.
    rope_base: base wavelength of the rotary encoding.
    rope_scaling: Llama 3's frequency scaling, or None.
    norm_eps: RMSNorm's epsilon.
    tie_embeddings: whether the output layer is the input embedding, transposed.
    qkv_bias: whether the query, key and value projections have biases (Qwen2).
    dtype: compute dtype, "float32" or "bfloat16".
    param_dtype: parameters' dtype, "float32" or "bfloat16".
    scalar_head: whether to add a scalar output per position (value or reward).
    symbols: ``[vocab.VOCAB_SIZE]`` the token id of each game symbol, or None: the
      model then reads game tokens and writes their logits only.
    checkpoint: the Hugging Face directory whose parameters training starts from
      (``train.stages``), or None for fresh ones.
  """
  family: str
  vocab_size: int
  num_layers: int
  d_model: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  d_ff: int
  max_length: int
  rope_base: float = 10_000.0
  rope_scaling: Llama3Scaling | None = None
  norm_eps: float = 1e-6
  tie_embeddings: bool = False
  qkv_bias: bool = False
  dtype: str = "float32"
  param_dtype: str = "float32"
  scalar_head: bool = False
  symbols: tuple[int, ...] | None = None
  checkpoint: str | None = None

  def __post_init__(self):
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"num_kv_heads={self.num_kv_heads} must divide "
                       f"num_heads={self.num_heads}")
    if self.head_dim % 2:
      raise ValueError(f"head_dim={self.head_dim} must be even (rotary pairs)")
    for name in ("dtype", "param_dtype"):
      if getattr(self, name) not in ("float32", "bfloat16"):
        raise ValueError(f"{name} must be 'float32' or 'bfloat16', got "
                         f"{getattr(self, name)!r}")
    if self.symbols is not None and not all(0 <= t < self.vocab_size for t in self.symbols):
      raise ValueError(f"symbols must be token ids below vocab_size={self.vocab_size}")

  @property
  def outputs(self) -> int:
    """The width of the logits: the game's symbols, or the whole vocabulary."""
    return self.vocab_size if self.symbols is None else len(self.symbols)

  @property
  def frequencies(self) -> np.ndarray:
    """``[head_dim // 2]`` the rotary frequencies, scaled when ``rope_scaling`` says."""
    frequencies = rope_frequencies(self.head_dim, self.rope_base)
    return frequencies if self.rope_scaling is None else self.rope_scaling(frequencies)


class Block(nn.Module):
  config: DecoderConfig

  @nn.compact
  def __call__(self, x, positions, segments, kv):
    cfg, dtype, pdtype = self.config, jnp.dtype(self.config.dtype), jnp.dtype(
        self.config.param_dtype)
    d, heads = cfg.head_dim, {"q": cfg.num_heads, "k": cfg.num_kv_heads, "v": cfg.num_kv_heads}
    axes = {"q": "heads", "k": "kv_heads", "v": "kv_heads"}
    y = RMSNorm(dtype, cfg.norm_eps, pdtype, name="attn_norm")(x)
    q, k, v = [], [], []
    for name, out in zip("qkv", (q, k, v)):
      w = param(self, name, (cfg.d_model, heads[name], d), ("embed", axes[name], "head_dim"),
                dtype=pdtype)
      z = mix("bld,dhk->bhlk", y, w, dtype)
      if cfg.qkv_bias:
        b = param(self, f"{name}_bias", (heads[name], d), (axes[name], "head_dim"),
                  nn.initializers.zeros, pdtype)
        z = z + b.astype(dtype)[:, None]
      out.append(z)
    q, k, v = q[0], k[0], v[0]
    q, k = (rope(z, positions, cfg.frequencies, cfg.max_length) for z in (q, k))
    y, kv = attention(q, k, v, positions, segments, kv, dtype)
    out = param(self, "out", (cfg.num_heads, d, cfg.d_model), ("heads", "head_dim", "embed"),
                dtype=pdtype)
    x = x + mix("bhlk,hkd->bld", y, out, dtype)
    y = RMSNorm(dtype, cfg.norm_eps, pdtype, name="mlp_norm")(x)
    gate, up = (param(self, name, (cfg.d_model, cfg.d_ff), ("embed", "mlp"), dtype=pdtype)
                for name in ("gate", "up"))
    down = param(self, "down", (cfg.d_ff, cfg.d_model), ("mlp", "embed"), dtype=pdtype)
    y = jax.nn.silu(mix("bld,df->blf", y, gate, dtype)) * mix("bld,df->blf", y, up, dtype)
    return x + mix("blf,fd->bld", y, down, dtype), kv


class Decoder(nn.Module):
  config: DecoderConfig

  @nn.compact
  def __call__(self, tokens, positions, segments, cache):
    cfg, dtype, pdtype = self.config, jnp.dtype(self.config.dtype), jnp.dtype(
        self.config.param_dtype)
    embed = param(self, "embed", (cfg.vocab_size, cfg.d_model), ("vocab", "embed"),
                  nn.initializers.normal(0.02), pdtype)
    if cfg.symbols is not None:  # Game symbols to token ids; -1 (NaN below) outside.
      tokens = jnp.take(np.asarray(cfg.symbols, np.int32), tokens, mode="fill", fill_value=-1)
    # A token outside the vocabulary reads NaN, never a silently clamped row.
    x = jnp.take(embed, tokens, axis=0, mode="fill", fill_value=jnp.nan).astype(dtype)
    x, cache = blocks([Block(cfg, name=f"block_{i}") for i in range(cfg.num_layers)],
                      x, positions, segments, cache)
    x = RMSNorm(dtype, cfg.norm_eps, pdtype, name="final_norm")(x)
    if cfg.tie_embeddings:
      unembed = embed.T
    else:
      unembed = param(self, "unembed", (cfg.d_model, cfg.vocab_size), ("embed", "vocab"),
                      dtype=pdtype)
    if cfg.symbols is not None:
      unembed = unembed[:, np.asarray(cfg.symbols)]
    logits = jnp.dot(x, unembed.astype(dtype), preferred_element_type=jnp.float32)
    scalars = None
    if cfg.scalar_head:
      head = param(self, "scalar_head", (cfg.d_model,), ("embed",), nn.initializers.zeros,
                   pdtype)
      scalars = jnp.dot(x, head.astype(dtype), preferred_element_type=jnp.float32)
    return logits, scalars, cache


@functools.cache
def make(config: DecoderConfig) -> Model:
  """The pure functions of a decoder of this configuration (equal configs, one Model)."""
  return from_module(config, Decoder(config), kv_heads=config.num_kv_heads)
