"""play() against Hugging Face ``generate`` on the same models, timed in one command.

  python -m benchmarks.versus_hf [--python PATH] [--device cpu|cuda] [--rounds N]
      [--repeats N] [--only small_b64,large_b64] [--threads N] [--json PATH]

Alternates ``--rounds`` rounds: this library's play figures (``benchmarks.rollout``'s
``bench_play``: the 6-digit arithmetic game, 16-token openings, 16 tokens of play, sampling)
then the reference, ``benchmarks/reference/hf_generate.py`` (the same models in
transformers, 16-token prompts, 16 sampled new tokens), run as a subprocess with the
reference venv's python (default ``.venv-ref/bin/python``; see its ``requirements.txt``).
Each side's figure in a round is a median of ``--repeats`` timed calls; a ratio is the
median over rounds of play's tokens/s over the median over rounds of the reference's,
and each round's ratio is kept as well. ``--device cpu`` keeps JAX on the CPU too;
with ``cuda``, JAX uses the GPU by itself.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "reference" / "hf_generate.py"
DEFAULT_PYTHON = Path(__file__).resolve().parent.parent / ".venv-ref" / "bin" / "python"
# Figure: (model, batch, ratio's name); the model names rollout's SMALL or LARGE.
FIGURES = {"small_b1": ("SMALL", 1, "play_vs_hf_b1"),
           "small_b64": ("SMALL", 64, "play_vs_hf_b64"),
           "small_b512": ("SMALL", 512, "play_vs_hf_b512"),
           "large_b64": ("LARGE", 64, "play_vs_hf_large_b64")}


def versus_parser(doc: str, figures) -> argparse.ArgumentParser:
  """The options of a side-by-side benchmark (``parse_versus`` reads them): the
  reference's python and threads, rounds, repeats, which of ``figures``, the JSON file."""
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("--python", default=str(DEFAULT_PYTHON) if DEFAULT_PYTHON.exists() else None,
                      help="the reference venv's python (default .venv-ref/bin/python)")
  parser.add_argument("--threads", type=int, help="the reference's torch threads")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--only", help=f"comma-separated figures among {', '.join(figures)}")
  parser.add_argument("--json", help="write the figures to this JSON file")
  return parser


def parse_versus(parser: argparse.ArgumentParser, figures):
  """``parser``'s arguments, ``only`` a list of ``figures``' names."""
  args = parser.parse_args()
  args.only = args.only.split(",") if args.only else list(figures)
  unknown = set(args.only) - set(figures)
  if unknown:
    parser.error(f"unknown figures {sorted(unknown)}; choose among {list(figures)}")
  if not args.python:
    parser.error("no reference python: make .venv-ref (benchmarks/reference/requirements.txt) "
                 "or pass --python")
  return args


def parse_args():
  parser = versus_parser(__doc__, FIGURES)
  parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
  return parse_versus(parser, FIGURES)


def run_reference(args, script: Path, *options: str) -> dict:
  """The figures of the reference ``script`` run by ``args.python`` with ``options`` (and
  ``args.threads``), read from the JSON file it writes; exits with its output if it fails."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "reference.json")
    command = [args.python, str(script), *options, "--json", out]
    if args.threads:
      command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
      sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    with open(out) as f:
      return json.load(f)


def compare(figures: dict, ratio: str, ours_name: str, theirs_name: str, ours: list[float],
            theirs: list[float]) -> None:
  """Adds to ``figures`` the ratio of the medians over rounds of ``ours`` and ``theirs``
  (one throughput a round), both medians, and each round's figures and ratio."""
  mine, reference = statistics.median(ours), statistics.median(theirs)
  figures[ratio] = mine / reference
  figures[ours_name] = mine
  figures[theirs_name] = reference
  figures[f"{ours_name}_rounds"] = [round(x, 1) for x in ours]
  figures[f"{theirs_name}_rounds"] = [round(x, 1) for x in theirs]
  figures[f"{ratio}_rounds"] = [round(a / b, 3) for a, b in zip(ours, theirs)]


def main():
  args = parse_args()
  if args.device == "cpu":  # Before JAX is imported: the same device as the reference's.
    os.environ["JAX_PLATFORMS"] = "cpu"
  import jax  # pylint: disable=import-outside-toplevel
  from benchmarks import common, rollout  # pylint: disable=import-outside-toplevel

  ours = {key: [] for key in args.only}
  theirs = {key: [] for key in args.only}
  reference = {}
  t0 = time.perf_counter()
  for _ in range(args.rounds):
    for key in args.only:
      model, batch, _ = FIGURES[key]
      ours[key].append(
          rollout.bench_play(getattr(rollout, model), batch, args.repeats)["tokens_per_s"])
    reference = run_reference(args, REFERENCE, "--device", args.device, "--repeats",
                              str(args.repeats), "--only", ",".join(args.only))
    for key in args.only:
      theirs[key].append(reference[f"hf_{key}_tokens_per_s"])

  figures = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
             "reference_device": reference["device"], "torch": reference["torch"],
             "transformers": reference["transformers"],
             "torch_threads": reference["torch_threads"], "rounds": args.rounds,
             "repeats": args.repeats}
  for key in args.only:
    compare(figures, FIGURES[key][2], f"play_{key}_tokens_per_s", f"hf_{key}_tokens_per_s",
            ours[key], theirs[key])
  figures["wall_s"] = time.perf_counter() - t0
  common.report(figures, args.json)


if __name__ == "__main__":
  main()
