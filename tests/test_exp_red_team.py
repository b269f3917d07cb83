"""The red-team experiment (claim 5): its smoke variant end to end, and reported.

Resuming (finished stages reused) is ``common.run_stage``'s, tested through the pipeline.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import red_team
from twoplayer_jax import games, rollout


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("red_team", tmp_path_factory.mktemp("red_team"))[0]


def _rates(summary):
  for line in red_team.LINES:
    for row in summary["lines"][line]:
      yield row


def test_summary_has_every_round_line_and_attacker(summary):
  assert summary["num_seeds"] == 2 and summary["rounds"] == 1
  assert summary["attackers"] == ["learned", "human", "plain", "disguised"]
  assert set(summary["stages"]) == {"attacker_sft", "defender_sft", "attack_r0", "defend_r1",
                                    "attack_r1"}
  for line in red_team.LINES:
    assert [row["round"] for row in summary["lines"][line]] == [0, 1]
  for row in _rates(summary):
    for name in summary["attackers"]:
      payoff, success = row["payoff"][name], row["success"][name]
      assert len(payoff["seeds"]) == 2
      # Every game pays player two +1 or -1: its payoff is 1 - 2 * the attacker's wins.
      np.testing.assert_allclose(payoff["seeds"], 1 - 2 * np.array(success["seeds"]), atol=1e-6)
      assert all(0 <= s <= 1 for s in success["seeds"])
    worst = row["worst_case"]["mean"]
    assert math.isfinite(worst) and worst <= min(p["mean"] for p in row["payoff"].values())
  claim = summary["claim_5"]
  assert isinstance(claim["red team finds more failures"], bool)
  assert math.isfinite(claim["final worst case, adversarial minus scripted_only"])


def test_round_zero_defender_is_shared_by_both_lines(summary):
  rows = [summary["lines"][line][0] for line in red_team.LINES]
  # Both lines start from defender_sft: the scripted attackers meet the same defender.
  for name in ("human", "plain", "disguised"):
    assert rows[0]["payoff"][name] == rows[1]["payoff"][name]


def test_transcripts_show_the_red_team_asking(summary):
  transcripts = summary["transcripts"]
  assert [t.split(",")[0] for t in transcripts] == ["round 0", "round 1"]
  for games_ in transcripts.values():
    assert len(games_) == 3 and all(g.startswith("one> ") for g in games_)


def test_report_writes_markdown_and_plots(summary, tmp_path, save_figure):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")

  text = red_team.report(summary, save_figure)
  assert "| adversarial | 1 |" in text and "| scripted_only | 0 |" in text
  assert "![" in text and "confirmed" in text
  assert (tmp_path / "rounds.png").stat().st_size > 0


def test_drawn_plays_the_attacker_its_logits_pick():
  game = games.make("red_team")
  attackers = red_team.drawn([games.player("red_team", 1, n, game) for n in ("plain", "human")])
  defender = games.player("red_team", 2, "expert", game)
  play = jax.jit(lambda logits: rollout.play_out(
      game, (attackers, defender), ((logits, None), None), jax.random.key(0), 64).carries[0][0])
  np.testing.assert_array_equal(play(jnp.log(jnp.array([0.0, 1.0]))), 1)
  np.testing.assert_array_equal(play(jnp.log(jnp.array([1.0, 0.0]))), 0)
  assert 10 < int(jnp.sum(play(jnp.zeros(2)))) < 54


def test_claim_compares_the_last_round():
  row = lambda worst, gap: {"worst_case": {"mean": worst, "std": 0.01},
                            "learned_minus_best_scripted": {"mean": gap}}
  summary = {"lines": {"adversarial": [row(-1.0, 0.5), row(0.5, 0.2)],
                       "scripted_only": [row(-1.0, 0.5), row(-0.5, -0.1)]}}
  claim = red_team.claim(summary)
  assert claim["adversarial training raises the worst case"]
  assert not claim["red team finds more failures"]
  assert claim["defenders where the red team wins more often than every scripted attacker"] == (
      "3 of 4")


def _summary(adversarial, scripted_only, margins=(0.25, 0.25, 0.25, 0.25)):
  """Claim 5's inputs: two rounds per line, round 0's defender (shared) with worst case -1 ± 0,
  round 1's with worst case ``(mean, std)``; ``margins``: the red team's success rate minus
  the best scripted attacker's, row by row (the adversarial line's first)."""
  def rows(final, first, last):
    return [{"worst_case": {"mean": -1.0, "std": 0.0},
             "learned_minus_best_scripted": {"mean": first}},
            {"worst_case": {"mean": final[0], "std": final[1]},
             "learned_minus_best_scripted": {"mean": last}}]

  return {"lines": {"adversarial": rows(adversarial, *margins[:2]),
                    "scripted_only": rows(scripted_only, *margins[2:])}}


def test_verdict_confirmed_when_the_red_team_finds_more_and_the_gap_exceeds_the_spread():
  # The gap 0.25 is more than hypot(0.125, 0.125), though not more than 0.125 + 0.125.
  v = red_team.claim(_summary((0.5, 0.125), (0.25, 0.125)))
  assert v == {
      "defenders where the red team wins more often than every scripted attacker": "4 of 4",
      "red team finds more failures": True,
      "final worst case, adversarial minus scripted_only": 0.25,
      "adversarial training raises the worst case": True}


def test_verdict_not_confirmed_when_the_gap_is_within_the_spread():
  # The gap 0.15625 is more than either std, not more than their hypot; a margin of 0 is no win.
  v = red_team.claim(_summary((0.40625, 0.125), (0.25, 0.125), margins=(0.25, 0.0, -0.125, 0.25)))
  assert v == {
      "defenders where the red team wins more often than every scripted attacker": "2 of 4",
      "red team finds more failures": False,
      "final worst case, adversarial minus scripted_only": 0.15625,
      "adversarial training raises the worst case": False}


def test_verdict_a_lower_adversarial_worst_case_does_not_raise_it():
  v = red_team.claim(_summary((0.0, 0.0), (0.5, 0.0)))
  assert v["final worst case, adversarial minus scripted_only"] == -0.5
  assert not v["adversarial training raises the worst case"]
