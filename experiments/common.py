"""What the multi-stage experiments share (the shell around the library's pure steps).

Several seeds are trained side by side: their train states are stacked on a leading
seed axis ``[S, ...]`` and every update is ``jax.vmap``-ped over it inside one ``jit``.
Each stage of an experiment runs in ``workdir/<stage>`` with its own checkpoints and
metrics, so running an experiment again in its workdir resumes the stage it stopped in
and reuses the ones it finished.
"""

import dataclasses
import functools
import json
import os
import sys
import time
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from twoplayer_jax import checkpoint, files, rollout, train
from twoplayer_jax.data import build, configs, pipeline, sources
from twoplayer_jax.metrics import MetricsWriter
from twoplayer_jax.train.loop import fit


def dataset(kind: str, config: configs.GameConfig, data_dir: str, num_examples: int,
            seed: int = 0) -> sources.Source:
  """The train split of ``kind`` (``game_transcripts`` or ``game_preferences``) for
  ``config``, ``num_examples`` games from ``seed``, built first (by process 0) unless
  already built.

  It is stored as ``<config.name>_n<num_examples>_s<seed>``, so a smoke run's small
  dataset and a full run's live side by side in one ``data_dir``.
  """
  config = dataclasses.replace(config, name=f"{config.name}_n{num_examples}_s{seed}")
  if jax.process_index() == 0:  # Reuses a dataset built with these settings.
    build.build(kind, data_dir, num_examples=num_examples, seed=seed, config=config,
                progress=True)
  multihost_utils.sync_global_devices(f"built {config.name}")
  return sources.load(kind, "train", data_dir, config=config)


def init_states(model, tx, seed: int, num_seeds: int, params: Any = None) -> train.TrainState:
  """``[S, ...]`` train states of ``num_seeds`` seeds: fresh parameters drawn from
  ``seed``'s keys, or ``params`` (already stacked ``[S, ...]``) when given."""
  keys = jax.random.split(jax.random.key(seed), num_seeds)

  def one(key, p):
    p = model.init(key) if p is None else p
    return train.create(p, tx, jax.random.fold_in(key, 1))

  return jax.jit(jax.vmap(one, in_axes=(0, None if params is None else 0)))(keys, params)


def transplant(target: Any, source: Any) -> Any:
  """``target`` with every leaf that ``source`` has at the same path and shape replaced
  by ``source``'s: e.g. a reward model started from a policy's transformer, its scalar
  head fresh."""
  found = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(source)}

  def pick(path, leaf):
    other = found.get(jax.tree_util.keystr(path))
    return other if other is not None and other.shape == leaf.shape else leaf

  return jax.tree_util.tree_map_with_path(pick, target)


def seeded(update: Callable) -> Callable:
  """``update(state, batch)`` vmapped over stacked states and batches ``[S, ...]`` in one
  jit donating the states; metrics averaged over the seeds."""

  def step(states, batches):
    states, metrics = jax.vmap(update)(states, batches)
    return states, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

  return jax.jit(step, donate_argnums=0)


def per_seed(batch: dict, num_seeds: int) -> dict:
  """A host batch ``[S * B, ...]`` as ``[S, B, ...]``: each seed its own examples."""
  return jax.tree.map(lambda x: np.reshape(x, (num_seeds, -1) + x.shape[1:]), batch)


def turn_batches(source: sources.Source, num_seeds: int, batch_size: int, seq_len: int,
                 seed: int, roles: tuple[int, ...] = (2,), opening_loss: bool = False):
  """Host batches of ``batch_size`` games per seed (``[S * B, seq_len]``, split by
  ``imitation_place``) from ``source``, cloning ``roles``."""
  return iter(pipeline.turns(source, batch_size=num_seeds * batch_size, seq_len=seq_len,
                             seed=seed, roles=roles, opening_loss=opening_loss))


def imitation_place(num_seeds: int) -> Callable[[dict], dict]:
  """Puts a ``turn_batches`` batch as the ``[S, B, T]`` batch of ``train.imitation_step``."""
  return lambda b: per_seed({"tokens": b["tokens"], "weights": b["loss_mask"]}, num_seeds)


class Games:
  """Endless shuffled batches of games held in memory, with the iterator interface
  (``get_state``/``set_state``) that ``common.run_stage`` resumes.

  The records of ``parts`` are read once, at the first batch, and padded to ``seq_len``
  by ``pipeline.pad_turns`` (player two's tokens carry the loss), then served in a new
  order each epoch, drawn from ``seed``; the position in the stream is the state.
  Decoding a record of a TFDS source in Python costs more than these tiny models'
  train step spends on it, and a small dataset is read for many epochs, so this reads
  it once (one host: every process would see the same batches).

  Batches: ``tokens`` and ``loss_mask`` ``[batch_size, seq_len]``, as
  ``common.imitation_place`` reads them; the parts are mixed in proportion to their sizes.
  """

  def __init__(self, parts: Sequence[Any], batch_size: int, seq_len: int, seed: int):
    self.parts, self.seq_len = list(parts), seq_len
    self.batch_size, self.seed, self.position = batch_size, seed, 0
    self.tokens = self.loss_mask = None  # [N, seq_len], read at the first batch.

  def _read(self) -> None:
    padded = [pipeline.pad_turns(r, self.seq_len, roles=(2,))
              for part in self.parts for r in part.__getitems__(list(range(len(part))))]
    if not padded:
      raise ValueError("no games to train on")
    self.tokens = np.stack([r["tokens"] for r in padded])
    self.loss_mask = np.stack([r["loss_mask"] for r in padded])

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self.tokens is None:  # A finished stage that is only restored reads nothing.
      self._read()
    n = len(self.tokens)
    epoch, offset = np.divmod(self.position * self.batch_size + np.arange(self.batch_size), n)
    index = np.empty(self.batch_size, np.int64)
    for e in np.unique(epoch):
      order = np.random.default_rng([self.seed, int(e)]).permutation(n)
      index[epoch == e] = order[offset[epoch == e]]
    self.position += 1
    return {"tokens": self.tokens[index], "loss_mask": self.loss_mask[index]}

  def get_state(self) -> dict:
    return {"position": self.position}

  def set_state(self, state: dict) -> None:
    self.position = int(state["position"])


