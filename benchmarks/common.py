"""Timing helpers shared by the benchmarks: medians of repeated, synchronised runs."""

import json
import statistics
import time

import jax


def time_call(fn, *args, repeats: int = 5) -> tuple[float, float]:
  """Seconds of the first call (compile and run) and median seconds of ``repeats`` more."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return first, statistics.median(times)


def report(figures: dict, json_path: str | None) -> None:
  """Prints the figures and writes them as one flat JSON object."""
  for name, value in figures.items():
    print(f"{name:>32}: {value:.4g}" if isinstance(value, float) else f"{name:>32}: {value}")
  if json_path:
    with open(json_path, "w") as f:
      json.dump(figures, f, indent=1)
