"""The twenty questions experiment (claim 6): its smoke run, resume, report and helpers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import twenty_questions
from twoplayer_jax import game as game_lib
from twoplayer_jax import games, rollout, vocab

STAGES = ("clone_average", "clone_expert", "rl_ppo_terminal", "rl_ppo_per_turn")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_smoke_twice):
  """The smoke variant run twice in one workdir: the second run resumes the first."""
  return run_smoke_twice("twenty_questions", tmp_path_factory.mktemp("twenty_questions"), STAGES)


def test_summary_has_every_policy_and_the_curves(runs):
  workdir, summary, *_ = runs
  assert summary["num_seeds"] == 2 and set(summary["policies"]) == set(STAGES)
  for name, policy in summary["policies"].items():
    for mode in ("sampled", "greedy"):
      results = policy[mode]
      assert len(results["payoff"]["seeds"]) == 2
      assert all(-0.2 - 1e-6 <= x <= 1 for x in results["payoff"]["seeds"])  # 4 questions.
      assert all(0 <= x <= 1 for x in results["solve_rate"]["seeds"])
      assert all(0 <= x <= 4 for x in results["questions_to_solve"]["seeds"])
      assert all(math.isfinite(results[k]["std"]) for k in results)
    assert policy["seconds"] > 0 and policy["tokens"] > 0
  assert summary["policies"]["rl_ppo_per_turn"]["per_turn_rewards"] is True
  expert = summary["demonstrators"]["expert"]
  assert expert["solve_rate"] == 1.0 and expert["questions_to_solve"] == 3.0  # log2(8).
  assert summary["demonstrators"]["average"]["payoff"] < expert["payoff"]
  for name in ("rl_ppo_terminal", "rl_ppo_per_turn"):
    curve = summary["curves"][name]
    assert curve["step"] == [5] and len(curve["seeds"]) == 2
    assert np.isclose(curve["mean"][0], np.mean([s[0] for s in curve["seeds"]]))
  assert "ppo: per_turn - terminal" in summary["claim_6"]


def test_running_again_reuses_the_finished_stages(runs):
  """The rerun trains nothing: no stage record, metric row or checkpoint is written."""
  _, first, second, files_first, files_second = runs
  assert files_second == files_first
  assert all(files_first[s]["metrics"] and files_first[s]["checkpoints"] for s in STAGES)
  drop = lambda s: {k: v for k, v in s.items() if k != "command"}
  assert drop(second) == drop(first)


def test_report_writes_markdown_and_both_plots(runs, tmp_path, save_figure):
  _, summary, *_ = runs

  markdown = twenty_questions.report(summary, save_figure)
  assert "| clone_expert |" in markdown and "| rl_ppo_per_turn |" in markdown
  assert "claim 6" in markdown and markdown.count("![") == 2
  for stem in ("curves", "policies"):
    assert (tmp_path / f"{stem}.png").stat().st_size > 0


def test_outcomes_read_solved_games_and_questions_from_the_transcripts():
  game = games.make("twenty_questions", num_secrets=16, max_questions=6, question_cost=0.1)
  human = games.player("twenty_questions", 1, "human", game)
  expert = games.player("twenty_questions", 2, "expert", game)
  traj = rollout.play(game, (human, expert), (None, None), jax.random.key(0), 8)
  results = jax.jit(lambda t: twenty_questions.outcomes(game, t))(traj)
  assert np.all(results["solved"]) and np.all(results["charged"] == 4)
  np.testing.assert_allclose(results["payoff"], 0.6, atol=1e-6)
  summary = twenty_questions.summarise(jax.tree.map(lambda x: np.asarray(x)[None], results))
  np.testing.assert_allclose(summary["solve_rate"], [1.0])
  np.testing.assert_allclose(summary["questions_to_solve"], [4.0])


def test_outcomes_count_an_unsolved_game_and_its_charged_turns():
  game = games.make("twenty_questions", num_secrets=16, max_questions=3, question_cost=0.1)
  state = game_lib.init(game, jax.random.key(0))
  opening = state.length
  wrong = (int(state.hidden["one"]["secret"]) + 1) % 16
  for tok in vocab.encode(f"={wrong}⟨eot⟩no⟨eot⟩={wrong}⟨eot⟩no⟨eot⟩={wrong}⟨eot⟩"):
    state, _ = game_lib.step(game, state, jnp.int32(tok))
  assert bool(state.done)
  batch = lambda x: x[None]
  traj = game_lib.Trajectory(batch(state.tokens), batch(state.owner), None, None, None,
                             batch(opening), batch(state.length), batch(state.returns), None)
  results = twenty_questions.outcomes(game, traj)
  assert not bool(results["solved"][0]) and int(results["charged"][0]) == 3
  np.testing.assert_allclose(results["payoff"], [-0.3], atol=1e-6)


def _summary(**rl):
  """Claim 6's inputs: the clones' payoffs 0.25 (average) and 0.5 (expert), and ``rl``'s
  policies as ``(algorithm, per-turn rewards, final payoff, payoff curve)``; stds 0.0625."""
  policy = lambda payoff, **s: {"sampled": {"payoff": {"mean": payoff, "std": 0.0625}}, **s}
  policies = {"clone_average": policy(0.25), "clone_expert": policy(0.5)}
  for name, (algorithm, per_turn, payoff, _) in rl.items():
    policies[name] = policy(payoff, algorithm=algorithm, per_turn_rewards=per_turn)
  return {"policies": policies, "curves": {n: {"mean": curve} for n, (*_, curve) in rl.items()}}


def test_verdict_per_turn_rewards_beat_terminal_ones_beyond_the_spread():
  v = twenty_questions.verdict(_summary(rl_ppo_terminal=("ppo", False, 0.5, [0.0, 0.25]),
                                        rl_ppo_per_turn=("ppo", True, 0.75, [0.25, 0.75])))
  assert v == {
      "rl_beats_clone_average": {"rl_ppo_terminal": True, "rl_ppo_per_turn": True},
      "rl_beats_clone_expert": {"rl_ppo_terminal": False, "rl_ppo_per_turn": True},
      "mean_payoff_over_iterations": {"rl_ppo_terminal": 0.125, "rl_ppo_per_turn": 0.5},
      "ppo: per_turn - terminal": {"final": 0.25, "over_iterations": 0.375,
                                   "final_beyond_spread": True}}


def test_verdict_per_turn_gain_within_the_spread_is_not_beyond_it():
  # 0.625 - 0.0625 = 0.5 + 0.0625: the seeds' spreads touch.
  v = twenty_questions.verdict(_summary(rl_ppo_terminal=("ppo", False, 0.5, [0.5]),
                                        rl_ppo_per_turn=("ppo", True, 0.625, [0.25])))
  assert v == {
      "rl_beats_clone_average": {"rl_ppo_terminal": True, "rl_ppo_per_turn": True},
      "rl_beats_clone_expert": {"rl_ppo_terminal": False, "rl_ppo_per_turn": False},
      "mean_payoff_over_iterations": {"rl_ppo_terminal": 0.5, "rl_ppo_per_turn": 0.25},
      "ppo: per_turn - terminal": {"final": 0.125, "over_iterations": -0.25,
                                   "final_beyond_spread": False}}


def test_verdict_terminal_rewards_ahead_beyond_the_spread_is_a_difference_too():
  v = twenty_questions.verdict(_summary(rl_grpo_terminal=("grpo", False, 0.75, [0.5]),
                                        rl_grpo_per_turn=("grpo", True, 0.25, [0.5])))
  assert v["grpo: per_turn - terminal"] == {"final": -0.5, "over_iterations": 0.0,
                                            "final_beyond_spread": True}
  assert v["rl_beats_clone_average"] == {"rl_grpo_terminal": True, "rl_grpo_per_turn": False}


def test_verdict_compares_rewards_only_within_an_algorithm_run_with_both():
  v = twenty_questions.verdict(_summary(rl_ppo_terminal=("ppo", False, 0.5, [0.5]),
                                        rl_rloo_per_turn=("rloo", True, 0.75, [0.5]),
                                        rl_grpo_per_turn=("grpo", True, 0.5, [0.5]),
                                        rl_grpo_terminal=("grpo", False, 0.75, [0.5])))
  assert [k for k in v if k.endswith("per_turn - terminal")] == ["grpo: per_turn - terminal"]
  assert v["grpo: per_turn - terminal"]["final"] == -0.25
