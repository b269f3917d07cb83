"""Meshes and shardings: where parameters, optimiser state and batches live on devices.

The shell's side of parallelism; the pure core never imports it. A mesh has three axes:
``data`` splits the batch and replicates parameters, ``fsdp`` splits the batch and the
parameters' ``embed`` dimension (the compiler gathers each weight where it is used),
``tensor`` splits attention heads, MLP hidden units and the vocabulary. ``RULES`` maps the
model's logical axis names onto mesh axes; the compiler (GSPMD) inserts the collectives.

  mesh = sharding.make_mesh(data=2, fsdp=4)
  init = lambda key: train.create(model.init(key), tx, jax.random.fold_in(key, 1))
  state, shardings = sharding.create_state(init, key, mesh, model.logical_axes())
  update = sharding.jit_sharded_update(train.imitation_step(model, tx), mesh, shardings,
                               sharding.batch_sharding(mesh))
  state, metrics = update(state, sharding.shard_batch(batch, mesh))
"""

import math
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from twoplayer_jax.train.state import TrainState

AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Logical axis name -> the mesh axes that split it (none: replicated).
RULES = {
    "batch": BATCH_AXES,
    "vocab": ("tensor",),
    "embed": ("fsdp",),
    "heads": ("tensor",),
    "kv_heads": ("tensor",),
    "head_dim": (),
    "mlp": ("tensor",),
}


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices=None) -> Mesh:
  """A ``(data, fsdp, tensor)`` mesh over ``devices`` (default: all of them).

  Args:
    data, fsdp, tensor: the size of each axis; one of them may be -1, for all the devices
      the others leave.
    devices: the devices to lay out; ``jax.devices()`` if None.

  Raises:
    ValueError: if the sizes do not multiply to the number of devices.
  """
  devices = jax.devices() if devices is None else list(devices)
  sizes = dict(zip(AXES, (data, fsdp, tensor)))
  free = [name for name, size in sizes.items() if size == -1]
  if len(free) > 1 or any(size == 0 or size < -1 for size in sizes.values()):
    raise ValueError(f"mesh axes {sizes} must be positive sizes, at most one of them -1")
  if free:
    sizes[free[0]] = len(devices) // math.prod(s for s in sizes.values() if s != -1)
  if math.prod(sizes.values()) != len(devices):
    raise ValueError(f"mesh data={data}, fsdp={fsdp}, tensor={tensor} does not fit the "
                     f"{len(devices)} devices: the sizes must multiply to {len(devices)}")
  # Auto, not Explicit: under Explicit axis types every op must resolve its output
  # sharding from its inputs' types, and the model's embedding lookup (a gather of a
  # vocab x embed sharded table by batch-sharded ids) and its einsums against
  # fsdp-sharded weights would need resharding written into the model. With Auto the
  # model stays sharding-agnostic and GSPMD places the all-gathers and reductions.
  return jax.make_mesh(tuple(sizes.values()), AXES, axis_types=(AxisType.Auto,) * 3,
                       devices=devices)


def _spec(mesh: Mesh, logical: P, shape: tuple[int, ...], rules: dict) -> P:
  """The mesh ``PartitionSpec`` of one array of ``shape`` with ``logical`` axis names."""
  used, dims = set(), []
  for name, size in zip(tuple(logical) + (None,) * (len(shape) - len(logical)), shape):
    if name is not None and name not in rules:
      raise ValueError(f"no sharding rule for logical axis {name!r}; rules: {sorted(rules)}")
    axes = tuple(a for a in rules.get(name, ()) if mesh.shape[a] > 1 and a not in used)
    if not axes or size % math.prod(mesh.shape[a] for a in axes):
      dims.append(None)
      continue
    used.update(axes)
    dims.append(axes[0] if len(axes) == 1 else axes)
  return P(*dims)


