"""The self-play experiment: its smoke run, the measures on hand-made inputs and scripted
players' games, the verdict on synthetic summaries."""

import copy
import math

import jax
import numpy as np
import pytest

from configs import self_play as config_lib
from experiments import self_play
from twoplayer_jax import rollout, vocab

GAMES = ("red_team", "bargaining", "twenty_questions")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, run_smoke):
  summary, seconds = run_smoke("self_play", tmp_path_factory.mktemp("self_play"))
  print(f"self_play smoke run: {seconds:.0f} s")
  return summary


def test_summary_has_every_game_policy_and_measure(smoke):
  c = config_lib.get_config("smoke")
  assert tuple(smoke["games"]) == GAMES and smoke["num_seeds"] == c.num_seeds
  names = ["clone", *c.methods]
  for name, g in smoke["games"].items():
    assert list(g["policies"]) == names and g["cross_play"]["rows"] == names
    assert np.shape(g["cross_play"]["mean"]) == (len(names), len(names), 2)
    for policy, p in g["policies"].items():
      for key in ("self_play_payoff_one", "self_play_payoff_two", "kl_from_clone",
                  "well_formed_one", "well_formed_two", "worst_case"):
        x = p[key]
        assert len(x["seeds"]) == c.num_seeds and x["low"] <= x["mean"] <= x["high"], key
      assert 0 <= p["well_formed_one"]["mean"] <= 1 and 0 <= p["well_formed_two"]["mean"] <= 1
      # The worst case is the least of the payoffs against every opponent.
      assert p["worst_case"]["mean"] <= min(v["mean"] for v in p["versus"].values()) + 1e-9
      assert ("against_earlier" in p) == (policy != "clone")
      assert ("cycling" in p) == (policy != "clone" and name == "red_team")
      # The cross-play diagonal is the policy against itself, on the same games.
      m = names.index(policy)
      for i, seat in enumerate(("one", "two")):
        assert g["cross_play"]["mean"][m][m][i] == pytest.approx(
            p[f"self_play_payoff_{seat}"]["mean"], abs=1e-5)
    # The clone's games are its own: recorded and recomputed log-probs agree.
    assert abs(g["policies"]["clone"]["kl_from_clone"]["mean"]) < 1e-3
    assert len(g["transcripts"]["clone"]) == c.num_transcripts
  bargaining = smoke["games"]["bargaining"]["policies"]["clone"]
  for key in ("deal", "pareto_optimal", "welfare", "nash_product"):
    assert 0 <= bargaining[key]["mean"] <= 1
  assert "solved" in smoke["games"]["twenty_questions"]["policies"]["clone"]
  assert smoke["verdict"]["cycling"]["outcome"] in ("confirmed", "not confirmed", "inconclusive")


@pytest.mark.parametrize("name, one, two", [("red_team", "disguised", "expert"),
                                            ("bargaining", "human", "expert"),
                                            ("twenty_questions", "human", "expert")])
def test_scripted_players_write_only_well_formed_turns(name, one, two):
  c = config_lib.get_config()
  a = self_play.arena(name, c)
  scripted = dict(a.scripted)
  players = (scripted[(1, one)], scripted[(2, two)])
  traj = jax.device_get(rollout.play(a.game, players, (None, None), jax.random.key(0), 16))
  np.testing.assert_array_equal(self_play.well_formed_share(a, traj), [1.0, 1.0])


def test_malformed_and_unfinished_turns_are_not_well_formed():
  a = self_play.arena("red_team", config_lib.get_config())
  assert self_play.well_formed(a, (1, b"say:cat", True), None)
  assert not self_play.well_formed(a, (1, b"say:cat", False), None)  # Never closed.
  assert not self_play.well_formed(a, (1, b"cat", True), None)
  assert not self_play.well_formed(a, (1, b"say:" + b"x" * 13, True), None)  # Too long.
  assert self_play.well_formed(a, (2, b"sorry", True), b"say:cat")
  assert self_play.well_formed(a, (2, b"cat", True), b"say:cat")
  assert not self_play.well_formed(a, (2, b"dog", True), b"say:cat")
  b = self_play.arena("bargaining", config_lib.get_config())
  assert self_play.well_formed(b, (1, b"offer:1,0,2", True), None)
  assert self_play.well_formed(b, (2, b"accept", True), b"offer:1,0,2")
  assert not self_play.well_formed(b, (2, b"offer:1,0", True), None)


def test_turns_split_a_transcript_by_author_and_end_of_turn():
  tokens = np.array([vocab.BOS, *b"ab", vocab.EOT, *b"cd", vocab.EOT, *b"e"])
  owner = np.array([0, 1, 1, 1, 2, 2, 2, 1])
  assert self_play.turns(tokens, owner, 1, 8) == [(1, b"ab", True), (2, b"cd", True),
                                                  (1, b"e", False)]


