"""Objectives against ground truth: gradients, advantages, estimators, losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import objectives


def test_ppo_gradient_equals_reinforce_gradient_at_ratio_one():
  logp = jax.random.normal(jax.random.key(0), (4, 6)) - 2.0
  adv = jax.random.normal(jax.random.key(1), (4, 6))
  mask = jax.random.bernoulli(jax.random.key(2), 0.6, (4, 6)).astype(jnp.float32)
  ppo = jax.jit(jax.grad(lambda lp: objectives.ppo_loss(lp, logp, adv, mask, 0.2)[0]))(logp)
  reinforce = jax.jit(jax.grad(lambda lp: objectives.reinforce_loss(lp, adv, mask)))(logp)
  np.testing.assert_allclose(ppo, reinforce, atol=1e-7)
  assert float(jnp.abs(reinforce).sum()) > 0


def test_ppo_clips_the_ratio():
  old = jnp.zeros((1, 2))
  new = jnp.log(jnp.array([[2.0, 0.5]]))  # Ratios 2 and 0.5, both outside [0.8, 1.2].
  adv = jnp.array([[1.0, -1.0]])
  grad = jax.grad(lambda lp: objectives.ppo_loss(lp, old, adv, jnp.ones((1, 2)), 0.2)[0])(new)
  np.testing.assert_array_equal(grad, 0.0)
  _, metrics = objectives.ppo_loss(new, old, adv, jnp.ones((1, 2)), 0.2)
  assert float(metrics["clip_fraction"]) == 1.0


def test_gae_with_gamma_lambda_one_is_reward_to_go_minus_value():
  # The learner writes tokens 1, 2, 5, 6; the opponent 3, 4, 7 and is paid at token 7.
  mask = jnp.array([[0, 1, 1, 0, 0, 1, 1, 0]], jnp.float32)
  rewards = jnp.array([[0, 0.5, 0, 0, 0.25, 0, 0, 2.0]])
  values = jnp.array([[0, 0.1, 0.2, 9, 9, 0.3, 0.4, 9]])
  adv, returns = jax.jit(objectives.gae, static_argnums=(3, 4))(rewards, values, mask, 1.0, 1.0)
  to_go = jnp.cumsum(rewards[:, ::-1], axis=1)[:, ::-1]
  np.testing.assert_allclose(adv, mask * (to_go - values), atol=1e-6)
  np.testing.assert_allclose(returns, mask * to_go, atol=1e-6)


def test_gae_discounts_learner_steps_not_opponent_tokens():
  mask = jnp.array([[1, 0, 0, 0, 1, 0]], jnp.float32)
  rewards = jnp.array([[0, 0, 0, 0, 0, 1.0]])  # Paid at the opponent's last token.
  adv, _ = objectives.gae(rewards, jnp.zeros((1, 6)), mask, gamma=0.5, lam=1.0)
  # Two learner steps: the last is paid 1 undiscounted, the first 0.5 (one step back).
  np.testing.assert_allclose(adv, [[0.5, 0, 0, 0, 1.0, 0]], atol=1e-6)


@pytest.mark.parametrize("estimator", [objectives.rloo, objectives.grpo])
def test_group_advantages_sum_to_zero_in_each_group(estimator):
  returns = jax.random.normal(jax.random.key(3), (24,))
  adv = jax.jit(estimator, static_argnums=1)(returns, 6)
  np.testing.assert_allclose(adv.reshape(4, 6).sum(1), 0.0, atol=1e-5)
  assert float(jnp.abs(adv).sum()) > 0
  with pytest.raises(ValueError, match="group_size=5 must divide"):
    estimator(returns, 5)


def test_rloo_is_return_minus_mean_of_the_others():
  adv = objectives.rloo(jnp.array([1.0, 2.0, 3.0, 10.0]), 2)
  np.testing.assert_allclose(adv, [-1.0, 1.0, -7.0, 7.0])


def test_other_roles_tokens_get_exactly_zero_gradient():
  logits = jax.random.normal(jax.random.key(4), (2, 7, 260))
  tokens = jax.random.randint(jax.random.key(5), (2, 8), 0, 256)
  owner = jnp.array([[0, 1, 1, 2, 2, 1, 2, 2]] * 2)
  weights = objectives.imitation_weights(tokens, owner, jnp.array([8, 6]), 2)
  grad = jax.grad(lambda lg: objectives.imitation_loss(lg, tokens, weights)[0])(logits)
  predicts_two = np.asarray(weights[:, 1:] > 0)
  assert (np.abs(np.asarray(grad))[~predicts_two].max()) == 0.0
  assert (np.abs(np.asarray(grad))[predicts_two].sum(-1) > 0).all()


def test_imitation_loss_is_normalised_over_tokens_not_padding():
  logits = jnp.zeros((2, 5, 260))  # Uniform over the 258 writable tokens.
  tokens = jnp.ones((2, 6), jnp.int32)
  owner = jnp.full((2, 6), 2)
  weights = objectives.imitation_weights(tokens, owner, jnp.array([6, 3]), 2)
  assert float(weights.sum()) == 5 + 2
  loss, metrics = objectives.imitation_loss(logits, tokens, weights)
  np.testing.assert_allclose(loss, np.log(258), rtol=1e-6)
  empty, _ = objectives.imitation_loss(logits, tokens, jnp.zeros((2, 6)))
  assert float(empty) == 0.0 and int(metrics["tokens"]) == 7


def test_k3_estimate_matches_the_exact_kl_of_two_categoricals():
  p = jnp.array([0.5, 0.3, 0.15, 0.05])
  q = jnp.array([0.25, 0.25, 0.25, 0.25])
  samples = jax.random.categorical(jax.random.key(6), jnp.log(p), shape=(200_000,))
  estimate = objectives.kl(jnp.log(p)[samples], jnp.log(q)[samples], "k3")
  exact = float(jnp.sum(p * jnp.log(p / q)))
  stderr = float(jnp.std(estimate)) / np.sqrt(samples.shape[0])
  assert abs(float(jnp.mean(estimate)) - exact) < 4 * stderr
  assert float(estimate.min()) >= 0
  k1 = objectives.kl(jnp.log(p)[samples], jnp.log(q)[samples], "k1")
  assert abs(float(jnp.mean(k1)) - exact) < 0.01
  with pytest.raises(ValueError, match="estimator"):
    objectives.kl(p, q, "k2")


def test_bradley_terry_recovers_the_order_of_a_known_linear_score():
  rng = np.random.default_rng(0)
  true_w = rng.normal(size=5)
  a, b = rng.normal(size=(2, 2000, 5))
  prefer_a = rng.random(2000) < 1 / (1 + np.exp(-(a - b) @ true_w))
  chosen, rejected = np.where(prefer_a[:, None], a, b), np.where(prefer_a[:, None], b, a)

  @jax.jit
  def step(w):
    loss = lambda w: objectives.bradley_terry_loss(chosen @ w, rejected @ w)[0]
    return w - 0.5 * jax.grad(loss)(w)

  w = jnp.zeros(5)
  for _ in range(300):
    w = step(w)
  test = rng.normal(size=(500, 5))
  agree = np.corrcoef(test @ np.asarray(w), test @ true_w)[0, 1]
  assert agree > 0.98
  _, metrics = objectives.bradley_terry_loss(chosen @ w, rejected @ w)
  assert 0.6 < float(metrics["accuracy"]) < 1.0


def test_dpo_and_ipo_prefer_raising_the_chosen():
  zeros = jnp.zeros(3)
  for kind in ("dpo", "ipo"):
    g_chosen, g_rejected = jax.grad(
        lambda c, r: objectives.preference_loss(c, r, zeros, zeros, 0.1, kind)[0],
        argnums=(0, 1))(zeros, zeros)
    assert (g_chosen < 0).all() and (g_rejected > 0).all()
  with pytest.raises(ValueError, match="kind"):
    objectives.preference_loss(zeros, zeros, zeros, zeros, 0.1, "kto")


def test_mismatched_shapes_are_named():
  with pytest.raises(ValueError, match="logits"):
    objectives.token_logprobs(jnp.zeros((2, 8, 260)), jnp.zeros((2, 8), jnp.int32))
  with pytest.raises(ValueError, match="same shape"):
    objectives.masked_mean(jnp.zeros((2, 8)), jnp.zeros((2, 7)))
  with pytest.raises(ValueError, match=r"\[batch, length\]"):
    objectives.gae(jnp.zeros((2, 8)), jnp.zeros((2, 8)), jnp.zeros((2, 9)))
  with pytest.raises(ValueError, match="chosen"):
    objectives.bradley_terry_loss(jnp.zeros(3), jnp.zeros(4))
