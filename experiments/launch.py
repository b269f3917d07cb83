"""What every experiment's ``main`` shares: flags, multi-host start-up and the workdir.

  python -m experiments.NAME --config configs/NAME.py[:variant] --workdir DIR \\
      [--config.FIELD=VALUE ...] [--coordinator_address HOST:PORT --num_processes N
      --process_id I]

On a TPU VM pod or under SLURM, every host runs the same command and
``jax.distributed.initialize()`` finds its peers by itself; elsewhere the three
multi-host flags (or the JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
environment variables) name them.

What it guarantees under faults: a config is checked before anything is written
(``check_config``), so a mistyped value leaves no workdir behind; ``config.json`` is
written atomically and only when it changes; one run at a time writes into a workdir
(``lock``); a full disk ends the run with one line saying which checkpoint is the last
complete one (``run``).
"""

import contextlib
import errno
import glob
import json
import math
import os
import sys
from typing import Iterator

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags

from twoplayer_jax import files
from twoplayer_jax.data import sources
from twoplayer_jax.train import loop

CONFIG = config_flags.DEFINE_config_file("config", None, "Config module and variant.",
                                         lock_config=True)
WORKDIR = flags.DEFINE_string("workdir", None, "Directory of the run: config, checkpoints, "
                              "metrics. Running again in it resumes.")
COORDINATOR = flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
                                  "host:port of process 0, for a multi-process run.")
NUM_PROCESSES = flags.DEFINE_integer("num_processes", int(os.environ.get("JAX_NUM_PROCESSES", 1)),
                                     "Processes of a multi-process run.")
PROCESS_ID = flags.DEFINE_integer("process_id", int(os.environ.get("JAX_PROCESS_ID", 0)),
                                  "This process's index in a multi-process run.")
COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache",
    os.environ.get("JAX_COMPILATION_CACHE_DIR", os.path.join("~", ".cache", "twoplayer_jax")),
    "Directory of JAX's persistent cache of compiled programs ('' for none): a stage equal "
    "to an earlier one, of this run or another, loads its programs instead of compiling.")


class ConfigError(ValueError):
  """A config or workdir the run cannot start from; the message says which field or file."""


def run(main) -> None:
  """Runs an experiment's ``main`` under absl, ``--config`` and ``--workdir`` required
  (required only then: importing an experiment defines its flags but parses none).

  The config is checked (``check_config``), JAX's persistent compilation cache set to
  ``--compilation_cache`` and the processes of a multi-process run joined
  (``start_processes``) before ``main`` starts. A ``ConfigError`` or
  a workdir in use ends the run with its one line on stderr (status 1). So does a full
  disk (an ``OSError`` ENOSPC anywhere in the exception's chain, or a message saying
  so, as TensorStore words it), at once: the background threads of a save in flight
  would otherwise print pages while the interpreter shuts down.
  """
  flags.mark_flags_as_required(["config", "workdir"])

  def checked_main(argv):
    try:
      check_config(CONFIG.value)
      if COMPILATION_CACHE.value:  # Before anything compiles.
        jax.config.update("jax_compilation_cache_dir",
                          os.path.expanduser(COMPILATION_CACHE.value))
      start_processes()  # Before anything starts JAX's backend.
      return main(argv)
    except (ConfigError, files.WorkdirInUseError) as e:
      sys.exit(f"{type(e).__name__}: {e}")
    except BaseException as e:  # pylint: disable=broad-exception-caught
      if not _out_of_space(e):
        raise
      workdir = WORKDIR.value
      print(f"No space left on device while writing the run in {workdir}; the last complete "
            f"checkpoint is {last_checkpoint(workdir) or 'none'}; free space and run the same "
            "command to resume", file=sys.stderr)
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(1)  # pylint: disable=protected-access

  app.run(checked_main)


def _out_of_space(error: BaseException) -> bool:
  """Whether ``error``, or one it was raised from or during, is a full disk."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if ((isinstance(error, OSError) and error.errno == errno.ENOSPC)
        or "No space left on device" in str(error)):
      return True
    error = error.__cause__ or error.__context__
  return False


def last_checkpoint(workdir: str) -> str | None:
  """The newest complete checkpoint in ``workdir/checkpoints`` or a stage's
  ``workdir/<stage>/checkpoints``, or None. Orbax names a step's directory by its
  number only once the step is complete."""
  steps = [path for pattern in ("checkpoints/*", "*/checkpoints/*")
           for path in glob.glob(os.path.join(glob.escape(workdir), pattern))
           if os.path.basename(path).isdigit() and os.path.isdir(path)]
  return max(steps, key=os.path.getmtime, default=None)


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """``files.lock(workdir)`` taken by process 0 (the others share its workdir): one run
  at a time writes into a workdir. Every process raises ``files.WorkdirInUseError``
  naming the holder when process 0 cannot take it (none waits for the others)."""
  with contextlib.ExitStack() as stack:
    refused = None
    if jax.process_index() == 0:
      try:
        stack.enter_context(files.lock(workdir))
      except files.WorkdirInUseError as e:
        refused = e
    if loop.any_process(refused is not None):
      refused = refused or files.WorkdirInUseError(f"workdir {workdir} is in use (process 0 "
                                                   "could not lock it)")
    if refused:
      raise refused
    yield


def is_smoke() -> bool:
  """Whether the run is a config's ``smoke`` variant (``--config FILE:smoke``)."""
  variant = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")[2]
  return "smoke" in variant.split(",")


