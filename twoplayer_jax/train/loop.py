"""The training loop: the impure shell around a pure update step.

It feeds batches, waits on the device every ``sync_every`` steps (reading the metrics;
this also keeps a multi-device CPU run clear of the collective deadlock noted in
docs/design.md), writes metrics, checks them for NaN, checkpoints, and stops cleanly on
preemption. Every process of a multi-host run runs it alike.
"""

from typing import Any, Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils

from twoplayer_jax import checkpoint
from twoplayer_jax.metrics import MetricsWriter
from twoplayer_jax.train.state import TrainState


def _any_process(flag: bool) -> bool:
  """Whether ``flag`` is set on any process (every process must call this)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


def fit(update: Callable[[TrainState, Any], tuple[TrainState, dict]], state: TrainState,
        batches: Iterator, num_steps: int, *, writer: MetricsWriter,
        checkpoints: checkpoint.Checkpoints | None = None,
        place: Callable[[Any], Any] = lambda batch: batch, sync_every: int = 10,
        tokens_per_step: int | None = None) -> tuple[TrainState, bool]:
  """Trains ``state`` from its step to ``num_steps``.

  Args:
    update: ``(state, batch) -> (state, metrics)``, jitted (donating the state).
    state: the state to continue from; ``state.step`` is the number of updates made
      (``[S]``, all equal, for the stacked states of seeds trained side by side).
    batches: an iterator of host batches with ``get_state()`` (a Grain iterator), its
      position matching ``state``.
    num_steps: the step to stop at.
    writer: where metrics go; it raises ``FloatingPointError`` on a NaN or inf.
    checkpoints: where checkpoints go (None: no checkpoints); the last step is always
      saved.
    place: puts a host batch on the devices (e.g. as global sharded arrays).
    sync_every: steps between waits on the device (metrics are read then).
    tokens_per_step: tokens in a batch, for the tokens/s metric.

  Returns:
    The final state, and whether the run stopped early on preemption (SIGTERM); a
    checkpoint of the stop step was then saved.
  """
  step = int(np.max(jax.device_get(state.step)))  # States of vmapped seeds agree.
  pending = []  # Metrics of the steps since the last wait, still on the device.
  while step < num_steps:
    state, metrics = update(state, place(next(batches)))
    step += 1
    pending.append((step, metrics))
    due = [sync_every, writer.every] + ([checkpoints.every] if checkpoints else [])
    if step != num_steps and all(step % every for every in due):
      continue
    # Every step's loss is checked before anything is saved, so a NaN never reaches a
    # checkpoint and the error names the first bad step.
    for at, values in jax.device_get(pending):
      if not np.isfinite(values["loss"]):
        raise FloatingPointError(f"step {at}: loss is {values['loss']}; stopping, the last "
                                 "good checkpoint is kept")
      writer.write(at, values, tokens=tokens_per_step, force=at == num_steps)
    pending = []
    preempted = _any_process(checkpoint.preemption_requested())
    if checkpoints:  # Every `every` steps, on preemption, and at the end.
      checkpoints.save(step, state, batches.get_state(),
                       force=preempted or step == num_steps)
    if preempted:
      return state, True
  return state, False
