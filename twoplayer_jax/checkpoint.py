"""Checkpoints of a training run: the train state and the data position, by step.

The only module that imports Orbax. A checkpoint at step ``n`` holds the train state
(any pytree of arrays, typed PRNG keys included) and the data iterator's JSON state,
so a resumed run continues exactly where the saved one was::

  ckpt = checkpoint.Checkpoints(workdir, every=100, keep=3)
  restored = ckpt.restore(abstract_state)  # ShapeDtypeStructs with shardings
  if restored is None:                     # a fresh workdir
    state, step = init(), 0
  else:
    state, data_state, step = restored
    it.set_state(data_state)
  for step in range(step + 1, total_steps + 1):
    state = update(state, next(it))
    ckpt.maybe_save(step, state, it.get_state())
  ckpt.close()

(``train.runner`` does this for every stage, and saves the current step on SIGTERM.)

Every process calls every method (Orbax synchronises them); the step directories
must be on a file system all processes share. Each process stores its own data
state, because each reads its own share of the data.

A corrupt or truncated latest checkpoint is an error (``CheckpointError`` naming the
step and its path), never a silent fall back to an older step: resuming from an
older step than the one a run reached is a decision for the person running it, who
can delete the bad step directory (the message says which) and start again.
Orbax notices truncated files but not changed bytes (its zarr chunks carry no
checksum), so each checkpoint also stores a checksum per leaf and one of each
process's data state (its position in the data), checked on restore. A checkpoint
whose shapes differ from the state restored into was written for another model or
optimiser: that is an error too, saying so (no older step of the workdir would do).
Interrupted saves are not a problem: Orbax writes a step into a temporary directory
and renames it when complete, so a save killed midway never counts as a step.
"""

import hashlib
import json
import os
from typing import Any

from etils import epath
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

_STATE = "state"
_DATA = "data"
_CHECKSUMS = "checksums"


def _copy_if_on_cpu(x: Any) -> Any:
  """A copy of a CPU array, for Orbax to write from; other leaves as they are.

  Orbax moves each array to the host before ``save`` returns, but on CPU the host copy
  is a view of the array's buffer, which pins it until the write ends: a donation in
  that time is silently refused (the next step copies instead). A copy of our own
  leaves the caller's buffers free. On accelerators the host copy is a real one.
  """
  if isinstance(x, jax.Array) and all(d.platform == "cpu" for d in x.devices()):
    return x.copy()
  return x


class CheckpointError(ValueError):
  """A checkpoint in the workdir could not be restored."""


def _restore_target(leaf: Any) -> jax.ShapeDtypeStruct:
  # Orbax restores a leaf without a sharding as a NumPy array, not onto a device.
  sharding = getattr(leaf, "sharding", None)
  if sharding is None:
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)


@jax.jit
def _leaf_checksum(x: jax.Array) -> jax.Array:
  # A wrapping sum of the leaf's bits as uint32: any single flipped bit changes it.
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  x = jnp.asarray(x)
  if x.dtype == jnp.bool_:
    bits = x.astype(jnp.uint32)
  else:
    bits = jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{min(x.dtype.itemsize, 4) * 8}"))
  return jnp.sum(bits.astype(jnp.uint32), dtype=jnp.uint32)


def _data_checksum(data_state: dict[str, Any]) -> str:
  """sha256 of ``data_state`` as canonical JSON (what a JSON round trip keeps)."""
  return hashlib.sha256(json.dumps(data_state, sort_keys=True).encode()).hexdigest()


def _data_checksums(data_state: dict[str, Any]) -> dict[str, str]:
  """``{"data/<process's file>": checksum}`` of every process's data state (every
  process must call this: the checksums travel to all of them)."""
  digest = np.frombuffer(bytes.fromhex(_data_checksum(data_state)), np.uint8)
  if jax.process_count() > 1:
    digests = np.asarray(multihost_utils.process_allgather(digest))
  else:
    digests = digest[None]
  return {f"{_DATA}/{_data_file(i)}": d.tobytes().hex() for i, d in enumerate(digests)}


def _data_file(process: int) -> str:
  return f"process_{process}-of-{jax.process_count()}.json"


