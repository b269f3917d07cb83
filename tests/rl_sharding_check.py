"""Five policy-learning iterations through the runner, on however many devices and
processes this one was started with; the final parameters go to an ``.npz`` file.

Run by tests/test_rl_sharding.py in processes of their own (the device count is fixed
when JAX starts):

  JAX_NUM_CPU_DEVICES=8 python tests/rl_sharding_check.py OUT.npz WORKDIR
  # and one of 2 processes x 4 devices:
  python tests/rl_sharding_check.py OUT.npz WORKDIR HOST:PORT 2 PROCESS_ID
"""

import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

from twoplayer_jax import games, models, sharding
from twoplayer_jax.train import runner, stages

ITERATIONS = 5
SEEDS = 2  # Not a multiple of 8: each seed's 16 games are split over the devices.


def main(out: str, workdir: str, *multiprocess: str) -> None:
  if multiprocess:
    address, count, index = multiprocess
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, int(count), int(index))
  game = games.make("arithmetic", num_digits=1)
  model = models.make(models.TransformerConfig(
      num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=game.max_length))
  block = dict(iterations=ITERATIONS, algorithm="grpo", num_openings=4, group_size=4,
               epochs=2, minibatches=2, learning_rate=3e-3, entropy_coef=0.01)
  human = games.player("arithmetic", 1, "human", game)
  with runner.Runner(workdir, sharding.make_mesh(), SEEDS, log_every=1, sync_every=1,
                     checkpoint_every=100) as run:
    stage = stages.policy("rl", game, model, block, human, seed=0, num_seeds=SEEDS,
                          games_sharding=run.games_sharding)
    params = run(stage).params
  params = multihost_utils.process_allgather(params, tiled=True)
  start = jax.device_get(jax.jit(stage.init)(None).params)
  moved = max(np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(params),
                                                     jax.tree.leaves(start)))
  if jax.process_index() == 0:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    np.savez(out, devices=jax.device_count(), games_axes=",".join(run.games_axes),
             moved=moved, **{jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves})


if __name__ == "__main__":
  main(*sys.argv[1:])
