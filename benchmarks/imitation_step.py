"""Speed of the imitation update, and its share of the machine's float32 matmul peak.

  python -m benchmarks.imitation_step [--json PATH] [--repeats N] [--devices N]

Batch 32 x 128 tokens for a 2-layer d=128 and a 6-layer d=512 transformer. The peak is a
2048^3 float32 matmul measured in the same run. ``mfu_large`` counts the model FLOPs of
the d=512 step, 6 per parameter per token for the matmul weights plus 12 * layers * T * d
per token for attention, over the measured peak. With ``--devices N`` (N fake CPU devices,
set before JAX starts) the step is data parallel over all of them.
"""

import argparse
import os
import sys


def _parse():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--json", help="write the figures to this JSON file")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--devices", type=int, default=1, help="fake CPU devices (data parallel)")
  return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS and ARGS.devices > 1:
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + f" --xla_force_host_platform_device_count={ARGS.devices}")

import jax  # noqa: E402  (after the device count is set)
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import report, time_call  # noqa: E402
from twoplayer_jax import batches, models, train, vocab  # noqa: E402

BATCH, LENGTH = 32, 128
SIZES = {
    "small": models.TransformerConfig(num_layers=2, d_model=128, num_heads=4, d_ff=512,
                                      max_length=LENGTH),
    "large": models.TransformerConfig(num_layers=6, d_model=512, num_heads=8, d_ff=2048,
                                      max_length=LENGTH),
}


def matmul_peak(repeats: int) -> float:
  """FLOP/s of a 2048^3 float32 matmul."""
  n = 2048
  a = jax.random.normal(jax.random.key(0), (n, n))
  _, seconds = time_call(jax.jit(lambda a: a @ a), a, repeats=repeats)
  return 2 * n ** 3 / seconds


def step_flops(config: models.TransformerConfig, params) -> float:
  """Model FLOPs of one update: matmul weights (not the embedding lookup) and attention."""
  matmul_params = models.num_params(params) - params["embed"].size
  tokens = BATCH * (LENGTH - 1)
  attention = 12 * config.num_layers * (LENGTH - 1) * config.d_model
  return tokens * (6 * matmul_params + attention)


def bench(config, repeats):
  model = models.make(config)
  tx = train.optimizer(1e-4, 1000)
  state = train.create(model.init(jax.random.key(0)), tx, jax.random.key(1))
  batch = batches.Turns(
      jax.random.randint(jax.random.key(2), (BATCH, LENGTH), 0, vocab.NUM_BYTES),
      jnp.ones((BATCH, LENGTH)))
  update = jax.jit(train.imitation_step(model, tx))
  if jax.device_count() > 1:
    mesh = jax.make_mesh((jax.device_count(),), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))
    data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    batch = jax.device_put(batch, data)
    state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  first, median = time_call(update, state, batch, repeats=repeats)
  return median, first - median, step_flops(config, state.params)


def main():
  figures = {"backend": jax.default_backend(), "devices": jax.device_count()}
  peak = matmul_peak(ARGS.repeats)
  figures["matmul_peak_gflops"] = peak / 1e9
  for name, config in SIZES.items():
    seconds, compile_s, flops = bench(config, ARGS.repeats)
    figures[f"{name}_tokens_per_s"] = BATCH * LENGTH / seconds
    figures[f"{name}_s_per_step"] = seconds
    figures[f"{name}_compile_s"] = compile_s
    figures[f"mfu_{name}"] = flops / seconds / peak
  report(figures, ARGS.json)


if __name__ == "__main__":
  sys.exit(main())