def logical_to_sharding(mesh: Mesh, logical_specs: Any, abstract: Any,
                        rules: dict = RULES) -> Any:
  """``NamedSharding``s for a pytree of arrays from their logical axis names.

  A dimension is split over its rule's mesh axes of more than one device. One that those
  axes do not divide (a vocabulary of 260 over tensor=8) stays replicated rather than
  raising: the layout is a performance choice, and every size must still run. A mesh axis
  already used by an earlier dimension of the same array is not reused.

  Args:
    mesh: the mesh.
    logical_specs: pytree of ``PartitionSpec`` of logical names (``model.logical_axes()``).
    abstract: the matching pytree of arrays or ``jax.ShapeDtypeStruct`` (their shapes).
    rules: logical name -> tuple of mesh axes.

  Raises:
    ValueError: for a logical name without a rule.
  """
  return jax.tree.map(lambda spec, x: NamedSharding(mesh, _spec(mesh, spec, x.shape, rules)),
                      logical_specs, abstract, is_leaf=lambda x: isinstance(x, P))


def state_shardings(mesh: Mesh, abstract_state: TrainState, param_shardings: Any
                    ) -> TrainState:
  """Shardings of a whole ``TrainState``.

  Optimiser state leaves that mirror a parameter (Adam's moments: same shape, key path
  ending in the parameter's path) take its sharding; the rest (counts, step, rng) are
  replicated.

  Args:
    mesh: the mesh.
    abstract_state: the state's shapes, e.g. ``jax.eval_shape(init, key)``.
    param_shardings: pytree of ``NamedSharding`` matching ``abstract_state.params``.
  """
  replicated = NamedSharding(mesh, P())
  params = jax.tree.flatten_with_path(abstract_state.params)[0]
  by_path = {tuple(path): (leaf.shape, sharding) for (path, leaf), sharding
             in zip(params, jax.tree.leaves(param_shardings), strict=True)}

  def mirror(path, leaf):
    for start in range(len(path)):
      shape, sharding = by_path.get(tuple(path[start:]), (None, None))
      if shape == leaf.shape:
        return sharding
    return replicated

  return TrainState(param_shardings,
                    jax.tree.map_with_path(mirror, abstract_state.opt_state),
                    replicated, replicated)


def create_state(init: Callable[[jax.Array], TrainState], key: jax.Array, mesh: Mesh,
                 logical_specs: Any, rules: dict = RULES) -> tuple[TrainState, TrainState]:
  """A train state created already sharded, and its shardings.

  Every device computes only its own shards: the full parameters never exist on one
  device. Random initialisers draw the same values whatever the sharding.

  Args:
    init: ``key -> TrainState``, e.g. ``train.create(model.init(key), tx, ...)``.
    key: its PRNG key.
    mesh: the mesh.
    logical_specs: the parameters' logical axis names (``model.logical_axes()``).
    rules: logical name -> tuple of mesh axes.
  """
  abstract = jax.eval_shape(init, key)
  params = logical_to_sharding(mesh, logical_specs, abstract.params, rules)
  shardings = state_shardings(mesh, abstract, params)
  return jax.jit(init, out_shardings=shardings)(key), shardings


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Rows of every batch array split over ``("data", "fsdp")``, the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises unless a global batch of ``batch_size`` rows divides over ``data * fsdp``."""
  ways = math.prod(mesh.shape[a] for a in BATCH_AXES)
  if batch_size < 1 or batch_size % ways:
    raise ValueError(f"a batch of {batch_size} rows must divide over data * fsdp = {ways} "
                     "devices")


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """This process's host batch placed on the mesh as one global batch.

  Args:
    batch: pytree of ``[B, ...]`` arrays, this process's rows (all rows on one host).
    mesh: the mesh.

  Raises:
    ValueError: if the global number of rows does not divide over ``data * fsdp``.
  """
  for path, x in jax.tree.flatten_with_path(batch)[0]:
    try:
      check_batch_size(np.shape(x)[0] * jax.process_count() if np.ndim(x) else 0, mesh)
    except ValueError as e:
      raise ValueError(f"batch entry {jax.tree_util.keystr(path)} of shape "
                       f"{np.shape(x)}: {e}") from None
  sharding = batch_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def jit_sharded_update(update: Callable, mesh: Mesh, state_shardings: TrainState,
               batch_sharding: NamedSharding) -> Callable:
  """``update(state, batch) -> (state, metrics)`` compiled for the mesh: the state keeps
  its shardings and donates its buffers, the metrics come back replicated."""
  return jax.jit(update, in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, NamedSharding(mesh, P())),
                 donate_argnums=0)
