"""The multi-task experiment (claim 8): its smoke run as launched and reported, its
checks, and the verdict on synthetic summaries.

Resuming (finished stages reused) is ``train.runner``'s, tested through the pipeline.
"""

import matplotlib
import numpy as np
import pytest

from configs import multi_task as config_lib
from experiments import common, multi_task

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("multi_task", tmp_path_factory.mktemp("multi_task"))[0]


def test_summary_has_each_game_per_size_with_paired_policies(summary):
  c = config_lib.get_config("smoke")
  assert list(summary["games"]) == list(c.games) and summary["sizes"] == ["small"]
  for g in summary["games"].values():
    assert g["expert"] == 1.0  # Arithmetic's and in_context's experts are always right.
    s = g["sizes"]["small"]
    for who in ("specialist", "generalist"):
      assert len(s[who]["seeds"]) == c.num_seeds and all(0 <= x <= 1 for x in s[who]["seeds"])
    d = s["difference"]
    assert d["mean"] == pytest.approx(s["generalist"]["mean"] - s["specialist"]["mean"])
    assert d["low"] <= d["mean"] <= d["high"]
  policies = summary["policies"]
  assert set(policies) == {"specialist_arithmetic_small", "specialist_in_context_small",
                           "generalist_small"}
  # Equal games of each game: the generalist takes as many steps as the specialists together.
  steps = lambda p: p["tokens"] // (c.batch_size * p["seq_len"])
  assert all(p["tokens"] > 0 and p["seconds"] > 0 for p in policies.values())
  assert steps(policies["generalist_small"]) == 2 * steps(policies["specialist_arithmetic_small"])
  assert summary["verdict"]["outcome"] in ("confirmed", "not confirmed",
                                           "inconclusive: not learned")


def test_report_writes_table_rule_and_plot(summary, tmp_path, save_figure):
  markdown = multi_task.report(summary, save_figure)
  assert "| arithmetic | small |" in markdown and summary["rule"] in markdown
  assert "Claim 8 by this rule: **" in markdown
  assert "](payoff.png)" in markdown and (tmp_path / "payoff.png").stat().st_size > 1000


def test_checks_and_size_order():
  c = config_lib.get_config()
  multi_task.check(c)
  assert multi_task.ordered_sizes(c) == ["small", "base"]
  c.sizes.base.max_length = 20
  with pytest.raises(ValueError, match="shorter than the mixture's longest game"):
    multi_task.check(c)
  c = config_lib.get_config()
  c.games = {"arithmetic": {}}
  with pytest.raises(ValueError, match="two games or more"):
    multi_task.check(c)
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("large")


def _summary(differences, specialist=0.8):
  """Claim 8's inputs: per game, the generalist's and specialist's payoffs per seed at
  one size (the specialist's mean ``specialist[game]`` or 0.8; the expert's 1)."""
  games = {}
  for name, shift in differences.items():
    spec = np.array([-0.01, 0.0, 0.01]) + (specialist.get(name, 0.8)
                                           if isinstance(specialist, dict) else specialist)
    gen = spec + shift + np.array([0.02, -0.01, 0.0])
    games[name] = {"expert": 1.0, "sizes": {"base": {
        "specialist": common.interval(spec), "generalist": common.interval(gen),
        "difference": common.difference(gen, spec)}}}
  return {"games": games, "verdict_settings": {"learned_fraction": 0.5}}


@pytest.mark.parametrize("shift, effect, outcome", [
    (0.2, "transfer", "confirmed"), (-0.2, "interference", "confirmed"),
    (0.0, "no measurable difference", "not confirmed")])
def test_verdict_names_each_effect_by_its_interval(shift, effect, outcome):
  v = multi_task.verdict(_summary({"arithmetic": 0.0, "facts": shift}))
  assert v["effects"] == {"arithmetic": {"base": "no measurable difference"},
                          "facts": {"base": effect}}
  assert v["outcome"] == outcome


def test_verdict_judges_only_the_cells_whose_specialist_learned():
  # An effect where the specialist did not learn counts for nothing.
  v = multi_task.verdict(_summary({"arithmetic": 0.2, "facts": 0.0}, {"arithmetic": 0.4}))
  assert v["effects"] == {"arithmetic": {"base": "not learned"},
                          "facts": {"base": "no measurable difference"}}
  assert v["outcome"] == "not confirmed"
  assert v["specialist_over_expert"]["arithmetic"]["base"] == pytest.approx(0.4)
  v = multi_task.verdict(_summary({"arithmetic": 0.2, "facts": 0.0}, specialist=0.4))
  assert v["outcome"] == "inconclusive: not learned"
