"""The chain-of-thought experiment (claim 2): its smoke run as launched, and reported.

Resuming (finished stages reused) is ``train.runner``'s, tested through the pipeline.
"""

import matplotlib
import numpy as np
import pytest

from configs import chain_of_thought as config_lib
from experiments import chain_of_thought as cot

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("chain_of_thought", tmp_path_factory.mktemp("chain_of_thought"))[0]


def test_summary_has_both_formats_per_digit_count(summary):
  c = config_lib.get_config("smoke")
  assert summary["num_seeds"] == c.num_seeds >= 3
  assert summary["eval_digits"] == list(c.eval_digits)
  for fmt in cot.FORMATS:
    s = summary["formats"][fmt]
    assert set(s["accuracy"]) == {str(d) for d in c.eval_digits}
    for acc in s["accuracy"].values():
      assert len(acc["seeds"]) == c.num_seeds
      assert all(0.0 <= a <= 1.0 for a in acc["seeds"])
      assert np.isclose(acc["mean"], np.mean(acc["seeds"]))
    assert np.isfinite(s["final_loss"]) and s["final_loss"] > 0
    assert "two> " in s["example_games"][str(max(c.eval_digits))]
  qa, qca = summary["formats"]["qa"], summary["formats"]["qca"]
  # Equal padded-token budgets: Q-A's shorter games buy more steps.
  assert qa["steps"] > qca["steps"] and qa["seq_len"] < qca["seq_len"]
  for s in (qa, qca):
    assert s["tokens"] == s["steps"] * c.batch_size * s["seq_len"]
    step_tokens = c.batch_size * s["seq_len"]
    assert c.token_budget - step_tokens < s["tokens"] <= c.token_budget
    assert 0 < s["loss_tokens"] < s["tokens"]
  assert set(summary["claim_2"]["gain"]) == {str(d) for d in c.eval_digits}


def test_report_writes_table_and_plot(summary, tmp_path, save_figure):
  markdown = cot.report(summary, save_figure)
  assert "| 3 (beyond training) |" in markdown and "Claim 2 is" in markdown
  assert "![accuracy against digits per format](accuracy.png)" in markdown
  assert (tmp_path / "accuracy.png").stat().st_size > 1000


def test_budget_and_context_checks():
  c = config_lib.get_config()
  cot.check(c)
  longest = cot.arithmetic(c, max(c.eval_digits), "qca").max_length
  c.model.max_length = longest - 1
  with pytest.raises(ValueError, match="longest evaluated game"):
    cot.check(c)
  c.model.max_length, c.token_budget = longest, c.batch_size
  with pytest.raises(ValueError, match="buys no step"):
    cot.check(c)
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("large")


def test_claim_compares_trained_and_longer_problems():
  acc = lambda *means: {str(d): {"mean": m, "std": 0.01} for d, m in zip((1, 2, 3), means)}
  summary = {"train_digits": [1, 2], "formats": {"qa": {"accuracy": acc(0.9, 0.3, 0.0)},
                                                 "qca": {"accuracy": acc(0.9, 0.8, 0.2)}}}
  claim = cot.claim(summary)
  assert claim["gain"] == pytest.approx({"1": 0.0, "2": 0.5, "3": 0.2})
  assert claim["qca beats qa on hardest trained"] and claim["qca beats qa beyond training"]
  assert claim["gain larger on hardest trained than easiest"]
  assert claim["mean gain beyond training"] == pytest.approx(0.2)
  # A gain below CLEAR_GAIN, or within the seeds' spread, is no win.
  summary["formats"]["qca"]["accuracy"]["3"]["mean"] = 0.01
  assert not cot.claim(summary)["qca beats qa beyond training"]
  summary["formats"]["qca"]["accuracy"]["2"]["std"] = 0.6
  assert not cot.claim(summary)["qca beats qa on hardest trained"]


def _summary(qa, qca, train_digits=(1, 2)):
  """Claim 2's inputs: each format's ``(mean, std)`` accuracy on 1, 2, ... digits."""
  acc = lambda pairs: {str(d): {"mean": m, "std": s} for d, (m, s) in enumerate(pairs, 1)}
  return {"train_digits": list(train_digits),
          "formats": {"qa": {"accuracy": acc(qa)}, "qca": {"accuracy": acc(qca)}}}


def test_verdict_confirmed_when_qca_wins_clearly_on_the_hardest_and_beyond():
  v = cot.claim(_summary(qa=[(0.75, 0.0), (0.5, 0.0625), (0.125, 0.0)],
                         qca=[(0.8125, 0.0), (0.875, 0.0625), (0.25, 0.0)]))
  assert v == {"gain": {"1": 0.0625, "2": 0.375, "3": 0.125},
               "qca beats qa on average": True, "qca beats qa on hardest trained": True,
               "qca beats qa beyond training": True,
               "gain larger on hardest trained than easiest": True,
               "mean gain beyond training": 0.125}


def test_verdict_not_confirmed_when_qa_wins():
  # Beyond training, one clear gain (4 digits) is enough; the mean gain is over both lengths.
  v = cot.claim(_summary(qa=[(0.75, 0.0), (0.5, 0.0), (0.25, 0.0), (0.25, 0.0)],
                         qca=[(0.5, 0.0), (0.25, 0.0), (0.25, 0.0), (0.5, 0.0)]))
  assert v == {"gain": {"1": -0.25, "2": -0.25, "3": 0.0, "4": 0.25},
               "qca beats qa on average": False, "qca beats qa on hardest trained": False,
               "qca beats qa beyond training": True,
               "gain larger on hardest trained than easiest": False,
               "mean gain beyond training": 0.125}


def test_verdict_a_gain_just_below_clear_gain_is_not_clear():
  gain = cot.CLEAR_GAIN
  v = cot.claim(_summary(qa=[(0.5, 0.0), (0.0, 0.0), (0.0, 0.0)],
                         qca=[(0.5, 0.0), (gain, 0.0), (gain - 1e-9, 0.0)]))
  assert v == {"gain": {"1": 0.0, "2": gain, "3": gain - 1e-9},
               "qca beats qa on average": True, "qca beats qa on hardest trained": True,
               "qca beats qa beyond training": False,
               "gain larger on hardest trained than easiest": True,
               "mean gain beyond training": gain - 1e-9}


def test_verdict_a_clear_gain_exceeds_the_sum_of_the_formats_stds():
  # 2 digits: 0.1875 is above CLEAR_GAIN and hypot(0.125, 0.125), below 0.125 + 0.125;
  # 3 digits: 0.25, that sum, is enough.
  v = cot.claim(_summary(qa=[(0.5, 0.0), (0.25, 0.125), (0.0, 0.125)],
                         qca=[(0.5, 0.0), (0.4375, 0.125), (0.25, 0.125)]))
  assert not v["qca beats qa on hardest trained"] and v["qca beats qa beyond training"]


def test_verdict_has_no_beyond_training_figures_when_every_length_was_trained():
  v = cot.claim(_summary(qa=[(0.5, 0.0), (0.25, 0.0)], qca=[(0.75, 0.0), (0.0, 0.0)]))
  assert v == {"gain": {"1": 0.25, "2": -0.25}, "qca beats qa on average": False,
               "qca beats qa on hardest trained": False, "qca beats qa beyond training": None,
               "gain larger on hardest trained than easiest": False,
               "mean gain beyond training": None}
