"""Fixtures shared by the test files: experiments' smoke runs as their users launch them."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Settings for every JAX process of the session: this one, pytest-xdist's workers and the
# subprocesses they launch, all of which inherit this environment. The tests are mostly
# compilation, so XLA compiles faster at some cost in the compiled code's speed: LLVM does
# not optimise, and fusions are emitted by the older emitters rather than the MLIR ones
# (a fifth less time for an experiment's smoke test; a later jaxlib may drop the flag, and
# XLA then stops at "Unknown flags in XLA_FLAGS": delete it here). And compiled programs
# go to one persistent cache, fresh for each session (compiled once, then read by every
# process). This runs when pytest loads this file, before any test module imports jax (no
# plugin of the session imports it). The process that starts the session, pytest-xdist's
# controller or a plain pytest, makes the cache; its workers (PYTEST_XDIST_WORKER) inherit
# it. A flag already in XLA_FLAGS is left as it is.
for _flag, _value in (("--xla_backend_optimization_level", "0"),
                      ("--xla_cpu_use_fusion_emitters", "false")):
  if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}={_value}".strip()
if "PYTEST_XDIST_WORKER" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="twoplayer_jax-jit-cache-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE

  def pytest_unconfigure(config):
    del config
    shutil.rmtree(_CACHE, ignore_errors=True)


# How `make test` (`pytest -n 2 --dist loadgroup`) shares the tests out over the two workers.
# The modules below share a slow module-scoped fixture over their tests (an experiment's smoke
# run, runs in subprocesses on 8 devices); slowest first. Each runs whole on one worker, so
# that its fixture runs once, and they start first, slowest first, so that neither worker is
# left with one of them at the end while the other idles; the other tests follow one at a
# time in collection order. A module with such a fixture belongs in this list.
# (pytest-xdist's own loadgroup would do the grouping from xdist_group marks, but with pytest
# 9.2 it silently ignores them: pytest-dev/pytest-xdist#1386.)
SLOW_MODULES = ("test_exp_self_play.py", "test_exp_exploitability.py", "test_exp_pipeline.py",
                "test_rl_sharding.py", "test_exp_red_team.py", "test_launcher.py",
                "test_exp_twenty_questions.py", "test_exp_hallucination.py",
                "test_exp_in_context.py", "test_exp_chain_of_thought.py", "test_sharding.py",
                "test_exp_multi_task.py", "test_exp_prompting.py")


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # Before pytest-xdist's own.
def pytest_xdist_make_scheduler(config, log):
  """In pytest-xdist's controller: the scheduler of `--dist loadgroup`, with a scope (a unit
  that one worker runs) for each of SLOW_MODULES."""
  if config.getvalue("dist") != "loadgroup":
    return None
  from xdist.scheduler import LoadGroupScheduling  # pylint: disable=import-outside-toplevel

  class Scheduler(LoadGroupScheduling):

    def _split_scope(self, nodeid):
      module = nodeid.split("::", 1)[0]
      return module if os.path.basename(module) in SLOW_MODULES else super()._split_scope(nodeid)

  config.option.loadscopereorder = False  # Units in collection order, not largest first.
  return Scheduler(config, log)


@pytest.hookimpl(tryfirst=True)  # Before `-m` deselects by the marks set here.
def pytest_collection_modifyitems(config, items):
  """Marks ``subprocess`` every test that runs an experiment's smoke variant (through the
  ``smoke_env`` fixture), besides those marked by hand. In each worker of `--dist
  loadgroup`: SLOW_MODULES first, in their order (the workers' collection order is the
  order the scheduler hands the units out in)."""
  for item in items:
    if "smoke_env" in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.subprocess)
  if getattr(config.option, "loadgroup", False):  # Set in pytest-xdist's workers.
    rank = {name: i for i, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # Stable.


@pytest.fixture(scope="session")
def smoke_env():
  """The environment of an experiment's smoke run in a subprocess: CPU only, with the
  session's compilation settings above, every compiled program kept in the cache (a
  resumed run compiles nothing twice)."""
  return {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


@pytest.fixture(scope="session")
def run_smoke(smoke_env):
  """``run_smoke(name, tmp) -> (summary, seconds)``: ``python -m experiments.<name>
  --config configs/<name>.py:smoke`` in workdir ``tmp/work`` with its datasets in
  ``tmp/data``; a failed run's error ends with the tail of its stderr."""

  def run(name, tmp):
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", "--config", f"configs/{name}.py:smoke",
         "--workdir", str(tmp / "work"), f"--config.data_dir={tmp / 'data'}"],
        cwd=ROOT, env=smoke_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name} smoke run failed:\n{proc.stderr[-3000:]}"
    with open(tmp / "work" / "summary.json") as f:
      return json.load(f), time.perf_counter() - start

  return run


def stage_files(workdir: str, stage: str) -> dict:
  """What a run that trains ``stage`` changes: its ``stage.json``'s mtime, its metrics'
  bytes and its checkpoints' steps."""
  with open(os.path.join(workdir, stage, "metrics.jsonl"), "rb") as f:
    return {"stage.json": os.path.getmtime(os.path.join(workdir, stage, "stage.json")),
            "metrics": f.read(),
            "checkpoints": sorted(os.listdir(os.path.join(workdir, stage, "checkpoints")))}


@pytest.fixture(scope="session")
def run_smoke_twice(run_smoke):
  """``run_smoke_twice(name, tmp, stages) -> (workdir, first, second, files_first,
  files_second)``: the smoke variant run twice in one workdir, the second resuming the
  first; ``stage_files`` of each of ``stages`` after each run."""

  def run(name, tmp, stages):
    workdir = str(tmp / "work")
    first, _ = run_smoke(name, tmp)
    files_first = {s: stage_files(workdir, s) for s in stages}
    second, _ = run_smoke(name, tmp)
    return workdir, first, second, files_first, {s: stage_files(workdir, s) for s in stages}

  return run


@pytest.fixture
def save_figure(tmp_path):
  """An experiment report's ``save(figure, stem)``: writes ``tmp_path/<stem>.png`` and
  returns its name."""

  def save(figure, stem):
    path = tmp_path / f"{stem}.png"
    figure.savefig(path)
    return path.name

  return save
