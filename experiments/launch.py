"""What every experiment's ``main`` shares: flags, multi-host start-up and the workdir.

  python -m experiments.NAME --config configs/NAME.py[:variant] --workdir DIR \\
      [--config.FIELD=VALUE ...] [--coordinator_address HOST:PORT --num_processes N
      --process_id I]

On a TPU VM pod or under SLURM, every host runs the same command and
``jax.distributed.initialize()`` finds its peers by itself; elsewhere the three
multi-host flags (or the JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
environment variables) name them.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from twoplayer_jax import files

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


def run(main) -> None:
  """Runs an experiment's ``main`` under absl, ``--config`` and ``--workdir`` required
  (required only then: importing an experiment defines its flags but parses none)."""
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)


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
  """Prints the resolved config and records it in ``workdir/config.json``.

  Raises:
    ValueError: the workdir holds a run of a different config (other than in
      ``RESUMABLE_CHANGES``): resuming it would mix two runs. Nothing is written then.
  """
  resolved = json.loads(config.to_json_best_effort(sort_keys=True))
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    changed = sorted(k for k in _diff(saved, resolved)
                     if k.split(".")[0] not in RESUMABLE_CHANGES)
    if changed:
      raise ValueError(f"{workdir} holds a run of a different config (fields {changed} "
                       "differ); use another --workdir or the same config to resume")
  if jax.process_index() == 0:
    print(config)
    os.makedirs(workdir, exist_ok=True)
    files.write_json(path, resolved, indent=1, sort_keys=True)


def _diff(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for key in set(a) | set(b):
      yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
  elif a != b:
    yield prefix.rstrip(".")
