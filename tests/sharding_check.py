"""Measurements of sharded imitation steps on 8 fake CPU devices, printed as JSON.

Run by tests/test_sharding.py in a process of its own, since the device count is fixed
when JAX starts and the rest of the suite runs on one device:

  JAX_NUM_CPU_DEVICES=8 python tests/sharding_check.py
"""

import json

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from twoplayer_jax import batches, models, sharding, train

STEPS = 2
MODEL = models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=4, d_ff=64,
                                             max_length=32))
TX = train.optimizer(1e-3, 10)
MESHES = {"data8": dict(data=8), "data2_fsdp4": dict(data=2, fsdp=4),
          "data4_tensor2": dict(data=4, tensor=2)}
LEAVES = {"embed": ("embed",), "qkv": ("block_0", "qkv"), "out": ("block_0", "out"),
          "mlp_in": ("block_0", "mlp_in")}


def init(key):
  return train.create(MODEL.init(key), TX, jax.random.fold_in(key, 1))


def make_batch(rows=16, length=24, learned=12):
  """Random transcripts with ``learned`` weighted tokens in every row: each device's share
  then carries the same loss weight, so per-device mean gradients average to the batch's."""
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 256, (rows, length), dtype=np.int32)
  weights = np.zeros((rows, length), np.float32)
  for row in weights:
    row[1 + rng.permutation(length - 1)[:learned]] = 1.0
  return batches.Turns(tokens, weights)


def run(update, state, batch):
  for _ in range(STEPS):
    # Waiting on every step keeps CPU collectives from deadlocking (docs/design.md).
    state, metrics = jax.block_until_ready(update(state, batch))
  return state, metrics


def max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def summary(state, metrics, reference):
  """A run's largest parameter difference from ``reference`` and its metrics (pmap's
  come once per device)."""
  return {"param_diff": max_diff(state.params, reference),
          **{k: float(np.ravel(metrics[k])[0]) for k in ("loss", "grad_norm", "tokens")}}


def leaf(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def spec(named):
  return [list(d) if isinstance(d, tuple) else d for d in named.spec]


def error(fn, *args, **kwargs):
  try:
    fn(*args, **kwargs)
  except ValueError as e:
    return str(e)
  return None


def main():
  key, batch = jax.random.key(0), make_batch()
  step, init_jit = train.imitation_step(MODEL, TX), jax.jit(init)
  initial = init_jit(key).params
  single, metrics = run(jax.jit(step), init_jit(key), batch)
  out = {"devices": jax.device_count(), "moved": max_diff(single.params, initial),
         "single": summary(single, metrics, single.params)}

  for name, axes in MESHES.items():
    mesh = sharding.make_mesh(**axes)
    state, shardings = sharding.create_state(init, key, mesh, MODEL.logical_axes())
    update = sharding.jit_sharded_update(step, mesh, shardings, sharding.batch_sharding(mesh))
    state, metrics = run(update, state, sharding.shard_batch(batch, mesh))
    adam = state.opt_state[1][0]
    out[name] = {**summary(state, metrics, single.params),
                 "specs": {k: spec(leaf(state.params, p).sharding) for k, p in LEAVES.items()},
                 "mu_specs": {k: spec(leaf(adam.mu, p).sharding) for k, p in LEAVES.items()},
                 "count_spec": spec(adam.count.sharding), "rng_spec": spec(state.rng.sharding)}

  pmapped = jax.pmap(train.imitation_step(MODEL, TX, axis_name="d"), axis_name="d",
                     in_axes=(None, 0))
  # pmap returns one copy of the state per device; the next step takes the first.
  first = lambda state, batch: jax.tree.map(lambda x: x[0], pmapped(state, batch))
  split = jax.tree.map(lambda x: x.reshape(8, -1, *x.shape[1:]), batch)
  out["pmap"] = summary(*run(first, init_jit(key), split), single.params)

  mapped = jax.jit(jax.shard_map(train.imitation_step(MODEL, TX, axis_name="data"),
                                 mesh=sharding.make_mesh(data=8), in_specs=(P(), P("data")),
                                 out_specs=(P(), P())))
  out["shard_map"] = summary(*run(mapped, init_jit(key), batch), single.params)

  abstract = jax.eval_shape(MODEL.init, key)
  tensor8 = sharding.logical_to_sharding(sharding.make_mesh(tensor=8), MODEL.logical_axes(),
                                         abstract)
  out["tensor8_specs"] = {k: spec(leaf(tensor8, p)) for k, p in LEAVES.items()}
  out["subset_mesh"] = dict(sharding.make_mesh(fsdp=4, devices=jax.devices()[:4]).shape)
  out["errors"] = {
      "mesh_too_small": error(sharding.make_mesh, data=3),
      "mesh_not_dividing": error(sharding.make_mesh, fsdp=3),
      "two_free_axes": error(sharding.make_mesh, data=-1, fsdp=-1),
      "batch_not_dividing": error(sharding.shard_batch, make_batch(rows=12),
                                  sharding.make_mesh(data=2, fsdp=4)),
      "unknown_logical_axis": error(sharding.logical_to_sharding, sharding.make_mesh(),
                                    {"w": P("width")}, {"w": abstract["embed"]}),
  }
  print(json.dumps(out))


if __name__ == "__main__":
  main()
