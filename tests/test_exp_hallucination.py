"""The hallucination experiment (claim 4): its smoke run, resume, report, helpers and the
verdict on synthetic summaries."""

import math
import os

import jax
import numpy as np
import pytest

from configs import hallucination as config_lib
from experiments import hallucination
from twoplayer_jax import games

STAGES = ("sft_abstain0", "sft_abstain0.1", "rl_abstain0.1_cost1", "rl_abstain0_cost1")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_smoke_twice):
  """The smoke variant run twice in one workdir: the second run resumes the first."""
  return run_smoke_twice("hallucination", tmp_path_factory.mktemp("hallucination"), STAGES)


def test_summary_has_every_policy_with_intervals_and_shares_that_sum_to_one(runs):
  workdir, summary, *_ = runs
  assert summary["num_seeds"] == 2 and summary["wrong_costs"] == [1.0]
  assert summary["abstain_shares"] == [0.0, 0.1] and summary["sweep_share"] == 0.1
  assert set(summary["policies"]) == set(STAGES)
  for name, policy in summary["policies"].items():
    for questions in hallucination.QUESTION_SETS:
      shares = policy[questions]
      assert set(shares) == set(hallucination.OUTCOMES)
      for stat in shares.values():
        assert len(stat["seeds"]) == 2 and all(0 <= x <= 1 for x in stat["seeds"])
        assert stat["low"] <= stat["mean"] <= stat["high"]
        assert math.isclose(stat["std"], float(np.std(stat["seeds"], ddof=1)), abs_tol=1e-9)
      total = np.sum([shares[o]["seeds"] for o in hallucination.OUTCOMES], axis=0)
      np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert policy["seconds"] > 0 and policy["tokens"] > 0
    with open(os.path.join(workdir, name, "metrics.jsonl")) as f:
      assert len(f.readlines()) >= 1
  for share in summary["abstain_shares"]:  # Each RL policy is paired with its own arm's SFT.
    rl = summary["policies"][hallucination.stage_name(share, 1.0)]
    sft = summary["policies"][hallucination.stage_name(share)]
    assert rl["wrong_cost"] == 1.0 and rl["abstain_share"] == share
    assert math.isfinite(rl["payoff"]["mean"]) and math.isfinite(rl["payoff_change"]["mean"])
    for questions in hallucination.UNKNOWABLE:
      np.testing.assert_allclose(rl["wrong_change"][questions]["seeds"], np.subtract(
          rl[questions]["wrong"]["seeds"], sft[questions]["wrong"]["seeds"]))
  counts = summary["games_per_set"]
  assert 0 < counts["new"] <= 64 and min(counts.values()) > 0
  assert counts["seen"] + counts["unseen"] + counts["held_out"] == 64
  # 10 SFT steps teach nothing, and the sweep has one cost: either makes it inconclusive.
  assert summary["verdict"]["outcome"].startswith("inconclusive: ")


def test_running_again_reuses_the_finished_stages(runs):
  """The rerun trains nothing: no stage record, metric row or checkpoint is written."""
  _, first, second, files_first, files_second = runs
  assert files_second == files_first
  assert all(files_first[s]["metrics"] and files_first[s]["checkpoints"] for s in STAGES)
  drop = lambda s: {k: v for k, v in s.items() if k != "command"}
  assert drop(second) == drop(first)


def test_report_writes_markdown_the_rule_and_the_plots(runs, tmp_path, save_figure):
  _, summary, *_ = runs

  markdown = hallucination.report(summary, save_figure)
  assert "| sft_abstain0.1 |" in markdown and "| rl_abstain0_cost1 |" in markdown
  assert summary["rule"] in markdown and "Claim 4 by this rule: **inconclusive" in markdown
  assert "![" in markdown
  assert (tmp_path / "cost.png").stat().st_size > 0 and (tmp_path / "arms.png").stat().st_size > 0


def test_rl_stages_sweep_the_costs_from_one_arm_and_try_the_others_once():
  c = config_lib.get_config()
  names = [hallucination.stage_name(*s) for s in hallucination.rl_stages(c)]
  assert names == ["rl_abstain0.1_cost0", "rl_abstain0.1_cost0.05", "rl_abstain0.1_cost0.1",
                   "rl_abstain0.1_cost0.14", "rl_abstain0.1_cost0.2", "rl_abstain0.1_cost0.3",
                   "rl_abstain0.1_cost1", "rl_abstain0_cost1", "rl_abstain0.5_cost1"]
  assert [hallucination.stage_name(a) for a in c.abstain_shares] == [
      "sft_abstain0", "sft_abstain0.1", "sft_abstain0.5"]
  assert max(x for x in c.wrong_costs if x <= 1 / 7) == 0.14  # Just below the break-even.


