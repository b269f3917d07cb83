"""Behaviour cloning of a role from a dataset of game transcripts (pre-training, SFT).

  python -m experiments.imitation --config configs/imitation.py --workdir DIR

Builds the dataset if it is missing, trains its one stage, ``imitation``, with
checkpoints (running again in DIR resumes exactly), then plays the trained player
greedily against the game's scripted player one and writes ``summary.json``.
"""

import json

import jax
import numpy as np
from jax.experimental import multihost_utils

from experiments import common, launch
from twoplayer_jax import games, players, rollout
from twoplayer_jax.data import build, configs as data_configs, sources
from twoplayer_jax.train import stages


def dataset(c) -> sources.Source:
  """The training split, built first (by process 0) if missing."""
  try:
    return sources.load(c.dataset, "train", c.data_dir)
  except sources.NotBuiltError:
    if jax.process_index() == 0:
      build.build(c.dataset, c.data_dir, num_examples=c.num_examples, seed=c.seed,
                  progress=True)
    multihost_utils.sync_global_devices("dataset built")
    return sources.load(c.dataset, "train", c.data_dir)


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  model = common.model(c.model)
  with common.runner(c, workdir) as run:
    block = dict(steps=c.num_steps, batch_size=c.batch_size, **c.optimizer)
    states = run(stages.imitation("imitation", model, block, dataset(c), seed=c.seed,
                                  num_seeds=1, seq_len=c.seq_len, roles=tuple(c.roles),
                                  opening_loss=c.opening_loss))
    params = jax.tree.map(lambda x: x[0], replicated(states.params, run.mesh))
    summary = {"steps": c.num_steps, "train_seconds": run.records["imitation"]["seconds"],
               **evaluate(c, model, params)}
    common.write_summary(workdir, summary)
    print(json.dumps(summary))


def replicated(tree, mesh):
  """``tree`` whole on every device: readable by every process, however it was sharded."""
  return jax.jit(lambda x: x, out_shardings=jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec()))(tree)


def evaluate(c, model, params) -> dict:
  """The trained role's mean payoff in greedy play against the scripted human."""
  name = c.dataset.partition("/")[2]
  config = next(g for g in data_configs.standard_transcripts() if g.name == name)
  game = games.make(config.game, **dict(config.game_settings))
  params = jax.device_get(params)
  seat = players.model_player(model, game, temperature=0.0)
  human = games.player(config.game, 1, "human", game)
  traj = rollout.play(game, (human, seat), (None, params), jax.random.key(c.seed + 1),
                      c.eval_games)
  return {"payoff_two": float(np.mean(traj.returns[:, 1]))}


if __name__ == "__main__":
  launch.run(main)
