"""The one runner every experiment trains its stages with (the impure shell).

A ``Runner`` owns what a stage does not: the mesh and where seeds and games go on it,
preemption, resume, checkpoints, metrics and each stage's record. An experiment is a
list of stages run in order, each starting from the ones before::

  with runner.Runner(workdir, mesh, num_seeds=3) as run:
    pretrain = run(stages.imitation("pretrain", model, c.pretrain, data, ...))
    sft = run(stages.imitation("sft", model, c.sft, demos, ..., start=pretrain.params))
    ...

Stage ``name`` lives in ``workdir/name`` (checkpoints, ``metrics.jsonl``, TensorBoard
files, ``stage.json``): running the experiment again in its workdir reuses the stages it
finished and resumes the one it stopped in, bitwise (parameters, optimiser, PRNG keys
and data position are checkpointed). SIGTERM (how a TPU VM is told of its preemption)
saves the current step of the current stage; the ``with`` block then ends quietly,
having printed what to do, and the process exits 0.

Placement: the seeds' states ``[S, ...]`` are split over the mesh's ``data`` axis when
it divides ``S`` (e.g. 8 seeds on 8 devices), else replicated over it, and each seed's
games are split over the batch axes the seeds leave (``data`` and ``fsdp``); parameters
are further split over ``fsdp`` and ``tensor`` by their logical axes.
"""

import json
import math
import os
import signal
import threading
import time
from typing import Any

from absl import logging
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from twoplayer_jax import checkpoint, files, sharding
from twoplayer_jax.metrics import MetricsWriter
from twoplayer_jax.train.loop import fit
from twoplayer_jax.train.stages import Stage


class Preempted(Exception):
  """A stage stopped on preemption, its current step saved."""

  def __init__(self, stage: str, step: int):
    super().__init__(f"preempted in stage {stage}: saved step {step}; run the same command "
                     "again to resume")
    self.stage, self.step = stage, step


class _Clock:
  """A data iterator whose state also carries the stage's training seconds so far, so a
  resumed stage's record counts every run's time."""

  def __init__(self, batches, seconds: float = 0.0):
    self.batches, self.before, self.started = batches, seconds, time.perf_counter()

  def __iter__(self):
    return self

  def __next__(self):
    return next(self.batches)

  @property
  def seconds(self) -> float:
    return self.before + time.perf_counter() - self.started

  def get_state(self) -> dict:
    return {"data": self.batches.get_state(), "seconds": self.seconds}

  def set_state(self, state: dict) -> None:
    self.batches.set_state(state["data"])
    self.before, self.started = state["seconds"], time.perf_counter()


class _Fixed:
  """The iterator of a stage without data: its fixed batch at every step."""

  def __init__(self, value):
    self.value = value

  def __iter__(self):
    return self

  def __next__(self):
    return self.value

  def get_state(self) -> dict:
    return {}

  def set_state(self, state: dict) -> None:
    del state


