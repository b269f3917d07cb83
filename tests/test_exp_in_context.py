"""The in-context learning experiment (claim 3): its smoke run as launched and reported,
the references of a game set, and the verdict on synthetic summaries.

Resuming (finished stages reused) is ``train.runner``'s, tested through the pipeline.
"""

import matplotlib
import numpy as np
import pytest

from configs import in_context as config_lib
from experiments import common
from experiments import in_context as icl

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("in_context", tmp_path_factory.mktemp("in_context"))[0]


def test_summary_has_every_pool_task_set_and_number_of_examples(summary):
  c = config_lib.get_config("smoke")
  assert summary["num_seeds"] == c.num_seeds
  assert list(summary["pools"]) == [icl.pool_name(n) for n in c.num_tasks]
  ks = {str(k) for k in c.num_examples}
  for p in summary["pools"].values():
    assert set(p["held_out"]) == set(p["own"]) == set(p["own_references"]) == ks
    for acc in [*p["held_out"].values(), *p["own"].values()]:
      assert len(acc["seeds"]) == c.num_seeds
      assert all(0.0 <= a <= 1.0 for a in acc["seeds"])
      assert acc["low"] <= np.mean(acc["seeds"]) <= acc["high"]
    assert np.isfinite(p["final_loss"]) and p["final_loss"] > 0
    assert p["tokens"] == c.steps * c.batch_size * c.row_length
    # Its own games are lookups (query_shown), the held-out ones the natural game's.
    assert c.query_shown and all(r["shown"] == 1.0 for r in p["own_references"].values())
  for refs in [summary["held_out_references"], *(p["own_references"]
                                                 for p in summary["pools"].values())]:
    shown = [refs[str(k)]["shown"] for k in c.num_examples]
    ideal = [refs[str(k)]["ideal"] for k in c.num_examples]
    assert shown == sorted(shown) and ideal == sorted(ideal)  # More examples show more.
    assert all(s <= i <= 1 for s, i in zip(shown, ideal))
  assert max(r["shown"] for r in summary["held_out_references"].values()) < 1
  assert summary["chance"] == pytest.approx(c.game.num_letters ** -c.game.word_length)
  d = summary["differences"]["largest pool, held out, most - fewest examples"]
  largest = summary["pools"]["all"]["held_out"]
  np.testing.assert_allclose(d["seeds"], np.subtract(largest["4"]["seeds"], largest["2"]["seeds"]))
  assert summary["verdict"]["outcome"] in ("confirmed", "not confirmed",
                                           "inconclusive: not learned")


def test_report_writes_table_rule_and_plots(summary, tmp_path, save_figure):
  markdown = icl.report(summary, save_figure)
  assert "| unlimited | held out |" in markdown and "| 8 | own |" in markdown
  assert summary["rule"] in markdown and "Claim 3 by this rule: **" in markdown
  for stem in ("tasks", "accuracy"):
    assert f"]({stem}.png)" in markdown and (tmp_path / f"{stem}.png").stat().st_size > 1000


def test_references_copy_shown_letters_and_guess_among_the_untaken():
  """Games of 2 examples of words of 1 letter ("x>y;x>y;" then the query) over 4 letters."""
  def game(first, second):
    return [0, 97 + first[0], 0, 97 + first[1], 0, 97 + second[0], 0, 97 + second[1], 0]

  tokens = np.array([game((0, 1), (2, 3)), game((0, 1), (0, 1)), game((0, 1), (2, 3))])
  query = np.array([[2], [3], [1]])  # Shown; not shown, 1 output taken; not shown, 2 taken.
  refs = icl.references(tokens, query, num_examples=2, word_length=1, num_letters=4)
  assert refs["shown"] == pytest.approx(1 / 3)
  assert refs["ideal"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
  # A word of two unshown letters: two distinct guesses among 3 untaken letters.
  two = icl.references(np.array([[0, 97, 98, 0, 99, 100, 0]]), np.array([[2, 3]]), 1, 2, 5)
  assert two == {"shown": 0.0, "ideal": pytest.approx(1 / 6)}


def test_checks():
  c = config_lib.get_config()
  icl.check(c)
  c.row_length = icl.in_context(c, max(c.num_examples)).max_length - 1
  with pytest.raises(ValueError, match="shorter than the longest game"):
    icl.check(c)
  c.row_length, c.model.max_length = c.model.max_length + 1, c.model.max_length
  with pytest.raises(ValueError, match="shorter than a row"):
    icl.check(c)
  c = config_lib.get_config()
  c.num_examples = (0, 4)
  with pytest.raises(ValueError, match="query_shown needs examples"):
    icl.check(c)
  c = config_lib.get_config()
  c.num_tasks = (4, 10 ** 6)
  with pytest.raises(ValueError, match="num_tasks"):
    icl.check(c)
  c = config_lib.get_config()
  c.num_examples = (4,)
  with pytest.raises(ValueError, match="two numbers of examples"):
    icl.check(c)
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("large")


def _summary(smallest=(0.3, 0.35, 0.32), largest_most=(0.6, 0.65, 0.62),
             largest_fewest=(0.3, 0.32, 0.31), own=0.95):
  """Claim 3's inputs: held-out accuracy per seed of the smallest pool with the most
  examples and of the largest with the most and fewest, and every pool's own-task
  accuracy with the most examples as a share of the ideal learner's (0.5)."""
  pool = lambda: {"own": {"8": {"mean": own * 0.5}}, "own_references": {"8": {"ideal": 0.5}}}
  return {
      "num_examples": [2, 8], "verdict_settings": {"learned_fraction": 0.9},
      "pools": {"8": pool(), "all": pool()},
      "differences": {
          "largest - smallest pool, held out, most examples": common.difference(
              largest_most, smallest),
          "largest pool, held out, most - fewest examples": common.interval(
              np.subtract(largest_most, largest_fewest))}}


def test_verdict_confirmed_when_both_differences_clear_their_intervals():
  v = icl.verdict(_summary())
  assert v["outcome"] == "confirmed" and all(v["checks"].values())
  assert v["own_accuracy_over_ideal"] == pytest.approx({"8": 0.95, "all": 0.95})


@pytest.mark.parametrize("changes, failed", [
    (dict(smallest=(0.2, 0.9, 0.5)), "(a) more tasks"),  # Mean below, interval straddles 0.
    (dict(largest_fewest=(0.6, 0.66, 0.61)), "(b) more examples")])
def test_verdict_not_confirmed_when_a_difference_does_not_clear_its_interval(changes, failed):
  v = icl.verdict(_summary(**changes))
  assert v["outcome"] == "not confirmed"
  assert [k for k, ok in v["checks"].items() if not ok] == [failed]


def test_verdict_inconclusive_when_a_pool_did_not_learn_its_own_tasks():
  v = icl.verdict(_summary(own=0.85))
  assert v["outcome"] == "inconclusive: not learned" and all(v["checks"].values())

