"""The transformer: KV-cache decoding equals the full forward pass; sizes; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import models, vocab

CONFIG = models.TransformerConfig(num_layers=2, d_model=64, num_heads=4, d_ff=128,
                                  max_length=24, scalar_head=True)


@pytest.fixture(scope="module")
def model_and_params():
  model = models.make(CONFIG)
  params = model.init(jax.random.key(0))
  # Random scalar head, so that its values are tested too.
  params["scalar_head"] = jax.random.normal(jax.random.key(1), params["scalar_head"].shape)
  return model, params


def test_kv_cache_decoding_equals_full_forward(model_and_params):
  model, params = model_and_params
  batch, length = 3, CONFIG.max_length
  tokens = jax.random.randint(jax.random.key(2), (batch, length), 0, vocab.VOCAB_SIZE)
  positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
  full_logits, full_scalars, _ = jax.jit(model.apply)(params, tokens, positions)

  prefill = 5
  logits, scalars, cache = model.apply(params, tokens[:, :prefill], positions[:, :prefill],
                                       model.init_cache(batch))
  decode = jax.jit(model.apply)
  outs, vals = [logits], [scalars]
  for t in range(prefill, length):
    logits, scalars, cache = decode(params, tokens[:, t:t + 1], positions[:, t:t + 1], cache)
    outs.append(logits)
    vals.append(scalars)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), full_logits, atol=1e-5)
  np.testing.assert_allclose(jnp.concatenate(vals, 1), full_scalars, atol=1e-5)


def test_rows_decode_at_their_own_positions(model_and_params):
  """Games of one batch have openings of different lengths: each row writes at its own
  position, and stale cache entries beyond it are never read."""
  model, params = model_and_params
  tokens = jax.random.randint(jax.random.key(3), (2, 10), 0, vocab.VOCAB_SIZE)
  positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
  full, _, _ = model.apply(params, tokens, positions)
  _, _, cache = model.apply(params, tokens[:, :8], positions[:, :8], model.init_cache(2))
  # Row 0 continues at position 3 over stale entries 3..7; row 1 continues at 8.
  starts = jnp.array([3, 8])
  logits, _, _ = model.apply(params, tokens[jnp.arange(2), starts][:, None], starts[:, None],
                             cache)
  np.testing.assert_allclose(logits[0, 0], full[0, 3], atol=1e-5)
  np.testing.assert_allclose(logits[1, 0], full[1, 8], atol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_logits():
  config = models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                    max_length=8, dtype="bfloat16")
  model = models.make(config)
  params = model.init(jax.random.key(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  tokens = jnp.zeros((2, 8), jnp.int32)
  logits, scalars, _ = model.apply(params, tokens, jnp.broadcast_to(jnp.arange(8), (2, 8)))
  assert logits.dtype == jnp.float32 and scalars is None
  f32 = models.make(models.TransformerConfig(**{**config.__dict__, "dtype": "float32"}))
  ref, _, _ = f32.apply(params, tokens, jnp.broadcast_to(jnp.arange(8), (2, 8)))
  np.testing.assert_allclose(logits, ref, atol=0.1, rtol=0.05)


def test_logical_axes_name_every_parameter(model_and_params):
  model, params = model_and_params
  axes = model.logical_axes()
  assert jax.tree.structure(params) == jax.tree.structure(
      axes, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
  assert tuple(axes["embed"]) == ("vocab", "embed")
  assert tuple(axes["block_0"]["mlp_in"]) == ("embed", "mlp")


@pytest.mark.parametrize("config, low, high", [
    (models.TransformerConfig(num_layers=2, d_model=64, num_heads=2, d_ff=256), 8e4, 1.5e5),
    (models.TransformerConfig(num_layers=20, d_model=2048, num_heads=16, d_ff=8192,
                              max_length=2048), 0.9e9, 1.2e9),
])
def test_sizes_from_100k_to_1b_by_config_alone(config, low, high):
  model = models.make(config)
  shapes = jax.eval_shape(model.init, jax.random.key(0))
  assert low <= models.num_params(shapes) <= high


def test_bad_input_is_named(model_and_params):
  model, params = model_and_params
  tokens = jnp.zeros((2, 4), jnp.int32)
  with pytest.raises(ValueError, match="positions"):
    model.apply(params, tokens, jnp.zeros((2, 5), jnp.int32))
  with pytest.raises(ValueError, match="max_length"):
    model.apply(params, jnp.zeros((1, 30), jnp.int32), jnp.zeros((1, 30), jnp.int32))
  with pytest.raises(ValueError, match="cache holds 3"):
    model.apply(params, tokens, jnp.zeros((2, 4), jnp.int32), model.init_cache(3))
  with pytest.raises(ValueError, match="integer"):
    model.apply(params, tokens.astype(jnp.float32), jnp.zeros((2, 4), jnp.int32))
  with pytest.raises(ValueError, match="num_heads"):
    models.TransformerConfig(d_model=64, num_heads=3)


def test_token_outside_the_vocabulary_gives_nan_not_a_clamped_row(model_and_params):
  model, params = model_and_params
  tokens = jnp.array([[1, 2], [1, vocab.VOCAB_SIZE]])
  logits, _, _ = model.apply(params, tokens, jnp.array([[0, 1], [0, 1]]))
  assert bool(jnp.all(jnp.isfinite(logits[0]))) and bool(jnp.all(jnp.isnan(logits[1, 1])))


def test_packed_segments_do_not_see_each_other(model_and_params):
  model, params = model_and_params
  a = jax.random.randint(jax.random.key(4), (1, 6), 0, 256)
  b = jax.random.randint(jax.random.key(5), (1, 5), 0, 256)
  alone_b, _, _ = model.apply(params, b, jnp.arange(5)[None])
  packed = jnp.concatenate([a, b], 1)
  positions = jnp.concatenate([jnp.arange(6), jnp.arange(5)])[None]
  segments = jnp.array([[1] * 6 + [2] * 5])
  logits, _, _ = model.apply(params, packed, positions, segments=segments)
  np.testing.assert_allclose(logits[:, 6:], alone_b, atol=1e-5)