def _name(path: tuple) -> str:
  """A pytree path as Orbax names it in a checkpoint's metadata: ``opt_state.1.0.mu``."""
  return ".".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))))
                  for k in path)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  """``{name: shape}`` of a state's leaves, a PRNG key as its key data."""
  def shape(leaf):
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      return tuple(jax.eval_shape(jax.random.key_data, leaf).shape)
    return tuple(leaf.shape)
  return {_name(p): shape(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _checksums(state: Any) -> dict[str, int]:
  """``{leaf path: checksum}`` of a pytree of arrays; waits for the state."""
  paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(state)[0])
  # One computation per leaf, since leaves may live on different devices.
  sums = jax.device_get([_leaf_checksum(x) for x in leaves])
  return {jax.tree_util.keystr(path): int(c) for path, c in zip(paths, sums)}


class Checkpoints:
  """The checkpoints of one run, in ``workdir/checkpoints/<step>``.

  Args:
    workdir: the run's directory, created if missing.
    every: ``maybe_save`` saves at the multiples of this many steps.
    keep: how many of the latest checkpoints to keep; older ones are deleted.
    async_save: whether saves write in the background. The state's arrays are
      copied before ``save`` returns, so the caller may donate them to the next step.
  """

  def __init__(self, workdir: str | epath.PathLike, every: int, keep: int,
               async_save: bool = True):
    if every < 1 or keep < 1:
      raise ValueError(f"every={every} and keep={keep} must both be at least 1")
    self.every = every
    # Orbax needs an absolute path; a relative workdir is taken from the current directory.
    self.directory = epath.Path(os.path.abspath(os.fspath(workdir))) / "checkpoints"
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    registry.add(_STATE, ocp.args.StandardSave, ocp.handlers.StandardCheckpointHandler())
    registry.add(_STATE, ocp.args.StandardRestore, ocp.handlers.StandardCheckpointHandler())
    # One data file per process, written by every process (not only the primary).
    self._data_file = _data_file(jax.process_index())
    data = ocp.handlers.JsonCheckpointHandler(
        self._data_file,
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=None))
    registry.add(_DATA, ocp.args.JsonSave, data)
    registry.add(_DATA, ocp.args.JsonRestore, data)
    registry.add(_CHECKSUMS, ocp.args.JsonSave, ocp.handlers.JsonCheckpointHandler)
    registry.add(_CHECKSUMS, ocp.args.JsonRestore, ocp.handlers.JsonCheckpointHandler)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            # Orbax's default also saves the first step of a fresh run; this saves
            # only every `every` steps, and at a step JAX's multi-host preemption
            # notice agreed on (when jax.distributed is set up for it).
            save_decision_policy=policies.AnySavePolicy([
                policies.FixedIntervalPolicy(every),
                policies.PreemptionCheckpointingPolicy()]),
            max_to_keep=keep, create=True, enable_async_checkpointing=async_save),
        handler_registry=registry)

  def steps(self) -> list[int]:
    """The steps with a complete checkpoint, oldest first."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    """The newest checkpointed step, or None when there is none."""
    return self._manager.latest_step()

  def maybe_save(self, step: int, state: Any, data_state: dict[str, Any]) -> bool:
    """Saves at the steps ``every`` divides; returns whether it saved."""
    return self.save(step, state, data_state, force=False)

  def save(self, step: int, state: Any, data_state: dict[str, Any],
           force: bool = True) -> bool:
    """Saves ``state`` and ``data_state`` as step ``step``.

    Args:
      step: the number of updates that made ``state``.
      state: pytree of arrays, e.g. a ``train.TrainState``.
      data_state: the data iterator's ``get_state()``, JSON-serializable.
      force: save even between the ``every`` steps (e.g. on preemption).

    Returns:
      Whether a checkpoint was started; False when not due, or when ``step`` is not
      newer than the latest checkpoint.
    """
    latest = self._manager.latest_step()
    if latest is not None and step <= latest:
      return False
    checksums = {**_checksums(state), **_data_checksums(data_state)}
    state = jax.tree.map(_copy_if_on_cpu, state)
    return self._manager.save(
        step, force=force,
        args=ocp.args.Composite(**{_STATE: ocp.args.StandardSave(state),
                                   _DATA: ocp.args.JsonSave(data_state),
                                   _CHECKSUMS: ocp.args.JsonSave(checksums)}))

  def restore(self, target: Any, with_data: bool = True
              ) -> tuple[Any, dict[str, Any] | None, int] | None:
    """The latest checkpoint, placed as ``target`` says.

    Args:
      target: a pytree shaped like the saved state, of ``jax.ShapeDtypeStruct`` (e.g.
        from ``jax.eval_shape``) or arrays. Each leaf's ``sharding`` says where its
        restored array lives, so a state saved on one mesh restores onto another;
        a leaf without one goes to the first local device.
      with_data: also restore this process's data state; False to read the state of
        a run made by another number of processes (its data state is then None).

    Returns:
      ``(state, data_state, step)``, or None when the workdir holds no checkpoint.

    Raises:
      CheckpointError: the latest checkpoint is corrupt or truncated (its state, or
        this process's data position), or does not match ``target`` (a checkpoint of
        another model or optimiser).
    """
    self._manager.wait_until_finished()
    step = self._manager.latest_step()
    if step is None:
      return None
    path = self.directory / str(step)
    mismatch = self._mismatch(step, target)
    if mismatch:
      raise CheckpointError(
          f"the checkpoints in {self.directory} were written for a different model or "
          f"optimiser ({mismatch}); resume them with the config that wrote them, or use "
          "another --workdir for this one")
    older = [s for s in self.steps() if s < step]
    remedy = (f"To resume from the step before ({older[-1] if older else 'none left'}), "
              f"delete {path}.")
    try:
      parts = {_STATE: ocp.args.StandardRestore(jax.tree.map(_restore_target, target)),
               _CHECKSUMS: ocp.args.JsonRestore()}
      if with_data:
        parts[_DATA] = ocp.args.JsonRestore()
      restored = self._manager.restore(step, args=ocp.args.Composite(**parts))
    except Exception as e:  # pylint: disable=broad-exception-caught
      # Orbax and TensorStore report damage as ValueError, OSError, KeyError or a
      # bare Exception, depending on the file. TensorStore's messages run to pages:
      # the first line goes in the message, the whole one stays in __cause__.
      cause = (str(e).splitlines() or [""])[0].split(" See full TensorStore")[0][:300]
      raise CheckpointError(
          f"cannot restore the checkpoint of step {step} at {path}: it is corrupt or "
          f"truncated ({type(e).__name__}: {cause}). {remedy}") from e
    found = _checksums(restored[_STATE])
    saved = restored[_CHECKSUMS]
    bad = [k for k, c in saved.items() if not k.startswith(f"{_DATA}/") and found.get(k) != c]
    if bad:
      raise CheckpointError(f"the checkpoint of step {step} at {path} is corrupt: the "
                            f"checksum of state{bad[0]} does not match. {remedy}")
    data_file = f"{_DATA}/{self._data_file}"
    want = saved.get(data_file)  # None in checkpoints saved before data checksums.
    if with_data and want is not None and want != _data_checksum(restored[_DATA]):
      raise CheckpointError(f"the checkpoint of step {step} at {path} is corrupt: its data "
                            f"position {path / data_file} does not match its checksum. {remedy}")
    return restored[_STATE], restored[_DATA] if with_data else None, step

  def _mismatch(self, step: int, target: Any) -> str | None:
    """How the checkpoint of ``step`` differs in shape from ``target``, if it does;
    None also when its metadata cannot be read (restoring then names the damage)."""
    try:
      saved = _shapes(self._manager.item_metadata(step)[_STATE])
    except Exception:  # pylint: disable=broad-exception-caught
      return None
    if not saved:
      return None
    wanted = _shapes(target)
    # The parameters first: they name the model.
    for name in sorted(set(saved) | set(wanted), key=lambda n: (not n.startswith("params"), n)):
      if name not in saved:
        return f"state.{name} is not in them"
      if name not in wanted:
        return f"they hold state.{name}, which this state does not"
      if saved[name] != wanted[name]:
        return f"state.{name} has shape {saved[name]} there and {wanted[name]} here"
    return None

  def wait(self) -> None:
    """Blocks until every started save is on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for the saves in flight and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()


