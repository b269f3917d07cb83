"""Every experiment's smoke variant runs from the command line, as a user launches it."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_play_smoke_prints_payoffs_and_transcripts():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:smoke"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
  assert "player two" in out and "payoff two" in out
  expert = next(line for line in out.splitlines() if line.startswith("expert"))
  assert expert.split()[1:3] == ["1.000", "1.000"]
  assert "one> " in out and "two> " in out


def test_unknown_variant_is_named():
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:large"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "unknown variant 'large'" in proc.stderr
