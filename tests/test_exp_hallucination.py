"""The hallucination experiment (claim 4): its smoke run, resume, report and helpers."""

import math
import os

import numpy as np
import pytest

from experiments import hallucination
from twoplayer_jax import games

STAGES = ("sft", "rl_cost1")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_smoke_twice):
  """The smoke variant run twice in one workdir: the second run resumes the first."""
  return run_smoke_twice("hallucination", tmp_path_factory.mktemp("hallucination"), STAGES)


def test_summary_has_every_policy_with_shares_that_sum_to_one(runs):
  workdir, summary, *_ = runs
  assert summary["num_seeds"] == 2 and summary["wrong_costs"] == [1.0]
  assert set(summary["policies"]) == set(STAGES)
  for name, policy in summary["policies"].items():
    for questions in hallucination.QUESTION_SETS:
      shares = policy[questions]
      assert set(shares) == set(hallucination.OUTCOMES)
      for stat in shares.values():
        assert len(stat["seeds"]) == 2 and all(0 <= x <= 1 for x in stat["seeds"])
        assert math.isfinite(stat["std"])
      total = np.sum([shares[o]["seeds"] for o in hallucination.OUTCOMES], axis=0)
      np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert policy["seconds"] > 0 and policy["tokens"] > 0
    with open(os.path.join(workdir, name, "metrics.jsonl")) as f:
      assert len(f.readlines()) >= 1
  rl = summary["policies"]["rl_cost1"]
  assert rl["wrong_cost"] == 1.0 and math.isfinite(rl["payoff"]["mean"])
  assert -1 <= rl["sft_payoff"]["mean"] <= 1
  assert 0 < summary["games_per_set"]["new"] <= 64
  assert summary["games_per_set"]["seen"] + summary["games_per_set"]["unseen"] == 64
  assert set(summary["claim_4"]) >= {"priced_lower_new_wrong", "seen_accuracy_kept"}


def test_running_again_reuses_the_finished_stages(runs):
  """The rerun trains nothing: no stage record, metric row or checkpoint is written."""
  _, first, second, files_first, files_second = runs
  assert files_second == files_first
  assert all(files_first[s]["metrics"] and files_first[s]["checkpoints"] for s in STAGES)
  drop = lambda s: {k: v for k, v in s.items() if k != "command"}
  assert drop(second) == drop(first)


def test_report_writes_markdown_and_the_plot(runs, tmp_path, save_figure):
  _, summary, *_ = runs

  markdown = hallucination.report(summary, save_figure)
  assert "| sft |" in markdown and "| rl_cost1 |" in markdown and "Claim 4" in markdown
  assert "![" in markdown and (tmp_path / "cost.png").stat().st_size > 0


def test_fresh_names_are_those_missing_from_the_trained_knowledge_base():
  trained = games.make("facts", num_entities=64, num_seen=32)
  assert not hallucination.fresh_names(trained, trained).any()
  fresh = hallucination.fresh_names(trained, games.make("facts", num_entities=64, seed=1))
  assert fresh.shape == (64,) and fresh.sum() >= 60


def test_outcomes_count_only_the_kept_games():
  paid = np.array([[1.0, 0.0, -1.0, -1.0], [1.0, 1.0, 0.0, -1.0]])
  keep = np.array([[True, True, True, False], [True, True, True, True]])
  shares = hallucination.outcomes(paid, keep)
  np.testing.assert_allclose(shares["right"], [1 / 3, 1 / 2])
  np.testing.assert_allclose(shares["abstain"], [1 / 3, 1 / 4])
  np.testing.assert_allclose(shares["wrong"], [1 / 3, 1 / 4])
