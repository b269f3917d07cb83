"""Stages as values and the one runner: seeds side by side, reuse of finished stages,
preemption mid-stage resumed bitwise, the config blocks' fields checked."""

import dataclasses
import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import batches, games, models, sharding, train
from twoplayer_jax.data import pipeline
from twoplayer_jax.train import runner as runner_lib
from twoplayer_jax.train import stages

TINY = models.TransformerConfig(num_layers=1, d_model=16, num_heads=2, d_ff=32, max_length=8)
SEEDS = 2


class Batches:
  """Random transcripts ``[S * B, 8]``, a pure function of the position; sends SIGTERM
  to this process when asked for batch ``stop_at``."""

  def __init__(self, rows, stop_at=None):
    self.rows, self.stop_at, self.position = rows, stop_at, 0

  def __iter__(self):
    return self

  def __next__(self):
    if self.position == self.stop_at:
      os.kill(os.getpid(), signal.SIGTERM)
    rng = np.random.default_rng(self.position)
    self.position += 1
    return batches.Turns(rng.integers(0, 256, (self.rows, 8), dtype=np.int32),
                         np.ones((self.rows, 8), np.float32))

  def get_state(self):
    return {"position": self.position}

  def set_state(self, state):
    self.position = state["position"]


CLONE = stages.imitation("clone", models.make(TINY), dict(steps=6, batch_size=4,
                                                          learning_rate=1e-2, warmup_steps=1),
                         None, seed=3, num_seeds=SEEDS, seq_len=8)


def clone(stop_at=None):
  """The cloning stage reading ``Batches``; one update for every test (compiled once)."""
  return dataclasses.replace(
      CLONE, batches=lambda: stages.PerSeed(Batches(SEEDS * 4, stop_at), SEEDS))


def test_imitation_names_a_seq_len_other_than_its_games_rows():
  games = pipeline.InMemory([], seq_len=16)
  with pytest.raises(ValueError, match="stage clone: seq_len=8, but the games in memory are "
                     "held in rows of 16 tokens"):
    stages.imitation("clone", models.make(TINY), dict(steps=1, batch_size=4, learning_rate=1e-2),
                     games, seed=0, num_seeds=SEEDS, seq_len=8)


def run(workdir, stage):
  with runner_lib.Runner(str(workdir), sharding.make_mesh(), SEEDS, log_every=1,
                         checkpoint_every=2) as run_:
    return run_(stage), run_.records


def assert_equal(a, b):
  """Bitwise equal pytrees (PRNG keys by their bits)."""
  bits = lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(bits(x), bits(y)), a, b)


def test_over_seeds_equals_each_seed_alone():
  model = models.make(TINY)
  tx = train.optimizer(1e-2, total_steps=10)
  update = train.imitation_step(model, tx)
  tokens = jax.random.randint(jax.random.key(0), (3, 4, 8), 0, 256)
  batch = batches.Turns(tokens, jnp.ones((3, 4, 8)))
  states = stages.fresh_states(model, tx, seed=5, num_seeds=3)(None)
  alone = [jax.jit(update)(jax.tree.map(lambda x: x[i], states),
                           jax.tree.map(lambda x: x[i], batch)) for i in range(3)]
  stacked, metrics = jax.jit(stages.over_seeds(update))(states, batch)
  for i, (state, m) in enumerate(alone):
    for a, b in zip(jax.tree.leaves(state.params),
                    jax.tree.leaves(jax.tree.map(lambda x: x[i], stacked.params))):
      np.testing.assert_allclose(a, b, atol=1e-5)
  np.testing.assert_allclose(metrics["loss"], np.mean([m["loss"] for _, m in alone]), rtol=1e-5)


def test_fresh_states_draw_distinct_seeds_and_take_given_params():
  model = models.make(TINY)
  tx = train.optimizer(1e-2, total_steps=10)
  states = stages.fresh_states(model, tx, seed=0, num_seeds=2)(None)
  leaves = jax.tree.leaves(states.params)
  assert all(leaf.shape[0] == 2 for leaf in leaves)
  assert not all(np.allclose(leaf[0], leaf[1]) for leaf in leaves)
  again = stages.fresh_states(model, tx, seed=9, num_seeds=2)(states.params)
  assert_equal(again.params, states.params)
  assert again.step.shape == (2,)


def test_transplant_keeps_the_head_and_takes_the_body():
  policy = models.make(TINY).init(jax.random.key(0))
  scorer = models.make(dataclasses.replace(TINY, scalar_head=True))
  merged = stages.transplant(scorer.init(jax.random.key(1)), policy)
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


def test_a_finished_stage_is_reused_not_trained_again(tmp_path):
  states, records = run(tmp_path, clone())
  assert int(states.step[0]) == 6 and records["clone"]["tokens"] == 6 * 4 * 8
  again, records_again = run(tmp_path, clone(stop_at=0))  # Would stop if it read a batch.
  assert_equal(again, states)
  assert records_again == records

  def unbuilt():
    raise AssertionError("a finished stage built its data")

  again, _ = run(tmp_path, dataclasses.replace(clone(), batches=unbuilt))
  assert_equal(again, states)


class OtherPipeline(Batches):
  """The same batches with another saved position's format (as Grain's iterators have)."""

  def get_state(self):
    return {"next_index": self.position}

  def set_state(self, state):
    self.position = state["next_index"]