def _zero_sum(a: np.ndarray) -> np.ndarray:
  """Snapshot cross-play ``[1, N, N, 2]`` of a symmetric zero-sum game whose payoff of i
  against j is ``a[i, j]`` in either seat (``a`` antisymmetric)."""
  return np.stack([a, -a], -1)[None]


def test_cycling_is_zero_for_steady_improvement_and_positive_for_a_cycle():
  steady = np.array([[0, -1, -1], [1, 0, -1], [1, 1, 0]], float)  # Later beats earlier.
  assert self_play.cycling(_zero_sum(steady)) == pytest.approx([0.0])
  assert self_play.against_earlier(_zero_sum(steady)) == pytest.approx([1.0])
  rps = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], float)  # 0 < 1 < 2 < 0.
  assert self_play.cycling(_zero_sum(rps)) == pytest.approx([1 / 3])
  assert self_play.against_earlier(_zero_sum(rps)) == pytest.approx([0.0])


def _stats(mean: float, half: float = 0.01) -> dict:
  return {"mean": mean, "low": mean - half, "high": mean + half}


def _summary(self_play_cycling=0.3, mmd_cycling=0.05, self_play_kl=20.0, mmd_kl=2.0,
             clone_payoff=(-0.2, 0.2)) -> dict:
  def policy(cycling, kl, payoff=(-0.2, 0.2)):
    return {"cycling": _stats(cycling), "kl_from_clone": _stats(kl),
            "self_play_payoff_one": _stats(payoff[0]), "self_play_payoff_two": _stats(payoff[1])}

  game = {"teachers_payoff": [-0.2, 0.2],
          "policies": {"clone": policy(0.0, 0.0, clone_payoff),
                       "self_play": policy(self_play_cycling, self_play_kl),
                       "mmd": policy(mmd_cycling, mmd_kl)}}
  return {"verdict_settings": {"clone_tolerance": 0.15}, "methods": ["self_play", "mmd"],
          "games": {"red_team": game, "bargaining": copy.deepcopy(game)}}


def test_verdict_confirmed_when_the_intervals_separate():
  v = self_play.verdict(_summary())
  assert v["cycling"]["outcome"] == "confirmed" and v["drift"]["outcome"] == "confirmed"


def test_verdict_not_confirmed_when_the_intervals_overlap():
  v = self_play.verdict(_summary(mmd_cycling=0.295, mmd_kl=19.99))
  assert v["cycling"]["outcome"] == "not confirmed" and v["drift"]["outcome"] == "not confirmed"


def test_verdict_inconclusive_when_the_clone_missed_its_teachers():
  v = self_play.verdict(_summary(clone_payoff=(-0.6, 0.6)))
  assert v["cycling"]["outcome"] == v["drift"]["outcome"] == "inconclusive"
  assert v["clone_in_distribution"] == {"red_team": False, "bargaining": False}


def test_report_writes_the_tables_verdict_and_figure(smoke, save_figure):
  text = self_play.report(smoke, save_figure)
  assert "| red_team | clone |" in text and "Nash product" in text
  assert "- cycling: **" in text and "![" in text
  assert not math.isnan(smoke["games"]["red_team"]["policies"]["clone"]["worst_case"]["mean"])


def test_snapshots_hold_the_start_then_the_learner_every_snapshot_every_iterations():
  """FSP's population is the snapshots: slot 0 the start, slot k the learner after
  k * snapshot_every iterations, and the slots not reached yet still the start."""
  c = config_lib.get_config("smoke")
  c.rl.iterations, c.snapshot_every = 4, 2
  c.rl.entropy_coef = 0.01  # An untrained attacker's requests all lose alike: no advantage.
  a = self_play.arena("red_team", c)
  start = jax.vmap(a.model.init)(jax.random.split(jax.random.key(0), c.num_seeds))
  tx = self_play.stages.rl_optimizer(c.rl)
  run = self_play.initial_run(c, "fsp", tx, start)
  step = jax.jit(self_play.rl_step(a, c, "fsp", tx))
  learners = []
  for _ in range(3):
    run, _ = step(run, None)
    learners.append(run.train.params)
  leaves = lambda tree: jax.tree.leaves(tree)
  for slot, expected in ((0, start), (1, learners[1]), (2, start)):
    for got, want in zip(leaves(run.snapshots), leaves(expected)):
      np.testing.assert_array_equal(got[:, slot], want)
  assert not all(np.array_equal(x, y) for x, y in zip(leaves(learners[1]), leaves(start)))
