"""The chain-of-thought experiment (claim 2): its smoke run as launched, reported, and its
verdict rule on hand-made numbers.

Resuming (finished stages reused) is ``train.runner``'s, tested through the pipeline.
"""

import matplotlib
import numpy as np
import pytest

from configs import chain_of_thought as config_lib
from experiments import chain_of_thought as cot
from experiments import common

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("chain_of_thought", tmp_path_factory.mktemp("chain_of_thought"))[0]


def test_summary_has_every_format_per_digit_count_and_carry_count(summary):
  c = config_lib.get_config("smoke")
  assert summary["num_seeds"] == c.num_seeds >= 2
  assert summary["rule"] == config_lib.RULE
  assert set(summary["formats"]) == set(cot.FORMATS)
  for fmt, s in summary["formats"].items():
    assert s["learning_rate"] in c.learning_rates
    rates = s["validation_accuracy"]
    assert set(rates) == {f"{lr:g}" for lr in c.learning_rates}
    assert rates[f"{s['learning_rate']:g}"] == max(rates.values())  # The better rate.
    assert set(s["by_digits"]) == {str(d) for d in c.eval_digits}
    assert set(s["by_carries"]) <= {str(k) for k in range(max(c.eval_digits) + 1)}
    for m in [s["accuracy"], s["hard"], *s["by_digits"].values(), *s["by_carries"].values()]:
      assert len(m["seeds"]) == c.num_seeds and all(0 <= a <= 1 for a in m["seeds"])
      assert m["low"] <= m["mean"] <= m["high"] and np.isclose(m["mean"], np.mean(m["seeds"]))
    # The overall accuracy weighs every digit count alike.
    assert np.allclose(s["accuracy"]["seeds"],
                       np.mean([m["seeds"] for m in s["by_digits"].values()], 0))
    assert np.isfinite(s["final_loss"]) and s["final_loss"] > 0
    assert "two> " in s["example_game"]
    # Equal token budgets: the same steps of the same rows for every format.
    assert s["tokens"] == s["steps"] * c.batch_size * c.row_length
    assert c.token_budget - c.batch_size * c.row_length < s["tokens"] <= c.token_budget
    assert 0 < s["loss_tokens"] < s["tokens"]
  f = summary["formats"]
  # The answer-only formats' shorter games fit more to a row; filler is as long as the chain.
  assert f["qa"]["games_per_row"] == f["reversed"]["games_per_row"]
  assert f["qa"]["games_per_row"] > f["qca"]["games_per_row"] >= 1
  assert abs(f["filler"]["games_per_row"] - f["qca"]["games_per_row"]) < 0.5
  assert sum(summary["problems_by_carries"].values()) == c.eval_games * len(c.eval_digits)
  assert set(summary["differences"]) == {"qca - qa", "qca - reversed", "qca - filler",
                                         "gain on hard - gain without a carry"}
  assert summary["verdict"]["outcome"] in ("confirmed", "not confirmed",
                                           "inconclusive: not learned")


def test_report_writes_tables_rule_and_plot(summary, tmp_path, save_figure):
  markdown = cot.report(summary, save_figure)
  assert "| **all** |" in markdown and "Claim 2 by this rule:" in markdown
  assert config_lib.RULE in markdown and "| qca - filler |" in markdown
  assert "![accuracy against carries and digits per format](accuracy.png)" in markdown
  assert (tmp_path / "accuracy.png").stat().st_size > 1000


def test_config_checks():
  c = config_lib.get_config()
  cot.check(c)
  c.model.max_length = c.row_length - 1
  with pytest.raises(ValueError, match="shorter than a row"):
    cot.check(c)
  trained = cot.arithmetic(c, max(c.train_digits), "qca").max_length
  c.model.max_length, c.row_length = c.row_length, trained - 1
  with pytest.raises(ValueError, match="shorter than the longest training game"):
    cot.check(c)
  c.row_length, c.token_budget = trained, c.batch_size
  with pytest.raises(ValueError, match="buys no step"):
    cot.check(c)
  c = config_lib.get_config()
  c.bulk_digits = (7,)
  with pytest.raises(ValueError, match="bulk_digits"):
    cot.check(c)
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("large")


def test_accuracy_weighs_digit_counts_alike_and_splits_by_carries():
  played = {1: {"paid": np.array([[1.0, 0.0], [1.0, 1.0]]), "carries": np.array([0, 1])},
            2: {"paid": np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]),
                "carries": np.array([0, 1, 2, 2])}}
  np.testing.assert_allclose(cot.accuracy(played), [0.5, 0.625])
  np.testing.assert_allclose(cot.by_carries(played, 0), [0.5, 1.0])
  np.testing.assert_allclose(cot.by_carries(played, 1), [0.0, 0.5])
  np.testing.assert_allclose(cot.by_carries(played, 1, at_least=True), [0.5, 0.25])
  assert np.isnan(cot.by_carries(played, 3)).all()


def _summary(qca_minus, hard_gain, easiest, bulk):
  """The verdict's inputs: paired differences of per-seed values and each format's
  accuracy on 1 digit (``easiest``) and 2 (``bulk``)."""
  diffs = {f"qca - {fmt}": common.interval(x) for fmt, x in zip(cot.CONTROLS, qca_minus)}
  diffs["gain on hard - gain without a carry"] = common.interval(hard_gain)
  formats = {fmt: {"by_digits": {"1": {"mean": easiest}, "2": {"mean": bulk}}}
             for fmt in cot.FORMATS}
  return {"verdict_settings": {"learned_accuracy": 0.9, "hard_carries": 2},
          "formats": formats, "differences": diffs, "bulk_digits": [1, 2]}


UP, FLAT = [0.2, 0.3, 0.25], [0.2, -0.1, 0.0]


def test_verdict_confirmed_when_every_interval_is_above_zero():
  v = cot.verdict(_summary([UP, UP, UP], UP, easiest=0.95, bulk=0.9))
  assert v["outcome"] == "confirmed" and all(v["checks"].values())
  assert v["learned"] == {"qca 1-digit": 0.95, "qca 2-digit": 0.9}


@pytest.mark.parametrize("which", range(4))
def test_verdict_not_confirmed_when_one_interval_reaches_zero(which):
  diffs = [FLAT if k == which else UP for k in range(4)]
  v = cot.verdict(_summary(diffs[:3], diffs[3], easiest=1.0, bulk=1.0))
  assert v["outcome"] == "not confirmed"
  assert [not x for x in v["checks"].values()] == [k == which for k in range(4)]


@pytest.mark.parametrize("easiest, bulk", [(0.89, 1.0), (1.0, 0.89)])
def test_verdict_inconclusive_when_qca_did_not_learn_its_bulk(easiest, bulk):
  v = cot.verdict(_summary([UP, UP, UP], UP, easiest=easiest, bulk=bulk))
  assert v["outcome"] == "inconclusive: not learned" and all(v["checks"].values())


def test_verdict_holds_the_answer_only_formats_to_no_learned_check():
  summary = _summary([UP, UP, UP], UP, easiest=1.0, bulk=1.0)
  for fmt in cot.CONTROLS:
    summary["formats"][fmt]["by_digits"] = {"1": {"mean": 0.0}, "2": {"mean": 0.0}}
  assert cot.verdict(summary)["outcome"] == "confirmed"
