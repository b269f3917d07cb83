"""Behaviour cloning of a role from a dataset of game transcripts (pre-training, SFT).

  python -m experiments.imitation --config configs/imitation.py --workdir DIR

Builds the dataset if it is missing, trains with checkpoints (running again in DIR
resumes exactly), then plays the trained player greedily against the game's scripted
player one and writes ``summary.json``.
"""

import json
import os
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from experiments import launch
from twoplayer_jax import (checkpoint, files, games, models, players, rollout, sharding,
                          train)
from twoplayer_jax.data import build, configs as data_configs, pipeline, sources
from twoplayer_jax.metrics import MetricsWriter
from twoplayer_jax.train.loop import fit


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
  launch.start_processes()
  mesh = sharding.make_mesh(**c.mesh)
  sharding.check_batch_size(c.batch_size, mesh)
  launch.prepare_workdir(c, workdir)
  source = dataset(c)
  local_batch = c.batch_size // jax.process_count()

  model = models.make(models.TransformerConfig(**c.model))
  tx = train.optimizer(total_steps=c.num_steps, **c.optimizer)
  init = lambda key: train.create(model.init(key), tx, jax.random.fold_in(key, 1))
  state, shardings = sharding.create_state(init, jax.random.key(c.seed), mesh,
                                           model.logical_axes())
  batches = iter(pipeline.turns(source, batch_size=local_batch, seq_len=c.seq_len,
                                seed=c.seed, roles=tuple(c.roles), opening_loss=c.opening_loss))
  ckpt = checkpoint.Checkpoints(workdir, every=c.checkpoint_every, keep=c.keep_checkpoints)
  restored, step = ckpt.restore(state), 0
  if restored:
    state, data_state, step = restored
    batches.set_state(data_state)
    print(f"resumed at step {step}")
  update = sharding.jit_update(train.imitation_step(model, tx), mesh, shardings,
                               sharding.batch_sharding(mesh))

  def place(batch):
    return sharding.shard_batch({"tokens": batch["tokens"], "weights": batch["loss_mask"],
                                 "positions": batch["positions"],
                                 "segments": batch["segment_ids"]}, mesh)

  checkpoint.install_sigterm_handler()
  writer = MetricsWriter(workdir, every=c.log_every, active=jax.process_index() == 0,
                         total_steps=c.num_steps, start_step=step)
  start = time.perf_counter()
  state, preempted = fit(update, state, batches, c.num_steps, writer=writer,
                         checkpoints=ckpt, place=place, sync_every=c.sync_every,
                         tokens_per_step=c.batch_size * c.seq_len)
  ckpt.close()
  writer.close()
  if preempted:
    print(f"preempted: saved step {int(state.step)}; run again to resume")
    return
  summary = {"steps": int(state.step), "train_seconds": time.perf_counter() - start,
             **evaluate(c, model, replicated(state.params, mesh))}
  if jax.process_index() == 0:
    files.write_json(os.path.join(workdir, "summary.json"), summary, indent=1)
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
