"""The play experiment run from the command line as a user launches it."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_play_smoke_prints_payoffs_and_transcripts():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:smoke"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
  assert "player two" in out and "payoff two" in out
  expert = next(line for line in out.splitlines() if line.startswith("expert"))
  assert expert.split()[1:3] == ["1.000", "1.000"]
  assert "one> " in out and "two> " in out


def test_play_smoke_plays_a_card_game_with_private_cards():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:kuhn_poker,smoke"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
  assert "untrained model" in out and "chance> kuhn" in out
  # The equilibrium player two against the heuristic player one: payoffs are chips, zero-sum.
  expert = next(line for line in out.splitlines() if line.startswith("expert")).split()
  assert float(expert[1]) == -float(expert[2])


def test_unknown_variant_is_named():
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:large"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "unknown variant 'large'" in proc.stderr
  assert "kuhn_poker" in proc.stderr  # The registered games are listed.
