"""Writes RESULTS.md and its plots (results/*.png) from the experiments' runs.

  python -m experiments.report [--workdirs workdirs] [--out .]

Reads ``<workdirs>/<experiment>/summary.json`` of every experiment in ``EXPERIMENTS``;
each experiment module's ``report(summary, save)`` turns its summary into Markdown and
figures. Every number in RESULTS.md comes from a summary: running this again after new
runs regenerates the whole file. An experiment without a summary is listed with the
command that runs it.
"""

import datetime
import importlib
import json
import os

from absl import app, flags
import matplotlib

matplotlib.use("Agg")

EXPERIMENTS = ("pipeline", "chain_of_thought", "in_context", "hallucination", "red_team",
               "twenty_questions", "exploitability", "self_play", "multi_task", "prompting")

WORKDIRS = flags.DEFINE_string("workdirs", "workdirs", "Directory holding one workdir per "
                               "experiment, named after it.")
OUT = flags.DEFINE_string("out", ".", "Where RESULTS.md and results/ are written.")


def section(name: str, workdirs: str, out: str) -> str:
  """The Markdown section of experiment ``name``, its figures saved under ``out/results``."""
  path = os.path.join(workdirs, name, "summary.json")
  title = f"## {name}\n\n"
  if not os.path.exists(path):
    return (f"{title}Not run yet: `python -m experiments.{name} --config configs/{name}.py "
            f"--workdir {workdirs}/{name}`, then `python -m experiments.report`.\n")
  with open(path) as f:
    summary = json.load(f)
  os.makedirs(os.path.join(out, "results"), exist_ok=True)

  def save(figure, stem: str) -> str:
    relative = f"results/{name}_{stem}.png"
    figure.savefig(os.path.join(out, relative), dpi=110, bbox_inches="tight")
    return relative

  when = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
  body = importlib.import_module(f"experiments.{name}").report(summary, save)
  return (f"{title}Produced by `{summary.get('command', '(command not recorded)')}` "
          f"(finished {when:%Y-%m-%d %H:%M} UTC).\n\n{body.strip()}\n")


def results(workdirs: str, out: str) -> str:
  """The whole of RESULTS.md."""
  sections = "\n".join(section(name, workdirs, out) for name in EXPERIMENTS)
  return ("# Results\n\nWritten by `python -m experiments.report` from the runs' "
          "`summary.json` files: edit nothing here by hand. Means ± standard deviations are "
          "over the seeds trained side by side in each run; the claims are those of "
          "`docs/design.md`. Wall times are of 2 shared CPU cores unless a section says "
          f"otherwise.\n\n{sections}")


def main(argv):
  del argv
  text = results(WORKDIRS.value, OUT.value)
  path = os.path.join(OUT.value, "RESULTS.md")
  with open(path, "w") as f:
    f.write(text)
  print(f"wrote {path}")


if __name__ == "__main__":
  app.run(main)
