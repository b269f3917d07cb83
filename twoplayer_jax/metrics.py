"""Metrics of a training run: JSONL, TensorBoard event files and a console progress bar.

Every process makes a ``MetricsWriter`` and calls ``write`` at every step with the
step's scalars (still on device); only process 0 (``active``) writes, and only every
``every`` steps, when it fetches the scalars. Each row gets wall-clock seconds, steps
per second and, given token counts, tokens per second::

  writer = metrics.MetricsWriter(workdir, every=10, active=jax.process_index() == 0,
                                 total_steps=1000, start_step=restored_step)
  for step in range(restored_step + 1, 1001):
    state, scalars = update(state, batch)
    writer.write(step, scalars, tokens=batch_tokens)   # raises on a NaN loss
    ckpt.maybe_save(step, state, data_state)
  writer.close()

``workdir/metrics.jsonl`` holds one JSON object per written step; the event files in
``workdir`` are read by ``tensorboard --logdir workdir`` (tensorboardX writes them, so
TensorFlow is not needed).

A NaN or inf in a checked key (``loss`` by default) raises ``FloatingPointError``
naming the step and key, on every process, before anything is written for that step:
the files hold only finite steps. Writing before saving a checkpoint, with a
checkpoint interval that is a multiple of ``every``, means no checkpoint holds a
state whose loss was checked and found not finite; the last good one stays.

A resumed run passes the restored step as ``start_step``: rows of later steps, which
the interrupted run wrote after its last checkpoint, are dropped from the JSONL and
hidden in TensorBoard (its ``purge_step``), so each step appears once. The JSONL is
only ever appended to and cut short: dropping rows truncates the file in place at the
first row after ``start_step`` (or a last line torn by a crash mid-write), so the rows
before it are never rewritten and the file is never replaced.
"""

import json
import math
import os
import time
from typing import Any, Mapping

import jax
import tensorboardX
import tqdm

_ADDED = ("step", "time", "elapsed_s", "steps_per_s", "tokens_per_s")


class MetricsWriter:
  """Writes a flat dict of scalars every ``every`` steps.

  Args:
    workdir: the run's directory, created if missing.
    every: write the steps this divides (and those ``write`` is told to force).
    active: whether this process writes: ``jax.process_index() == 0``.
    total_steps: the last step, for the progress bar's ETA; None shows no ETA.
    start_step: the step the run starts after (0, or the restored checkpoint's).
    progress: whether to show a progress bar on the console (stderr).
    progress_keys: scalars the progress bar shows next to rate and ETA.
    finite_keys: scalars that must be finite.
    name: what the progress bar says it counts (e.g. the stage).
  """

  def __init__(self, workdir: str | os.PathLike, every: int = 1, active: bool = True,
               total_steps: int | None = None, start_step: int = 0, progress: bool = True,
               progress_keys: tuple[str, ...] = ("loss",),
               finite_keys: tuple[str, ...] = ("loss",), name: str | None = None):
    if every < 1:
      raise ValueError(f"every={every} must be at least 1")
    self.every = every
    self.active = active
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._progress_keys = progress_keys
    self._finite_keys = finite_keys
    self._start = self._last_time = time.time()
    self._last_step = start_step
    self._tokens = 0
    self._jsonl = self._events = self._bar = None
    self.last: dict[str, float] = {}  # The last row written.
    if not active:
      return
    os.makedirs(workdir, exist_ok=True)
    if os.path.exists(self.path):  # Rows of an interrupted run after its last checkpoint.
      _truncate_after(self.path, start_step)
    self._jsonl = open(self.path, "a", encoding="utf-8")
    # tensorboardX names its file by the second and the host, and opens it with "wb": a
    # suffix of nanoseconds keeps a writer started in the same second from replacing the
    # file, and sorts the files in the order they were started, as TensorBoard reads them.
    self._events = tensorboardX.SummaryWriter(
        os.fspath(workdir), purge_step=start_step + 1, filename_suffix=f".{time.time_ns()}")
    self._bar = tqdm.tqdm(total=total_steps, initial=start_step, unit="step", desc=name,
                          dynamic_ncols=True, disable=not progress)

  def write(self, step: int, scalars: Mapping[str, Any], tokens: Any = None,
            force: bool = False) -> dict[str, float] | None:
    """Takes step ``step``'s scalars; writes them if the step is due.

    Args:
      step: the number of updates made, counting from the start of training.
      scalars: name to a scalar (Python number, NumPy or ``jax.Array``); fetched
        from the device only on the steps written.
      tokens: tokens this step trained on (a number or scalar array), for tokens/s.
      force: write even if ``every`` does not divide ``step`` (e.g. the last step).

    Returns:
      The row written, with ``step``, ``time`` (Unix seconds), ``elapsed_s`` (since
      this writer started), ``steps_per_s`` and ``tokens_per_s`` (since the last row);
      None on steps not written and on inactive processes.

    Raises:
      FloatingPointError: a checked scalar is NaN or inf; nothing is written.
    """
    if tokens is not None:
      self._tokens = self._tokens + tokens
    if self._bar is not None:
      self._bar.update(step - self._bar.n)
    if not force and step % self.every:
      return None
    values = {k: float(v) for k, v in jax.device_get(dict(scalars)).items()}
    for key in self._finite_keys:
      if key in values and not math.isfinite(values[key]):
        raise FloatingPointError(f"step {step}: {key} is {values[key]}; stopping. Nothing "
                                 f"was written for step {step}; the step's scalars: {values}")
    clash = set(values) & set(_ADDED)
    if clash:
      raise ValueError(f"scalars {sorted(clash)} clash with the names the writer adds")
    now = time.time()
    seconds = max(now - self._last_time, 1e-9)
    row = {"step": step, "time": now, "elapsed_s": now - self._start,
           "steps_per_s": (step - self._last_step) / seconds, **values}
    if tokens is not None:
      row["tokens_per_s"] = float(self._tokens) / seconds
    self._last_time, self._last_step, self._tokens = now, step, 0
    self.last = row
    if not self.active:
      return None
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    for key, value in row.items():
      if key not in ("step", "time"):
        self._events.add_scalar(key, value, global_step=step, walltime=now)
    self._events.flush()
    self._bar.set_postfix({k: f"{row[k]:.4g}" for k in self._progress_keys if k in row})
    return row

  def close(self) -> None:
    """Flushes and closes the files and the progress bar."""
    if not self.active:
      return
    self._jsonl.close()
    self._events.close()
    self._bar.close()


def _truncate_after(path: str, step: int) -> None:
  """Cuts ``path`` short, in place, before its first row of a step after ``step`` or
  its first line that is not a whole row (torn by a crash mid-write)."""
  with open(path, "r+b") as f:
    offset = 0
    for line in f:
      try:
        whole = line.endswith(b"\n") and json.loads(line)["step"] <= step
      except (ValueError, KeyError, TypeError):
        whole = False
      if not whole:
        f.truncate(offset)
        return
      offset += len(line)
