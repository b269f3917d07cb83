"""The training loop: the impure shell around a pure update step.

It feeds batches, waits on the device every ``sync_every`` steps (reading the metrics;
this also keeps a multi-device CPU run clear of the collective deadlock noted in
docs/design.md), writes metrics, checks the run's health, checkpoints, and stops
cleanly when asked (preemption). Every process of a multi-host run runs it alike.

Health: a non-finite loss, a ``grad_norm`` of exactly 0 for several steps in a row (the
parameters no longer learn) or parameters whose root-mean-square has blown up (the
run diverged) stop the run with a ``TrainingError`` naming the step and the quantity,
before that step is checkpointed: the last good checkpoint stays the latest.
"""

import dataclasses
from typing import Any, Callable, Iterator

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from twoplayer_jax import checkpoint
from twoplayer_jax.metrics import MetricsWriter
from twoplayer_jax.train.state import TrainState


class TrainingError(FloatingPointError):
  """The run stopped unhealthy: a non-finite loss, dead gradients or diverged parameters."""


@dataclasses.dataclass(frozen=True)
class Health:
  """When ``fit`` stops a run (besides a non-finite loss).

  Attributes:
    zero_grad_steps: stop once ``grad_norm`` (where the update reports it) is exactly 0
      this many steps in a row; 0: never.
    max_param_rms: stop once the parameters' root-mean-square, read at each wait on
      the devices, exceeds this (or is not finite); inf: never.
    warn_only: log a warning instead of stopping (the non-finite loss still stops).
  """
  zero_grad_steps: int = 3
  max_param_rms: float = 1e3
  warn_only: bool = False


@jax.jit
def _rms(params: Any) -> jax.Array:
  """The root-mean-square of every parameter, one float32 scalar."""
  leaves = [jnp.asarray(x, jnp.float32) for x in jax.tree.leaves(params)]
  total = sum(jnp.sum(jnp.square(x)) for x in leaves)
  return jnp.sqrt(total / sum(x.size for x in leaves))


def any_process(flag: bool) -> bool:
  """Whether ``flag`` is set on any process (every process must call this)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


def fit(update: Callable[[TrainState, Any], tuple[TrainState, dict]], state: TrainState,
        batches: Iterator, num_steps: int, *, writer: MetricsWriter,
        checkpoints: checkpoint.Checkpoints | None = None,
        place: Callable[[Any], Any] = lambda batch: batch, sync_every: int = 10,
        tokens_per_step: int | None = None, health: Health = Health(),
        stop_requested: Callable[[], bool] = lambda: False) -> tuple[TrainState, bool]:
  """Trains ``state`` from its step to ``num_steps``.

  Args:
    update: ``(state, batch) -> (state, metrics)``, jitted (donating the state);
      ``metrics`` hold a scalar ``loss`` and, optionally, ``grad_norm``.
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
    health: when to stop a run that no longer learns or has diverged.
    stop_requested: whether to stop early and save (e.g. a SIGTERM arrived); asked at
      each wait on the devices.

  Returns:
    The final state, and whether the run stopped early on ``stop_requested``; a
    checkpoint of the stop step was then saved.

  Raises:
    TrainingError: the loss is not finite, or a ``health`` check failed (unless
      ``health.warn_only``); the step it happened at is not checkpointed.
  """
  step = int(np.max(jax.device_get(state.step)))  # States of vmapped seeds agree.
  pending = []  # Metrics of the steps since the last wait, still on the device.
  zero_grads = 0  # Steps in a row whose grad_norm was exactly 0.

  def unhealthy(message):
    if not health.warn_only:
      raise TrainingError(f"{message}; stopping, the last good checkpoint is kept")
    logging.warning("UNHEALTHY RUN (health.warn_only, training goes on): %s", message)

  while step < num_steps:
    state, metrics = update(state, place(next(batches)))
    step += 1
    pending.append((step, metrics))
    due = [sync_every, writer.every] + ([checkpoints.every] if checkpoints else [])
    if step != num_steps and all(step % every for every in due):
      continue
    # Every step is checked before anything is saved, so a bad state never reaches a
    # checkpoint and the error names the first bad step.
    for at, values in jax.device_get(pending):
      if not np.isfinite(values["loss"]):
        raise TrainingError(f"step {at}: loss is {values['loss']}; stopping, the last "
                            "good checkpoint is kept")
      if "grad_norm" in values:
        zero_grads = zero_grads + 1 if np.all(values["grad_norm"] == 0) else 0
        if health.zero_grad_steps and zero_grads == health.zero_grad_steps:
          unhealthy(f"step {at}: grad_norm has been exactly 0 for {zero_grads} steps in a "
                    "row (zero_grad_steps): the parameters no longer learn")
      writer.write(at, values, tokens=tokens_per_step, force=at == num_steps)
    pending = []
    rms = float(_rms(state.params)) if np.isfinite(health.max_param_rms) else 0.0
    if not rms <= health.max_param_rms:
      unhealthy(f"step {step}: the parameters' root-mean-square is {rms:.4g}, above "
                f"max_param_rms={health.max_param_rms:g}: the run diverged (is the learning "
                "rate too high?)")
    preempted = any_process(stop_requested())
    if checkpoints:  # Every `every` steps, on preemption, and at the end.
      checkpoints.save(step, state, batches.get_state(),
                       force=preempted or step == num_steps)
    if preempted:
      return state, True
  return state, False