class Repeat:
  """An endless iterator of one value with the data-iterator interface ``fit`` uses:
  the fixed inputs of policy learning, which reads no dataset."""

  def __init__(self, value: Any):
    self.value = value

  def __iter__(self):
    return self

  def __next__(self):
    return self.value

  def get_state(self) -> dict:
    return {}

  def set_state(self, state: dict) -> None:
    del state


def run_stage(workdir: str, name: str, update: Callable, states: train.TrainState,
              batches: Iterator, num_steps: int, *, place: Callable = lambda b: b,
              tokens_per_step: int, log_every: int = 50, checkpoint_every: int = 500,
              sync_every: int = 10) -> tuple[train.TrainState, dict | None]:
  """Runs stage ``name`` to ``num_steps`` in ``workdir/name``, resuming it if started.

  Returns:
    The states, and the stage's record (``seconds`` of training in the run that
    finished it, ``tokens`` per seed, the last ``metrics``), or None when the run was
    preempted (a checkpoint was saved; run again to resume).
  """
  directory = os.path.join(workdir, name)
  record_path = os.path.join(directory, "stage.json")
  ckpt = checkpoint.Checkpoints(directory, every=checkpoint_every, keep=2)
  restored, step = ckpt.restore(states), 0
  if restored:
    states, data_state, step = restored
    batches.set_state(data_state)
  if step >= num_steps and os.path.exists(record_path):
    ckpt.close()
    with open(record_path) as f:
      return states, json.load(f)
  writer = MetricsWriter(directory, every=log_every, active=jax.process_index() == 0,
                         total_steps=num_steps, start_step=step)
  start = time.perf_counter()
  states, preempted = fit(update, states, batches, num_steps, writer=writer, checkpoints=ckpt,
                          place=place, sync_every=sync_every, tokens_per_step=tokens_per_step)
  ckpt.close()
  writer.close()
  if preempted:
    return states, None
  record = {"seconds": time.perf_counter() - start, "tokens": num_steps * tokens_per_step,
            "metrics": writer.last}
  if jax.process_index() == 0:
    files.write_json(record_path, record, indent=1)
  return states, record


@functools.partial(jax.jit, static_argnames=("game", "players", "num_games"))
def play_seeds(game, players, params: tuple[Any, Any], key: jax.Array, num_games: int) -> Any:
  """Games of stacked players: ``params`` per seat, ``[S, ...]`` stacked or None (a
  scripted seat); returns a ``Trajectory`` of ``[S, num_games, ...]`` arrays, every
  seed playing the same openings. Compiled once per game, players and shapes."""
  axes = tuple(None if p is None else 0 for p in params)
  play = lambda p: rollout.play(game, players, p, key, num_games)
  return jax.vmap(play, in_axes=(axes,))(params)


def curve(workdir: str, stage: str, key: str) -> dict[str, list]:
  """``{"step": [...], key: [...]}`` of the metric ``key`` as stage ``stage`` logged it."""
  with open(os.path.join(workdir, stage, "metrics.jsonl")) as f:
    rows = [r for r in map(json.loads, f) if key in r]
  return {"step": [r["step"] for r in rows], key: [r[key] for r in rows]}


def command() -> str:
  """The command line that runs this experiment, as ``experiments.report`` cites it."""
  module = os.path.splitext(os.path.relpath(sys.argv[0]))[0].replace(os.sep, ".")
  return " ".join(["python -m", module, *sys.argv[1:]])


def write_summary(workdir: str, summary: dict) -> None:
  """``workdir/summary.json`` (process 0), with the ``command`` that made it."""
  if jax.process_index() == 0:
    files.write_json(os.path.join(workdir, "summary.json"), {"command": command(), **summary},
                     indent=1)


def mean_std(x) -> dict:
  """``{"mean", "std", "seeds"}`` of per-seed values ``[S]``."""
  x = np.asarray(x, np.float64)
  return {"mean": float(x.mean()), "std": float(x.std()), "seeds": x.tolist()}


def pm(m: dict) -> str:
  """A ``mean_std`` record as ``"mean ± std"``, three decimals."""
  return f"{m['mean']:.3f} ± {m['std']:.3f}"