class Runner:
  """Runs stages for ``num_seeds`` seeds on ``mesh`` in ``workdir``; use it as a context
  manager (it catches SIGTERM inside the block), and call it on each stage.

  Args:
    workdir: the run's directory.
    mesh: a ``sharding.make_mesh`` mesh.
    num_seeds: seeds trained side by side.
    log_every, checkpoint_every, sync_every: steps between metric records, checkpoints
      and waits on the devices.
    keep: checkpoints kept per stage.
  """

  def __init__(self, workdir: str, mesh: Mesh, num_seeds: int, *, log_every: int = 50,
               checkpoint_every: int = 500, sync_every: int = 10, keep: int = 2):
    self.workdir, self.mesh, self.num_seeds = workdir, mesh, num_seeds
    self.log_every, self.checkpoint_every, self.sync_every = (
        log_every, checkpoint_every, sync_every)
    self.keep = keep
    self.records: dict[str, dict] = {}  # Each finished stage's record, by name.
    data = mesh.shape["data"]
    self.seed_axis = "data" if data > 1 and num_seeds % data == 0 else None
    self.games_axes = tuple(a for a in sharding.BATCH_AXES
                            if mesh.shape[a] > 1 and a != self.seed_axis)
    self._stop = threading.Event()
    self._previous_handler = None

  @property
  def games_sharding(self) -> NamedSharding | None:
    """The sharding of one seed's games (an RL iteration's ``games_sharding``)."""
    return NamedSharding(self.mesh, P(self.games_axes)) if self.games_axes else None

  def __enter__(self) -> "Runner":
    self._stop.clear()

    def request_stop(signum, frame):
      del frame
      logging.warning("signal %d: stopping after the current step, which is saved", signum)
      self._stop.set()

    self._previous_handler = signal.signal(signal.SIGTERM, request_stop)
    return self

  def __exit__(self, kind, error, traceback) -> bool:
    signal.signal(signal.SIGTERM, self._previous_handler)
    if isinstance(error, Preempted):
      if jax.process_index() == 0:
        print(error, flush=True)
      return True
    return False

  def _state_shardings(self, stage: Stage, abstract: Any) -> Any:
    """Every leaf ``[S, ...]`` split over the seed axis; parameters (and optimiser leaves
    mirroring them) also by their logical axes."""
    lead = lambda spec: NamedSharding(self.mesh, P(self.seed_axis, *spec))
    shardings = jax.tree.map(lambda x: lead(()), abstract)
    params = getattr(abstract, "params", None)
    if stage.logical_axes is None or params is None or not hasattr(abstract, "opt_state"):
      return shardings
    one = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), abstract)
    inner = sharding.state_shardings(
        self.mesh, one, sharding.logical_to_sharding(self.mesh, stage.logical_axes, one.params))
    return jax.tree.map(lambda s: lead(tuple(s.spec)), inner)

  def _check(self, stage: Stage, abstract: Any) -> int:
    """Raises unless the stage fits the runner; returns its runs (states' leading axis)."""
    leaves = jax.tree.flatten_with_path(abstract)[0]
    lead = leaves[0][1].shape[:1]
    for path, x in leaves:  # Seeds, or several runs of each (e.g. two lines of seeds).
      if x.shape[:1] != lead or not lead or lead[0] % self.num_seeds:
        raise ValueError(f"stage {stage.name}: state leaf {jax.tree_util.keystr(path)} of "
                         f"shape {x.shape} lacks the leading seed axis (a multiple of "
                         f"{self.num_seeds}, the same for every leaf)")
    self.check_games(stage.games_per_step, f"stage {stage.name}")
    return lead[0]

  def check_games(self, games: int, where: str) -> None:
    """Raises unless ``games`` per seed and step divide over the devices that split them
    (e.g. to check a config's batch sizes before anything runs)."""
    ways = math.prod(self.mesh.shape[a] for a in self.games_axes)
    if games % ways:
      raise ValueError(f"{where}: {games} games per seed and step do not divide over the "
                       f"{ways} devices of mesh axes {self.games_axes}")

  def __call__(self, stage: Stage) -> Any:
    """Runs ``stage`` to its last step (or reuses it, finished) and returns its states
    ``[S, ...]``; its record goes to ``records[stage.name]``.

    Raises:
      Preempted: a SIGTERM arrived; the current step was saved.
      ValueError: an unfinished stage's saved data position does not fit its input
        pipeline (written by another one); the checkpoint is left as it was.
    """
    directory = os.path.join(self.workdir, stage.name)
    abstract = jax.eval_shape(stage.init, stage.start)
    runs = self._check(stage, abstract)
    shardings = self._state_shardings(stage, abstract)

    ckpt = checkpoint.Checkpoints(directory, every=self.checkpoint_every, keep=self.keep)
    restored = ckpt.restore(jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings))
    if restored:
      states, data_state, step = restored
    else:
      states, step = jax.jit(stage.init, out_shardings=shardings)(stage.start), 0
    record_path = os.path.join(directory, "stage.json")
    if step >= stage.num_steps and os.path.exists(record_path):
      ckpt.close()
      with open(record_path, encoding="utf-8") as f:
        self.records[stage.name] = json.load(f)
      return states

    # A finished stage returned above without building its data (e.g. reading a dataset).
    if stage.batches is None:
      fixed = jax.jit(lambda x: x, out_shardings=NamedSharding(self.mesh, P(self.seed_axis)))(
          stage.fixed)
      batches, place = _Clock(_Fixed(fixed)), lambda b: b
    else:
      rows = NamedSharding(self.mesh, P(self.seed_axis, self.games_axes or None))
      batches = _Clock(stage.batches())
      place = lambda b: _global(b, rows)
    if restored:
      try:
        batches.set_state(data_state)
      except (KeyError, TypeError, ValueError) as e:
        ckpt.close()
        raise ValueError(
            f"stage {stage.name}: the data position saved at step {step} in {directory} "
            f"does not fit this stage's input pipeline ({type(e).__name__}: {e}); it was "
            "written by another one. Resume with the code that wrote it, or start the "
            "stage afresh in another workdir") from None

    if step and jax.process_index() == 0:
      print(f"stage {stage.name}: resumed at step {step}", flush=True)
    update = jax.jit(stage.update, in_shardings=(shardings, None),
                     out_shardings=(shardings, NamedSharding(self.mesh, P())),
                     donate_argnums=0)
    writer = MetricsWriter(directory, every=self.log_every, active=jax.process_index() == 0,
                           total_steps=stage.num_steps, start_step=step, name=stage.name)
    try:
      states, preempted = fit(update, states, batches, stage.num_steps, writer=writer,
                              checkpoints=ckpt, place=place, sync_every=self.sync_every,
                              tokens_per_step=stage.tokens_per_step * runs,
                              health=stage.health, stop_requested=self._stop.is_set)
    finally:
      ckpt.close()
      writer.close()
    if preempted:
      raise Preempted(stage.name, int(np.max(jax.device_get(states.step))))
    record = {"seconds": batches.seconds, "tokens": stage.num_steps * stage.tokens_per_step,
              "metrics": writer.last}
    if jax.process_index() == 0:
      files.write_json(record_path, record, indent=1)
    self.records[stage.name] = record
    return states


def _global(batch: Any, sharding_: NamedSharding) -> Any:
  """This process's host batch ``[S, B_local, ...]`` as one global array per leaf."""
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding_)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding_, np.asarray(x)),
                      batch)
