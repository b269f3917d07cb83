"""What the rest of the library sees of a model: ``Model``, its pure functions, and
``Cache``, its keys and values. Every family (``transformer``, ``decoder``) and the
vocabulary ``bridge`` return a ``Model``; players, rollout, objectives and stages need
nothing else."""

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class Cache(NamedTuple):
  """Keys and values, one ``[B, kv_heads, length, head_dim]`` array per layer.

  Separate arrays per layer, not one stacked array: a decoding step then updates each
  in place instead of slicing and re-stacking the whole cache.
  """
  k: tuple[jax.Array, ...]
  v: tuple[jax.Array, ...]


class Model(NamedTuple):
  """The pure functions of one model configuration.

  Attributes:
    config: the configuration (hashable); the library reads its ``outputs`` (the
      logits' width), ``max_length`` and ``scalar_head``.
    init: ``key -> params``, a pytree of arrays.
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
  config: Any
  init: Callable
  apply: Callable
  init_cache: Callable
  logical_axes: Callable


def from_module(config: Any, module: nn.Module, kv_heads: int) -> Model:
  """The ``Model`` of a Flax ``module`` called as ``module(tokens, positions, segments,
  cache)``, checking its inputs. ``config`` has ``max_length``, ``num_layers``,
  ``head_dim`` and ``dtype`` (the cache's); ``kv_heads`` is the cache's heads."""
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
    shape = (batch, kv_heads, length, config.head_dim)
    zeros = tuple(jnp.zeros(shape, config.dtype) for _ in range(config.num_layers))
    return Cache(zeros, zeros)

  def logical_axes():
    boxed = jax.eval_shape(module.init, jax.random.key(0), dummy, dummy, None, None)
    return nn.get_partition_spec(boxed)["params"]

  return Model(config, init, apply, init_cache, logical_axes)
