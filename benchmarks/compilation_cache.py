"""Wall time of an experiment's run without JAX's persistent compilation cache, with a
fresh one and with the cache the run before it filled.

  python -m benchmarks.compilation_cache [--json PATH] [--repeats N] [--experiment NAME]

Each run is the experiment's smoke variant in a process of its own (as a user launches
it), in a fresh workdir, its dataset built beforehand: ``none`` (``--compilation_cache=``),
``fresh`` (an empty cache: equal stages of the run share their programs) and ``again``
(the cache ``fresh`` filled: a rerun, or a later run of the same stages). The three are
interleaved, ``--repeats`` times; each figure is the median.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(experiment: str, workdir: str, data_dir: str, cache: str) -> float:
  """Seconds of one smoke run of ``experiment`` with ``--compilation_cache=cache``."""
  command = [sys.executable, "-m", f"experiments.{experiment}",
             "--config", os.path.join(ROOT, f"configs/{experiment}.py:smoke"),
             "--workdir", workdir, f"--config.data_dir={data_dir}",
             f"--compilation_cache={cache}"]
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_PERSISTENT_CACHE")}
  start = time.perf_counter()
  done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                        check=False)
  seconds = time.perf_counter() - start
  if done.returncode:
    sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
  return seconds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--json", help="write the figures to this JSON file")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--experiment", default="hallucination")
  args = parser.parse_args()
  seconds = {"none": [], "fresh": [], "again": []}
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = os.path.join(tmp, "data")
    run(args.experiment, os.path.join(tmp, "build"), data_dir, "")  # Builds the dataset.
    for i in range(args.repeats):
      cache = os.path.join(tmp, f"cache{i}")
      for mode, directory in (("none", ""), ("fresh", cache), ("again", cache)):
        workdir = os.path.join(tmp, f"{mode}{i}")
        seconds[mode].append(run(args.experiment, workdir, data_dir, directory))
  figures = {f"{mode}_s": statistics.median(s) for mode, s in seconds.items()}
  figures.update(fresh_over_none=figures["fresh_s"] / figures["none_s"],
                 again_over_none=figures["again_s"] / figures["none_s"],
                 **{f"{mode}_runs_s": s for mode, s in seconds.items()},
                 experiment=args.experiment)
  report(figures, args.json)


if __name__ == "__main__":
  main()