_POD_VARIABLES = ("TPU_WORKER_HOSTNAMES", "SLURM_JOB_ID", "MEGASCALE_COORDINATOR_ADDRESS")


def start_processes() -> None:
  """Joins this process to its peers when the run spans several.

  Also quiets the libraries' INFO logs unless ``--verbosity`` asks for them.
  """
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if COORDINATOR.value:
    # CPU collectives across processes go through gloo (other backends ignore this). Set
    # without asking for the backend, which must not start before initialize.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(COORDINATOR.value, NUM_PROCESSES.value, PROCESS_ID.value)
  elif any(v in os.environ for v in _POD_VARIABLES):
    jax.distributed.initialize()
  logging.info("process %d of %d, %d local of %d devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


# Fields a resumed run may change: where and how often it works, not what it computes.
RESUMABLE_CHANGES = ("mesh", "log_every", "sync_every", "checkpoint_every", "keep_checkpoints")


def prepare_workdir(config, workdir: str) -> None:
  """Checks the config, prints it and records it in ``workdir/config.json``.

  A resumed run with the same config leaves ``config.json`` as it is; one that changes
  only fields of ``RESUMABLE_CHANGES`` rewrites it (atomically).

  Raises:
    ConfigError: the config has a bad value (``check_config``); or the workdir holds a
      run of a different config (other than in ``RESUMABLE_CHANGES``), whose resuming
      would mix two runs; or its ``config.json`` cannot be read. Nothing is written then.
  """
  check_config(config)
  resolved = json.loads(config.to_json_best_effort(sort_keys=True))
  path = os.path.join(workdir, "config.json")
  saved = None
  if os.path.exists(path):
    try:
      with open(path) as f:
        saved = json.load(f)
    except ValueError as e:
      raise ConfigError(f"{path} is damaged ({e}); delete it and run again to record this "
                        "config in it (checkpoints and metrics are kept)") from None
    changed = sorted(k for k in _diff(saved, resolved)
                     if k.split(".")[0] not in RESUMABLE_CHANGES)
    if changed:
      raise ConfigError(f"{workdir} holds a run of a different config (fields {changed} "
                        "differ); use another --workdir or the same config to resume")
  if jax.process_index() == 0:
    print(config)
    os.makedirs(workdir, exist_ok=True)
    if saved != resolved:
      files.write_json(path, resolved, indent=1, sort_keys=True)


# Fields that must be positive integers wherever they are in a config (a dict of them
# too, e.g. ``num_examples`` per stage).
POSITIVE_INTEGERS = ("steps", "num_steps", "iterations", "batch_size", "num_seeds",
                     "num_examples", "eval_games", "log_every", "sync_every",
                     "checkpoint_every", "keep_checkpoints", "num_openings", "group_size",
                     "epochs", "minibatches")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks the well-known fields of ``config``, at any depth, before a run starts.

  Positive integers: the fields of ``POSITIVE_INTEGERS`` (a bool is no integer);
  ``warmup_steps`` non-negative; ``learning_rate`` a positive number; each ``mesh``
  size positive or -1 (all the devices left); a ``dataset`` a name the data package
  knows (``sources.names()``).

  Raises:
    ConfigError: naming the first bad field by its path, e.g.
      ``config.sft.batch_size = 0: must be a positive integer``.
  """
  for path, value in _fields(config, "config"):
    if isinstance(value, (tuple, list)):  # Their meaning varies (0 examples can be one).
      continue
    name = path.rsplit(".", 1)[-1]
    parent = path.rsplit(".", 2)[-2]
    integer = isinstance(value, int) and not isinstance(value, bool)
    if name in POSITIVE_INTEGERS or parent == "num_examples":
      problem = None if integer and value > 0 else "must be a positive integer"
    elif name == "warmup_steps":
      problem = None if integer and value >= 0 else "must be a non-negative integer"
    elif name == "learning_rate":
      number = isinstance(value, (int, float)) and not isinstance(value, bool)
      problem = None if number and math.isfinite(value) and value > 0 else (
          "must be a positive number")
    elif parent == "mesh":
      problem = None if integer and (value > 0 or value == -1) else (
          "must be a positive integer, or -1 for all the devices left")
    elif name == "dataset" and isinstance(value, str):
      known = sources.names()
      # The names of its builder's configs, or the builders if it names none.
      near = [n for n in known if n.startswith(value.partition("/")[0] + "/")]
      problem = None if value in known or value in sources.DATASETS else (
          "not a dataset the data package knows; known: "
          + ", ".join(near or [f"{name}/CONFIG" for name in sources.DATASETS]))
    else:
      problem = None
    if problem:
      raise ConfigError(f"{path} = {value!r}: {problem}")


def _fields(config, prefix: str):
  """``(dotted path, value)`` of every value of ``config`` but None, nested dicts walked."""
  for key, value in config.items():
    path = f"{prefix}.{key}"
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      yield from _fields(value, path)
    elif value is not None:
      yield path, value


def _diff(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for key in set(a) | set(b):
      yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
  elif a != b:
    yield prefix.rstrip(".")