def other_pipeline(stage):
  return dataclasses.replace(
      stage, batches=lambda: stages.PerSeed(OtherPipeline(SEEDS * 4), SEEDS))


def test_a_finished_stage_is_reused_whatever_pipeline_wrote_its_position(tmp_path):
  states, _ = run(tmp_path, clone())
  again, _ = run(tmp_path, other_pipeline(clone()))
  assert_equal(again, states)


def test_resuming_from_another_pipelines_position_is_named(tmp_path):
  with runner_lib.Runner(str(tmp_path), sharding.make_mesh(), SEEDS, checkpoint_every=4,
                         sync_every=1) as run_:
    run_(clone(stop_at=2))
  with pytest.raises(ValueError, match=r"stage clone: the data position saved at step 3 .* "
                     r"does not fit this stage's input pipeline \(KeyError: 'next_index'\)"):
    run(tmp_path, other_pipeline(clone()))
  # Nothing written is lost: the saved step is still there to resume with the old pipeline.
  assert os.listdir(tmp_path / "clone" / "checkpoints") == ["3"]
  resumed, _ = run(tmp_path, clone())
  assert int(resumed.step[0]) == 6


def test_sigterm_mid_stage_saves_that_step_and_the_rerun_is_bitwise(tmp_path, capsys):
  whole, _ = run(tmp_path / "whole", clone())
  with runner_lib.Runner(str(tmp_path / "cut"), sharding.make_mesh(), SEEDS,
                         checkpoint_every=4, sync_every=1) as run_:
    run_(clone(stop_at=2))  # SIGTERM while step 3's batch is read.
    raise AssertionError("a preempted stage must not return")
  assert "preempted in stage clone: saved step 3" in capsys.readouterr().out
  # SIGTERM is ours only inside the block: the handler before it is back.
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
  assert sorted(os.listdir(tmp_path / "cut" / "clone" / "checkpoints")) == ["3"]
  with open(tmp_path / "cut" / "clone" / "checkpoints" / "3" / "data" /
            "process_0-of-1.json") as f:
    saved = json.load(f)
  assert saved["data"] == {"position": 3} and saved["seconds"] > 0
  resumed, records = run(tmp_path / "cut", clone())
  assert "stage clone: resumed at step 3" in capsys.readouterr().out
  assert_equal(resumed, whole)
  # The stage's training time counts both runs: the first run's seconds, then more.
  assert records["clone"]["seconds"] > saved["seconds"]


def test_a_policy_stage_preempted_resumes_bitwise(tmp_path):
  game = games.make("arithmetic", num_digits=1)
  model = models.make(dataclasses.replace(TINY, max_length=game.max_length))
  block = dict(iterations=4, num_openings=2, group_size=2, learning_rate=1e-3, entropy_coef=0.01)
  human = games.player("arithmetic", 1, "human", game)
  stage = stages.policy("rl", game, model, block, human, seed=1, num_seeds=SEEDS)
  whole, records = run(tmp_path / "whole", stage)
  assert records["rl"]["tokens"] == 4 * 4 * game.max_length

  class StopAt(Batches):
    def __next__(self):
      super().__next__()
      return stage.fixed

  cut = dataclasses.replace(stage, batches=lambda: StopAt(0, stop_at=2))  # In step 3.
  with runner_lib.Runner(str(tmp_path / "cut"), sharding.make_mesh(), SEEDS,
                         checkpoint_every=8, sync_every=1) as run_:
    run_(cut)
  assert os.listdir(tmp_path / "cut" / "rl" / "checkpoints") == ["3"]
  resumed, _ = run(tmp_path / "cut", stage)
  assert_equal(resumed, whole)


def test_a_block_with_an_unknown_field_is_named():
  with pytest.raises(ValueError, match="stage clone: unknown field 'learning_rte'"):
    stages.imitation("clone", models.make(TINY), dict(steps=1, batch_size=1, learning_rte=1),
                     Batches(1), seed=0, num_seeds=1, seq_len=8)
  game = games.make("arithmetic", num_digits=1)
  with pytest.raises(ValueError, match="stage rl: unknown field 'kl'"):
    stages.policy("rl", game, models.make(TINY), dict(iterations=1, clip_eps=0.1, kl=1),
                  None, seed=0, num_seeds=1, play="self_play")
  settings = stages.rl_settings(dict(iterations=1, clip_eps=0.1, learning_rate=1.0), "rl",
                                role=1)
  assert settings.clip_eps == 0.1 and settings.role == 1
  # An experiment checks every block before it trains anything.
  with pytest.raises(ValueError, match="config.rl: RLSettings.algorithm must be one of"):
    stages.check("policy", dict(iterations=1, learning_rate=1.0, algorithm="sac"), "config.rl")
  with pytest.raises(ValueError, match="config.sft: missing field 'batch_size'"):
    stages.check("imitation", dict(steps=1, learning_rate=1.0), "config.sft")
  stages.check("policy", dict(iterations=1, learning_rate=1.0, kl_coef=0.1), "config.rl",
               reward_source="model")


def test_states_without_the_seed_axis_are_refused(tmp_path):
  stage = dataclasses.replace(clone(), init=lambda start: {"w": jnp.zeros(3), "step": 0})
  with pytest.raises(ValueError, match="lacks the leading seed axis"):
    run(tmp_path, stage)
