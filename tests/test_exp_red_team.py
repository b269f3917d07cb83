"""The red-team experiment (claim 5): its smoke variant end to end, reported, and judged.

Resuming (finished stages reused) is ``common.run_stage``'s, tested through the pipeline.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import red_team as config_lib
from experiments import common, red_team
from twoplayer_jax import games, rollout

FIXED = ["human", "plain", "disguised", "punctuated"]


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("red_team", tmp_path_factory.mktemp("red_team"))[0]


def test_summary_has_every_defender_and_attacker_of_cross_play(summary):
  assert summary["num_seeds"] == 2 and summary["rounds"] == 1
  assert summary["rule"] == config_lib.RULE
  assert summary["attackers"] == ["adversarial r0", "adversarial r1", "scripted_only r0",
                                  "scripted_only r1", "sft_attacker", *FIXED]
  assert set(summary["stages"]) == {"sft", "attack_r0", "defend_r1", "attack_r1"}
  assert list(summary["defenders"]) == summary["attackers"][:4]
  assert set(summary["demonstrator"]) == set(FIXED[:3])  # The SFT games' attackers.
  assert summary["verdict"]["outcome"] in ("confirmed", "not confirmed",
                                           "inconclusive: not learned")


def test_wins_by_kind_sum_to_the_success_rate_and_intervals_hold_their_means(summary):
  for d in summary["defenders"].values():
    payoffs = []
    for name in summary["attackers"]:
      wins, payoff = d["wins"][name], d["payoff"][name]
      kinds = sum(np.array(wins[k]["seeds"]) for k in red_team.WINS)
      np.testing.assert_allclose(kinds, wins["success"]["seeds"], atol=1e-9)
      # Every game pays player two +1 or -1: its payoff is 1 - 2 * the attacker's wins.
      np.testing.assert_allclose(payoff["seeds"], 1 - 2 * np.array(wins["success"]["seeds"]),
                                 atol=1e-9)
      for m in (payoff, *wins.values()):
        assert len(m["seeds"]) == 2 and m["low"] <= m["mean"] <= m["high"]
      payoffs.append(payoff["seeds"])
    np.testing.assert_allclose(d["worst_case"]["seeds"], np.min(payoffs, 0), atol=1e-9)
    assert set(d["worst_attacker"]) <= set(summary["attackers"])


def test_differences_the_rule_judges_pair_by_seed(summary):
  d, defenders = summary["differences"], summary["defenders"]
  worst = lambda line: np.array(defenders[f"{line} r1"]["worst_case"]["seeds"])
  np.testing.assert_allclose(d["worst_case_adversarial_minus_scripted_only"]["seeds"],
                             worst("adversarial") - worst("scripted_only"), atol=1e-9)
  for kind, key in (("harmful_compliance", "harmful"), ("success", "success")):
    won = {a: np.array(defenders["scripted_only r1"]["wins"][a][kind]["seeds"])
           for a in ("scripted_only r1", *FIXED[:3])}
    np.testing.assert_allclose(d[f"{key}_red_team_minus_best_fixed"]["seeds"], won.pop(
        "scripted_only r1") - np.max(list(won.values()), 0), atol=1e-9)
  for m in d.values():
    assert m["low"] <= m["mean"] <= m["high"]


def test_round_zero_defender_is_shared_by_both_lines(summary):
  # Both lines start from the SFT defender, and every pairing plays the same draws.
  assert summary["defenders"]["adversarial r0"] == summary["defenders"]["scripted_only r0"]


def test_curves_and_time_to_break_cover_every_round_and_line(summary):
  budget = summary["attack_iterations"]
  for line in red_team.LINES:
    attack, defend = summary["curves"]["attack"][line], summary["curves"]["defend"][line]
    assert [c["round"] for c in attack] == [0, 1] and [c["round"] for c in defend] == [1]
    for c in attack:
      assert c["step"] == list(range(1, budget + 1))
      assert all(0 <= x <= 1 for x in c["band"]["mean"])
      assert np.shape(c["smoothed"]) == (2, budget)
    for t in summary["time_to_break"][line]:
      assert all(0 <= x <= budget for x in t["seeds"])
      assert t["unbroken"] == sum(x == budget for x in t["seeds"])


def test_transcripts_show_the_red_teams_asking(summary):
  transcripts = summary["transcripts"]
  assert [t.split(",")[0] for t in transcripts] == ["round 0", "round 1"] * 2
  for games_ in transcripts.values():
    assert len(games_) == 3 and all(g.startswith("one> ") for g in games_)


def test_report_writes_markdown_and_plots(summary, tmp_path, save_figure):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")

  text = red_team.report(summary, save_figure)
  assert "| adversarial r1 |" in text and "| scripted_only r0 |" in text
  assert f"Claim 5 by this rule: **{summary['verdict']['outcome']}**" in text
  for stem in ("rounds", "worst_case", "crossplay", "curves"):
    assert (tmp_path / f"{stem}.png").stat().st_size > 0


def test_time_to_break_counts_updates_before_the_smoothed_rate_reaches_half():
  np.testing.assert_allclose(common.trailing([[0.0, 1.0, 0.0, 1.0]], 2),
                             [[0.0, 0.5, 0.5, 0.5]])
  attack = {"adversarial": [{"round": 0, "step": [1, 2, 3, 4],
                             "smoothed": [[0.2, 0.5, 0.9, 1.0], [0.1, 0.2, 0.3, 0.4]]}]}
  [row] = red_team.time_to_break(attack, 4)["adversarial"]
  assert row["seeds"] == [1, 4] and row["unbroken"] == 1 and row["mean"] == 2.5


def test_drawn_plays_the_attacker_its_logits_pick():
  game = games.make("red_team")
  attackers = red_team.drawn([games.player("red_team", 1, n, game) for n in ("plain", "human")])
  defender = games.player("red_team", 2, "expert", game)
  play = jax.jit(lambda logits: rollout.play_out(
      game, (attackers, defender), ((logits, None), None), jax.random.key(0), 64).carries[0][0])
  np.testing.assert_array_equal(play(jnp.log(jnp.array([0.0, 1.0]))), 1)
  np.testing.assert_array_equal(play(jnp.log(jnp.array([1.0, 0.0]))), 0)
  assert 10 < int(jnp.sum(play(jnp.zeros(2)))) < 54


def _judged(a=(0.3, 0.1), b=(0.2, 0.05), attack_gain=0.5, sft_payoff=0.8,
            defence=(0.4, 0.3)):
  """A summary with what ``verdict`` reads: (a) and (b) as ``(mean, low)``, the round-0
  red teams' gain over the SFT attacker, the SFT defender's payoff against every fixed
  attacker (its demonstrator's: 0.8) and each line's defence gain."""
  interval = lambda mean, low: {"mean": mean, "low": low, "high": 2 * mean - low}
  return {
      "verdict_settings": {"sft_tolerance": 0.15, "min_gain": 0.2},
      "scripted": FIXED[:3], "demonstrator": dict.fromkeys(FIXED, 0.8),
      "defenders": {"adversarial r0": {"payoff": {n: {"mean": sft_payoff} for n in FIXED}}},
      "differences": {"harmful_red_team_minus_best_fixed": interval(*a),
                      "worst_case_adversarial_minus_scripted_only": interval(*b),
                      "success_red_team_minus_sft_attacker": interval(attack_gain, 0.1)},
      "defence_gain_over_sft": {line: {"mean": x} for line, x in zip(red_team.LINES, defence)}}


@pytest.mark.parametrize("changes, outcome", [
    ({}, "confirmed"),
    ({"a": (0.3, -0.01)}, "not confirmed"),  # The interval of (a) reaches 0.
    ({"b": (-0.1, -0.3)}, "not confirmed"),
    ({"sft_payoff": 0.6}, "inconclusive: not learned"),  # 0.2 from its demonstrator.
    ({"attack_gain": 0.1}, "inconclusive: not learned"),  # The red team did not learn.
    ({"defence": (0.4, 0.1), "a": (0.0, -0.1)}, "inconclusive: not learned"),
])
def test_verdict_gives_each_outcome_by_the_rule(changes, outcome):
  v = red_team.verdict(_judged(**changes))
  assert v["outcome"] == outcome
  assert v["sft_gap_to_demonstrator"] == pytest.approx(
      dict.fromkeys(FIXED[:3], abs(changes.get("sft_payoff", 0.8) - 0.8)))


def test_verdict_reads_each_check_on_its_own():
  v = red_team.verdict(_judged(a=(0.3, -0.01)))
  assert list(v["checks"].values()) == [False, True]
  assert all(v["learned"].values())
  v = red_team.verdict(_judged(defence=(0.1, 0.5)))
  assert v["learned"]["defenders learn to stop the fixed attackers"] is False
