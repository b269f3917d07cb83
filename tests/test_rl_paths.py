"""Every documented path of the RL iteration executed, each checked for what it does.

The objectives themselves are pinned against numpy in test_objectives_oracle.py; these
tests pin how the iteration wires them (which estimator, with which gamma and lambda, with
or without the baseline, the clip, the KL, the whitening, the reward model), on the
one-digit arithmetic game with a small model.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from twoplayer_jax import batches, games, models, objectives, players, rollout, train
from twoplayer_jax.train import rl

GAME = games.make("arithmetic", num_digits=1)
HUMAN = games.player("arithmetic", 1, "human", GAME)
MODEL = models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                             max_length=GAME.max_length, scalar_head=True))
SMALL = dict(num_openings=4, group_size=4)


@functools.cache
def start(steps=60):
  """The policy every iteration starts from, trained once, when a test first asks:
  cloned from a few batches of expert play, so that its games' payoffs differ, with a
  random value head, so that its values do too."""
  expert = games.player("arithmetic", 2, "expert", GAME)
  tx = train.optimizer(3e-3, 300, warmup_steps=30)
  update = jax.jit(train.imitation_step(MODEL, tx))
  state = train.create(MODEL.init(jax.random.key(0)), tx, jax.random.key(1))
  for i in range(steps):
    traj = rollout.play(GAME, (HUMAN, expert), (None, None), jax.random.key(100 + i), 64)
    state, _ = update(state, batches.Turns(traj.tokens, objectives.imitation_weights(
        traj.tokens, traj.owner, traj.length, 2)))
  head = 0.5 * jax.random.normal(jax.random.key(2), state.params["scalar_head"].shape)
  return {**state.params, "scalar_head": head}



def random_rows(seed, batch=8, length=12):
  """``[B, T]`` rewards, values and a learner mask with opponent tokens in between."""
  rng = np.random.default_rng(seed)
  rewards = rng.normal(size=(batch, length)).astype(np.float32)
  values = rng.normal(size=(batch, length)).astype(np.float32)
  mask = (rng.random((batch, length)) < 0.6).astype(np.float32)
  mask[:, 0] = 1.0  # Every row has a learner token.
  return jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(mask)


def test_each_estimator_gets_its_advantages_and_value_targets():
  rewards, values, mask = random_rows(0)
  total = np.asarray(rewards).sum(1)
  advantages = lambda **kw: rl._advantages(rewards, values, mask, train.RLSettings(**kw))

  adv, returns = advantages(algorithm="reinforce")
  np.testing.assert_allclose(adv, (total - total.mean())[:, None] * mask, atol=1e-5)
  np.testing.assert_array_equal(returns, 0.0)

  adv, _ = advantages(algorithm="rloo", group_size=4)
  groups = total.reshape(-1, 4)
  others = (groups.sum(1, keepdims=True) - groups) / 3
  np.testing.assert_allclose(adv, (groups - others).reshape(-1)[:, None] * mask, atol=1e-5)

  adv, _ = advantages(algorithm="grpo", group_size=4, grpo_std="sample", grpo_eps=0.0)
  scaled = (groups - groups.mean(1, keepdims=True)) / groups.std(1, ddof=1, keepdims=True)
  np.testing.assert_allclose(adv, scaled.reshape(-1)[:, None] * mask, atol=1e-5)

  # PPO: GAE with the settings' gamma and lambda; the value baseline: GAE with lambda 1.
  for kw, lam in ((dict(algorithm="ppo"), 0.7), (dict(algorithm="reinforce", baseline="value"),
                                                 1.0)):
    adv, returns = advantages(gamma=0.9, lam=0.7, **kw)
    want_adv, want_returns = objectives.gae(rewards, values, mask, 0.9, lam)
    np.testing.assert_allclose(adv, want_adv, atol=1e-5)
    np.testing.assert_allclose(returns, want_returns, atol=1e-5)
  assert not np.allclose(*[advantages(algorithm="ppo", gamma=0.9, lam=lam)[0]
                           for lam in (0.7, 1.0)])


def test_normalized_advantages_are_white_over_the_learners_tokens():
  rewards, values, mask = random_rows(1)
  raw, _ = rl._advantages(rewards, values, mask, train.RLSettings(algorithm="ppo"))
  adv, _ = rl._advantages(rewards, values, mask,
                          train.RLSettings(algorithm="ppo", normalize_advantages=True))
  m = np.asarray(mask, bool)
  mine = np.asarray(raw)[m]
  np.testing.assert_allclose(np.asarray(adv)[m], (mine - mine.mean()) / mine.std(), atol=1e-4)
  np.testing.assert_array_equal(np.asarray(adv)[~m], 0.0)


@pytest.fixture(scope="module")
def traj():
  two = games.player("arithmetic", 2, "average", GAME, error_rate=0.5)
  return rollout.play(GAME, (HUMAN, two), (None, None), jax.random.key(1), 8)


@pytest.mark.parametrize("source", ["payoff", "model", "sum"])
def test_rewards_from_the_payoff_the_reward_model_or_their_sum(traj, source):
  rm_params = jax.tree.map(lambda x: x + 0.3, start())  # A reward model with non-zero scores.
  _, scalars, _ = MODEL.apply(rm_params, traj.tokens, train.steps.positions_of(traj.tokens))
  scores = np.asarray(scalars)[np.arange(8), np.asarray(traj.length) - 1]
  assert np.abs(scores).min() > 0
  rewards, got_scores = rl._rewards(traj, 2, train.RLSettings(reward_source=source), MODEL,
                                    rm_params)
  learned = np.zeros(traj.tokens.shape, np.float32)
  learned[np.arange(8), np.asarray(traj.length) - 1] = scores
  payoff = np.asarray(traj.reward[..., 1])
  want = {"payoff": payoff, "model": learned, "sum": payoff + learned}[source]
  np.testing.assert_allclose(rewards, want, atol=1e-5)
  np.testing.assert_allclose(got_scores, scores, atol=1e-5)


SGD = optax.sgd(0.01)  # Small steps: one iteration moves the policy without overshooting.


@functools.cache
def iteration(settings: train.RLSettings, with_reward_model: bool = False):
  """The jitted iteration of ``settings``, built once per settings (compiled once)."""
  return jax.jit(train.make_iteration(GAME, MODEL, SGD, HUMAN, settings,
                                      reward_model=MODEL if with_reward_model else None))


def iterate(settings, fixed=train.Frozen(), with_reward_model=False):
  """One iteration from ``start()``: the new state and metrics."""
  state = train.create(start(), SGD, jax.random.key(3))
  return iteration(settings, with_reward_model)(state, fixed)


def moved(a, b):
  return not all(jax.tree.leaves(jax.tree.map(lambda x, y: np.allclose(x, y), a, b)))


def test_the_value_baseline_trains_the_value_head_and_the_batch_baseline_does_not():
  value, value_metrics = iterate(train.RLSettings(algorithm="reinforce", baseline="value",
                                                  **SMALL))
  batch, batch_metrics = iterate(train.RLSettings(algorithm="reinforce", **SMALL))
  assert 0 < float(batch_metrics["payoff_two"]) < 1  # Some games won, some lost.
  assert float(value_metrics["value_loss"]) > 0 and "value_loss" not in batch_metrics
  assert not np.allclose(value.params["scalar_head"], start()["scalar_head"])
  np.testing.assert_array_equal(batch.params["scalar_head"], start()["scalar_head"])
  assert moved(batch.params["unembed"], start()["unembed"]) and int(batch.step) == 1


def test_value_clipping_changes_the_value_loss_after_the_first_minibatch():
  """At the first minibatch the values are those of play, where the clip is inactive; in
  later ones they have moved, by more than a clip of 1e-3."""
  settings = dict(algorithm="ppo", epochs=2, minibatches=2, **SMALL)
  clipped = iterate(train.RLSettings(value_clip=1e-3, **settings))[1]["value_loss"]
  free = iterate(train.RLSettings(value_clip=None, **settings))[1]["value_loss"]
  assert np.isfinite([clipped, free]).all() and float(clipped) != pytest.approx(float(free))


def test_a_kl_in_the_reward_is_zero_at_the_reference_and_a_kl_loss_is_not():
  """With the reference equal to the learner, a k1 penalty in the reward vanishes (the
  update is that of no KL), while a k1 loss still has a gradient (the score function of
  the sampled tokens). Against another reference the penalty pulls the learner towards
  it: the exact KL to the reference over player two's moves in its own games falls below
  that after the update without the penalty. (RLOO, which learns here too: GRPO would
  divide the penalty's float noise by a group's std near 0.)"""
  at_reference = train.Frozen(reference=start())
  none = iterate(train.RLSettings(algorithm="rloo", **SMALL))[0].params
  assert moved(none, start())
  in_reward = train.RLSettings(algorithm="rloo", kl_coef=1.0, kl_estimator="k1",
                               kl_in_reward=True, **SMALL)
  same = iterate(in_reward, at_reference)[0].params
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), same, none)
  in_loss = iterate(train.RLSettings(algorithm="rloo", kl_coef=1.0, kl_estimator="k1",
                                     **SMALL), at_reference)
  assert moved(in_loss[0].params, none)

  reference = jax.tree.map(lambda x: x * 1.5, start())
  pulled = iterate(in_reward, train.Frozen(reference=reference))[0].params
  own = rollout.play(GAME, (HUMAN, players.model_player(MODEL, GAME)), (None, start()),
                     jax.random.key(5), 64)
  mine = ((own.owner == 2) & own.played).astype(jnp.float32)
  logits = lambda params: train.forward(MODEL, params, own.tokens)[0]
  kl = lambda params: float(objectives.masked_mean(
      objectives.kl_from_logits(logits(params), logits(reference)), mine))
  assert kl(pulled) < kl(none) - 0.1, (kl(pulled), kl(none))  # Measured: 0.88 and 1.37.


def test_a_frozen_kl_weight_replaces_the_settings_one_and_vmaps_over_members():
  """A KL sweep side by side: members with the same start and key, each with its own
  ``Frozen.kl_coef``, update as separate runs with that weight in ``RLSettings`` do."""
  reference = jax.tree.map(lambda x: x * 1.5, start())
  settings = dict(algorithm="rloo", kl_estimator="k1", **SMALL)
  weights = (0.5, 4.0)
  alone = [iterate(train.RLSettings(kl_coef=w, **settings), train.Frozen(reference=reference))
           for w in weights]
  stack = lambda *x: jnp.stack(x)
  states = jax.tree.map(stack, *[train.create(start(), SGD, jax.random.key(3))] * 2)
  fixed = train.Frozen(reference=jax.tree.map(stack, reference, reference),
                       kl_coef=jnp.array(weights))
  swept, metrics = jax.jit(jax.vmap(train.make_iteration(
      GAME, MODEL, SGD, HUMAN, train.RLSettings(**settings))))(states, fixed)
  assert moved(alone[0][0].params, alone[1][0].params)  # The weights matter here.
  for i, (state, alone_metrics) in enumerate(alone):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, atol=1e-5), swept.params,
                 state.params)
    np.testing.assert_allclose(metrics["kl_to_reference"][i],
                               alone_metrics["kl_to_reference"], rtol=1e-5)
  with pytest.raises(ValueError, match="Frozen.reference"):
    iterate(train.RLSettings(**settings), train.Frozen(kl_coef=jnp.float32(1.0)))


def test_the_sum_of_payoff_and_reward_model_is_learned_from():
  rm_params = jax.tree.map(lambda x: x + 0.3, start())
  fixed = train.Frozen(reward_model=rm_params)
  state, metrics = iterate(train.RLSettings(reward_source="sum", **SMALL), fixed,
                           with_reward_model=True)
  assert float(metrics["reward_model_score"]) != 0.0 and moved(state.params, start())
