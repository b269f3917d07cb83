"""Experiments run from the command line as a user launches them (smoke variants), the
shell helpers they share, and the report written from their runs."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import common, report
from twoplayer_jax import models, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_play_smoke_prints_payoffs_and_transcripts():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:smoke"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
  assert "player two" in out and "payoff two" in out
  expert = next(line for line in out.splitlines() if line.startswith("expert"))
  assert expert.split()[1:3] == ["1.000", "1.000"]
  assert "one> " in out and "two> " in out


def test_play_smoke_plays_a_card_game_with_private_cards():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:kuhn_poker,smoke"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
  assert "untrained model" in out and "chance> kuhn" in out
  # The equilibrium player two against the heuristic player one: payoffs are chips, zero-sum.
  expert = next(line for line in out.splitlines() if line.startswith("expert")).split()
  assert float(expert[1]) == -float(expert[2])


def test_unknown_variant_is_named():
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.play", "--config", "configs/play.py:large"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "unknown variant 'large'" in proc.stderr
  assert "kuhn_poker" in proc.stderr  # The registered games are listed.


# The shell helpers the multi-stage experiments share.

TINY = models.TransformerConfig(num_layers=1, d_model=16, num_heads=2, d_ff=32, max_length=8)


def test_seeded_update_equals_each_seed_alone():
  model = models.make(TINY)
  tx = train.optimizer(1e-2, total_steps=10)
  update = train.imitation_step(model, tx)
  tokens = jax.random.randint(jax.random.key(0), (3, 4, 8), 0, 256)
  batch = {"tokens": tokens, "weights": jnp.ones((3, 4, 8))}
  states = common.init_states(model, tx, seed=5, num_seeds=3)
  alone = [update(jax.tree.map(lambda x: x[i], states), jax.tree.map(lambda x: x[i], batch))
           for i in range(3)]
  stacked, metrics = common.seeded(update)(states, batch)
  for i, (state, m) in enumerate(alone):
    for a, b in zip(jax.tree.leaves(state.params),
                    jax.tree.leaves(jax.tree.map(lambda x: x[i], stacked.params))):
      np.testing.assert_allclose(a, b, atol=1e-5)
  np.testing.assert_allclose(metrics["loss"], np.mean([m["loss"] for _, m in alone]), rtol=1e-5)


def test_init_states_draws_distinct_seeds_and_takes_given_params():
  model = models.make(TINY)
  tx = train.optimizer(1e-2, total_steps=10)
  states = common.init_states(model, tx, seed=0, num_seeds=2)
  leaves = jax.tree.leaves(states.params)
  assert all(leaf.shape[0] == 2 for leaf in leaves)
  assert not all(np.allclose(leaf[0], leaf[1]) for leaf in leaves)
  again = common.init_states(model, tx, seed=9, num_seeds=2, params=states.params)
  for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(states.params)):
    np.testing.assert_array_equal(a, b)
  assert again.step.shape == (2,)


def test_transplant_keeps_the_head_and_takes_the_body():
  policy = models.make(TINY).init(jax.random.key(0))
  scorer = models.make(dataclasses.replace(TINY, scalar_head=True))
  fresh = scorer.init(jax.random.key(1))
  merged = common.transplant(fresh, policy)
  paths = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(policy)}
  taken = kept = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(merged):
    key = jax.tree_util.keystr(path)
    if key in paths:
      np.testing.assert_array_equal(leaf, paths[key])
      taken += 1
    else:
      kept += 1
  assert taken == len(paths) and kept > 0


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, smoke_env):
  """The pipeline's smoke variant run twice in one workdir: the second reuses the stages."""
  root = tmp_path_factory.mktemp("pipeline")
  args = [sys.executable, "-m", "experiments.pipeline", "--config", "configs/pipeline.py:smoke",
          "--workdir", str(root / "pipeline"), f"--config.data_dir={root / 'data'}"]
  first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=smoke_env)
  assert first.returncode == 0, first.stderr[-3000:]
  with open(root / "pipeline" / "summary.json") as f:
    summary = json.load(f)
  second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=smoke_env)
  assert second.returncode == 0, second.stderr[-3000:]
  with open(root / "pipeline" / "summary.json") as f:
    again = json.load(f)
  return root, first.stdout, summary, again


def test_pipeline_smoke_writes_its_table_and_summary(pipeline_run):
  root, out, summary, _ = pipeline_run
  assert "stage" in out and "KL to sft" in out and "claim 1" in out
  assert summary["command"].startswith("python -m experiments.pipeline --config")
  assert list(summary["stages"]) == ["pretrain", "sft", "rlhf", "rl_payoff"]
  for stage in summary["stages"].values():
    for key in ("payoff", "payoff_greedy", "reward_model_score", "kl_to_sft"):
      assert len(stage[key]["seeds"]) == 2 and np.all(np.isfinite(stage[key]["seeds"]))
    assert 0 <= stage["payoff"]["mean"] <= 1 and stage["tokens"] > 0 and stage["seconds"] > 0
  # The sft policy is the KL's reference: its KL to itself is zero (exactly, up to float).
  assert abs(summary["stages"]["sft"]["kl_to_sft"]["mean"]) < 1e-4
  assert summary["demonstrators"]["expert"] == 1.0
  assert 0.6 < summary["demonstrators"]["average"] < 0.95  # Right 80% of the time.
  tokens = [summary["stages"][n]["tokens"] for n in ("pretrain", "sft", "rlhf")]
  assert tokens == sorted(tokens) and len(set(tokens)) == 3  # Stages add up.
  for stage in ("pretrain", "sft", "reward_model", "rlhf", "rl_payoff"):
    assert (root / "pipeline" / stage / "metrics.jsonl").exists()
    assert list((root / "pipeline" / stage).glob("events.out.tfevents.*"))


def test_pipeline_run_again_reuses_its_stages(pipeline_run):
  _, _, summary, again = pipeline_run
  for name, stage in summary["stages"].items():
    assert again["stages"][name]["payoff"] == stage["payoff"]
    assert again["stages"][name]["seconds"] == stage["seconds"]  # Not trained again.


def test_report_writes_results_from_the_summaries(pipeline_run, tmp_path):
  root, _, summary, _ = pipeline_run
  text = report.results(str(root), str(tmp_path))
  assert "## pipeline" in text and summary["command"] in text
  assert "Not run yet: `python -m experiments.red_team" in text
  assert f"{summary['stages']['sft']['payoff']['mean']:.3f}" in text
  assert (tmp_path / "results" / "pipeline_stages.png").stat().st_size > 1000
