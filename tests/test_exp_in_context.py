"""The in-context learning experiment (claim 3): its smoke run as launched, and reported.

Resuming (finished stages reused) is ``train.runner``'s, tested through the pipeline.
"""

import matplotlib
import numpy as np
import pytest

from configs import in_context as config_lib
from experiments import in_context as icl

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("in_context", tmp_path_factory.mktemp("in_context"))[0]


def test_summary_has_every_pool_and_number_of_examples(summary):
  c = config_lib.get_config("smoke")
  assert summary["num_seeds"] == c.num_seeds >= 3
  assert list(summary["pools"]) == [icl.pool_name(n) for n in c.num_tasks]
  ks = {str(k) for k in c.num_examples}
  for p in summary["pools"].values():
    assert set(p["held_out"]) == ks
    for acc in [*p["held_out"].values(), p["train_tasks"]]:
      assert len(acc["seeds"]) == c.num_seeds
      assert all(0.0 <= a <= 1.0 for a in acc["seeds"])
      assert np.isclose(acc["mean"], np.mean(acc["seeds"]))
    assert np.isfinite(p["final_loss"]) and p["final_loss"] > 0
    assert p["tokens"] == c.steps * c.batch_size * icl.in_context(c, max(c.num_examples)).max_length
  cover = [summary["coverage"][str(k)] for k in c.num_examples]
  assert all(0.0 <= x <= 1.0 for x in cover) and cover == sorted(cover)
  assert summary["chance"] == pytest.approx(c.game.num_letters ** -c.game.word_length)
  assert len(summary["claim_3"]["held-out accuracy with most examples, per pool"]) == len(
      c.num_tasks)


def test_report_writes_table_and_plot(summary, tmp_path, save_figure):

  markdown = icl.report(summary, save_figure)
  assert "| unlimited |" in markdown and "Claim 3 is" in markdown
  assert "](accuracy.png)" in markdown
  assert (tmp_path / "accuracy.png").stat().st_size > 1000


def test_coverage_counts_queries_shown_in_the_examples():
  # Two games of 2 examples of words of 2 letters: "ab>..;cd>..;" then the query.
  def game(first, second):
    return [0, *first, 0, 0, 0, 0, *second, 0, 0, 0, 0]

  tokens = np.array([game([97, 98], [99, 100]), game([97, 97], [97, 97])])
  query = np.array([[1, 2], [0, 1]])  # "bc": shown in the first game; "ab": not in the second.
  assert icl.coverage(tokens, query, num_examples=2, word_length=2) == 0.5
  assert icl.coverage(tokens, query, num_examples=0, word_length=2) == 0.0


def test_checks_and_claim():
  c = config_lib.get_config()
  icl.check(c)
  c.model.max_length = icl.in_context(c, max(c.num_examples)).max_length - 1
  with pytest.raises(ValueError, match="shorter than the longest game"):
    icl.check(c)
  c = config_lib.get_config()
  c.num_tasks = (4, 10 ** 6)
  with pytest.raises(ValueError, match="num_tasks"):
    icl.check(c)
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("large")
  acc = lambda *means: {"held_out": {str(k): {"mean": m} for k, m in zip((0, 4), means)}}
  claim = icl.claim({"num_examples": [0, 4],
                     "pools": {"4": acc(0.1, 0.2), "64": acc(0.1, 0.5), "all": acc(0.1, 0.4)}})
  assert claim["rises from smallest to largest pool"]
  assert not claim["never falls with more tasks"]
  assert claim["largest pool rises from fewest to most examples"]


def _summary(*pools, num_examples=(0, 2, 4)):
  """Claim 3's inputs: each pool's mean held-out accuracy per number of examples, for pools
  of 4 and 64 tasks and unlimited (as many as given, smallest first)."""
  held_out = lambda means: {"held_out": {str(k): {"mean": m} for k, m in zip(num_examples, means)}}
  return {"num_examples": list(num_examples),
          "pools": {name: held_out(means) for name, means in zip(("4", "64", "all"), pools)}}


def test_verdict_confirmed_when_accuracy_rises_with_tasks_and_examples():
  v = icl.claim(_summary((0.125, 0.25, 0.25), (0.125, 0.375, 0.5), (0.25, 0.5, 0.75)))
  assert v == {"held-out accuracy with most examples, per pool": [0.25, 0.5, 0.75],
               "rises from smallest to largest pool": True, "never falls with more tasks": True,
               "largest pool rises from fewest to most examples": True,
               "largest pool never falls with more examples": True}


def test_verdict_not_confirmed_when_accuracy_falls():
  v = icl.claim(_summary((0.25, 0.5, 0.75), (0.25, 0.5, 0.75), (0.75, 0.5, 0.5)))
  assert v == {"held-out accuracy with most examples, per pool": [0.75, 0.75, 0.5],
               "rises from smallest to largest pool": False, "never falls with more tasks": False,
               "largest pool rises from fewest to most examples": False,
               "largest pool never falls with more examples": False}


def test_verdict_flat_accuracy_does_not_rise_but_never_falls():
  v = icl.claim(_summary((0.0, 0.5, 0.5), (0.5, 0.5, 0.5)))
  assert v == {"held-out accuracy with most examples, per pool": [0.5, 0.5],
               "rises from smallest to largest pool": False, "never falls with more tasks": True,
               "largest pool rises from fewest to most examples": False,
               "largest pool never falls with more examples": True}


def test_verdict_rises_end_to_end_through_a_dip():
  v = icl.claim(_summary((0.5, 0.5, 0.25), (0.5, 0.5, 0.75), (0.25, 0.0, 0.5)))
  assert v == {"held-out accuracy with most examples, per pool": [0.25, 0.75, 0.5],
               "rises from smallest to largest pool": True, "never falls with more tasks": False,
               "largest pool rises from fewest to most examples": True,
               "largest pool never falls with more examples": False}
