"""Fixtures shared by the test files."""

import os

import pytest


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