def read_params(workdir: str, step: int | None = None) -> tuple[Any, int]:
  """The parameters (the state's ``params``) of a run's checkpoint, as host arrays, with
  no target to restore into: e.g. to export a trained stage's model (``[S, ...]`` for a
  runner's stage, one per seed).

  Args:
    workdir: the run's directory (e.g. a stage's, ``workdirs/pipeline/sft``).
    step: the checkpoint's step; None for the latest.

  Returns:
    ``(params, step)``.

  Raises:
    CheckpointError: no such checkpoint, or its parameters fail their checksums.
  """
  directory = epath.Path(os.path.abspath(os.fspath(workdir))) / "checkpoints"
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  registry.add(_STATE, ocp.args.StandardRestore, ocp.handlers.StandardCheckpointHandler())
  registry.add(_CHECKSUMS, ocp.args.JsonRestore, ocp.handlers.JsonCheckpointHandler)
  with ocp.CheckpointManager(directory, handler_registry=registry,
                             options=ocp.CheckpointManagerOptions(create=False)) as manager:
    step = manager.latest_step() if step is None else step
    if step is None or step not in manager.all_steps():
      raise CheckpointError(f"{directory} holds no checkpoint of step {step} (it holds "
                            f"{sorted(manager.all_steps())})")
    restored = manager.restore(step, args=ocp.args.Composite(**{
        _STATE: ocp.args.StandardRestore(), _CHECKSUMS: ocp.args.JsonRestore()}))
  params = restored[_STATE]["params"]
  found = {".params" + k: c for k, c in _checksums(params).items()}
  bad = [k for k, c in found.items() if restored[_CHECKSUMS].get(k) != c]
  if bad:
    raise CheckpointError(f"the checkpoint of step {step} in {directory} is corrupt: the "
                          f"checksum of state{bad[0]} does not match")
  return jax.device_get(params), step
