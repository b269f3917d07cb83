"""The prompting experiment (claim 9): its smoke run as launched and reported, the
well-formed prompt check, its config checks, and the verdict on synthetic summaries."""

import jax
import matplotlib
import numpy as np
import pytest

from configs import prompting as config_lib
from experiments import common, launch, prompting
from twoplayer_jax import games, rollout, vocab

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def summary(tmp_path_factory, run_smoke):
  """The summary of the smoke variant's run."""
  return run_smoke("prompting", tmp_path_factory.mktemp("prompting"))[0]


def test_summary_measures_every_prompter_per_seed(summary):
  c = config_lib.get_config("smoke")
  assert list(summary["prompters"]) == list(prompting.PROMPTERS)
  for m in summary["prompters"].values():
    for key in ("accuracy", "shows_query", "well_formed"):
      assert len(m[key]["seeds"]) == c.num_seeds and all(0 <= x <= 1 for x in m[key]["seeds"])
  teacher, human = summary["prompters"]["teacher"], summary["prompters"]["human"]
  # The optimum always shows the query and the copier then always answers right; the
  # random prompter's prompts are well formed and show it about as often as chance does.
  assert teacher["accuracy"]["mean"] == teacher["shows_query"]["mean"] == 1.0
  assert human["well_formed"]["mean"] == 1.0 and human["accuracy"]["mean"] < 1.0
  d = summary["learned_minus_human"]
  assert d["mean"] == pytest.approx(np.mean(np.subtract(
      summary["prompters"]["learned"]["accuracy"]["seeds"], human["accuracy"]["seeds"])))
  assert len(summary["curve"]["step"]) == len(summary["curve"]["band"]["mean"]) > 0
  assert set(summary["stages"]) == {"clone", "prompting"}
  assert summary["verdict"]["outcome"] in ("confirmed", "not confirmed",
                                           "inconclusive: not learned")


def test_report_writes_table_rule_and_plot(summary, tmp_path, save_figure):
  markdown = prompting.report(summary, save_figure)
  assert "| teacher |" in markdown and summary["rule"] in markdown
  assert "Claim 9 by this rule: **" in markdown
  assert "](payoff.png)" in markdown and (tmp_path / "payoff.png").stat().st_size > 1000


def test_well_formed_accepts_true_prompts_only():
  game = games.make("in_context", word_length=1, num_letters=8, num_examples=4, prompted=True)
  copier = games.player("in_context", 2, "copier", game)
  traj = jax.device_get(rollout.play(game, (games.player("in_context", 1, "human", game), copier),
                                     (None, None), jax.random.key(0), 64))
  tokens, length = np.asarray(traj.tokens), np.asarray(traj.length)
  rule, query = traj.hidden["rule"], traj.hidden["query"]
  assert prompting.well_formed(tokens, length, rule, query, game).all()
  wrong_output, wrong_query, cut = tokens.copy(), tokens.copy(), tokens.copy()
  wrong_output[:, 3] = ord("a") + (tokens[:, 3] - ord("a") + 1) % 8  # First example's output.
  wrong_query[:, 17] = ord("a") + (tokens[:, 17] - ord("a") + 1) % 8
  cut[:, 18] = vocab.EOT  # The query's ">" replaced: the turn ends early.
  for bad in (wrong_output, wrong_query, cut):
    assert not prompting.well_formed(bad, length, rule, query, game).any()


def test_checks_name_what_cannot_run():
  prompting.check(config_lib.get_config())
  for field, value, match in (("listener", "oracle", "config.listener='oracle'"),
                              ("num_seeds", 1, "two seeds or more")):
    c = config_lib.get_config()
    c[field] = value
    with pytest.raises(launch.ConfigError, match=match):
      prompting.check(c)
  for block in ("rl", "clone"):
    c = config_lib.get_config()
    c[block].clip = 0.1
    with pytest.raises(launch.ConfigError, match=f"config.{block}: unknown field 'clip'"):
      prompting.check(c)


def _summary(learned=(0.9, 0.8, 0.85), human=(0.55, 0.5, 0.52), formed=0.95):
  learned, human = np.asarray(learned), np.asarray(human)
  return {"verdict_settings": {"well_formed_fraction": 0.9},
          "prompters": {"clone": {"well_formed": common.interval(np.full(3, formed))}},
          "learned_minus_human": common.interval(learned - human)}


def test_verdict_follows_the_rule():
  assert prompting.verdict(_summary())["outcome"] == "confirmed"
  assert prompting.verdict(_summary(learned=(0.5, 0.6, 0.4)))["outcome"] == "not confirmed"
  assert (prompting.verdict(_summary(formed=0.5))["outcome"]
          == "inconclusive: not learned")
