"""Fixtures shared by the test files: experiments' smoke runs as their users launch them."""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def smoke_env(tmp_path_factory):
  """The environment of an experiment's smoke run in a subprocess: CPU only, compiled
  programs kept in a cache that every smoke run of the session shares (a resumed run
  compiles nothing twice), and less optimisation of the compiled code (a smoke run is
  mostly compilation)."""
  return {**os.environ, "JAX_PLATFORMS": "cpu",
          "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jit_cache")),
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
          "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"}


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


@pytest.fixture(scope="session")
def run_smoke_twice(run_smoke):
  """``run_smoke_twice(name, tmp, stages) -> (workdir, first, second, mtimes, first_seconds,
  second_seconds)``: the smoke variant run twice in one workdir, the second resuming the
  first; ``mtimes`` of each stage's ``stage.json`` after the first run."""

  def run(name, tmp, stages):
    workdir = str(tmp / "work")
    first, first_seconds = run_smoke(name, tmp)
    mtimes = {s: os.path.getmtime(os.path.join(workdir, s, "stage.json")) for s in stages}
    second, second_seconds = run_smoke(name, tmp)
    return workdir, first, second, mtimes, first_seconds, second_seconds

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