def test_rl_never_asks_the_held_out_entities():
  """RL's game asks the seen and the other unseen entities, the SFT game every one."""
  c = config_lib.get_config("smoke")
  asked = lambda game: set(np.asarray(jax.vmap(lambda k: game.opening(k).hidden["entity"])(
      jax.random.split(jax.random.key(0), 1024))).tolist())
  held_out = set(range(c.game.num_entities - c.held_out, c.game.num_entities))
  rl = asked(games.make("facts", **c.game, held_out=c.held_out))
  assert not rl & held_out and rl == set(range(c.game.num_entities - c.held_out))
  assert asked(games.make("facts", **c.game)) == set(range(c.game.num_entities))
  with pytest.raises(ValueError, match="held_out"):
    games.make("facts", **c.game, held_out=c.game.num_entities - c.game.num_seen + 1)


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


def _rl(change, abstain_high=0.05):
  """An RL policy whose new-name wrong rate moved by ``change`` ± 0.02 from its SFT's (the
  paired difference's interval) and whose seen abstentions reach ``abstain_high``."""
  return {"wrong_change": {"new": {"mean": change, "low": change - 0.02,
                                   "high": change + 0.02}},
          "seen": {"abstain": {"high": abstain_high}}}


def _summary(sweep, sft_seen_right=(0.9, 0.9, 0.9)):
  """Claim 4's inputs: ``sweep`` maps each cost to the 0.1 arm's RL policy; SFT arms 0,
  0.1 and 0.5 answer seen entities right in ``sft_seen_right`` of games. Break-even 1/7."""
  shares = (0.0, 0.1, 0.5)
  sft = {hallucination.stage_name(a): {"seen": {"right": {"mean": m}}}
         for a, m in zip(shares, sft_seen_right)}
  rl = {hallucination.stage_name(0.1, x): p for x, p in sweep.items()}
  return {"verdict_settings": config_lib.get_config().verdict_settings.to_dict(),
          "break_even": 1 / 7, "abstain_shares": list(shares), "sweep_share": 0.1,
          "wrong_costs": list(sweep), "policies": {**sft, **rl}}


# Free costs keep answering (c = 0 answers more; c = 0.1's lower end is -0.04 >= -0.05) and
# priced ones answer less; c = 0's seen abstentions are not judged.
CONFIRMING = {0.0: _rl(0.05, abstain_high=0.5), 0.1: _rl(-0.02), 0.3: _rl(-0.3),
              1.0: _rl(-0.5, abstain_high=0.09)}


def test_verdict_confirmed_by_a_dose_response_without_false_abstentions():
  v = hallucination.verdict(_summary(CONFIRMING))
  assert v["outcome"] == "confirmed" and v["break_even"] == 1 / 7
  assert [x["above_break_even"] for x in v["costs"]] == [False, False, True, True]
  assert [x["false_abstention_kept"] for x in v["costs"]] == [None, True, True, True]
  assert v["costs"][1]["new_wrong_change"] == pytest.approx(
      {"mean": -0.02, "low": -0.04, "high": 0.0})
  assert v["sft_seen_right"] == {"sft_abstain0": 0.9, "sft_abstain0.1": 0.9,
                                 "sft_abstain0.5": 0.9}


@pytest.mark.parametrize("cost, policy, failed", [
    (0.1, _rl(-0.04), "dose_response"),  # A free cost lowers wrong answers: -0.06 < -0.05.
    (0.3, _rl(-0.01), "dose_response"),  # A priced cost's interval holds 0.
    (1.0, _rl(-0.5, abstain_high=0.1), "false_abstention_kept"),  # Reaches the bound.
])
def test_verdict_not_confirmed_when_one_cost_breaks_the_rule(cost, policy, failed):
  v = hallucination.verdict(_summary({**CONFIRMING, cost: policy}))
  assert v["outcome"] == "not confirmed"
  assert [x["wrong_cost"] for x in v["costs"] if x[failed] is False] == [cost]


def test_verdict_inconclusive_when_an_arm_has_not_learned_the_seen_facts():
  v = hallucination.verdict(_summary(CONFIRMING, sft_seen_right=(0.9, 0.9, 0.75)))
  assert v["outcome"] == "inconclusive: not learned"
  v = hallucination.verdict(_summary({0.0: _rl(0.5), 1.0: _rl(0.5)}, (0.5, 0.9, 0.9)))
  assert v["outcome"] == "inconclusive: not learned"  # Whatever the sweep shows.


def test_verdict_inconclusive_without_costs_on_both_sides_of_the_break_even():
  v = hallucination.verdict(_summary({0.3: _rl(-0.3), 1.0: _rl(-0.5)}))
  assert v["outcome"] == "inconclusive: no cost on one side of the break-even"
  v = hallucination.verdict(_summary({0.0: _rl(0.0), 0.14: _rl(0.0)}))
  assert v["outcome"] == "inconclusive: no cost on one side of the break-even"
