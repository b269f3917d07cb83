"""Policy and value losses, their aggregation, the KL and the entropy against hand-derived
numbers: every branch of PPO's clip on both signs of the advantage, the value clip on
both sides, the three aggregations where they differ, k1 and k3 against the exact KL."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import objectives

# One token per branch: (advantage, ratio) above and below the clip for each sign of the
# advantage, then inside it; the last token is off the mask.
PPO_ADV = np.array([[1.5, 1.5, -2.0, -2.0, 1.0, -1.0, 50.0]], np.float32)
PPO_RATIO = np.array([[1.5, 0.5, 1.5, 0.5, 1.1, 0.9, 3.0]], np.float32)
PPO_MASK = np.array([[1, 1, 1, 1, 1, 1, 0]], np.float32)


def ppo_reference(ratio, adv, mask, clip_eps):
  """Loss and its gradient in log-ratio: a token follows ``r A`` (gradient ``r A``) unless
  the clipped term is the smaller, which has no gradient."""
  clipped = np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv
  unclipped = ratio * adv
  n = mask.sum()
  loss = -np.sum(np.minimum(unclipped, clipped) * mask) / n
  grad = -np.where(unclipped <= clipped, unclipped, 0.0) * mask / n
  return loss, grad


def test_ppo_on_every_branch_of_the_clip():
  old = jnp.zeros_like(PPO_RATIO)
  logp = jnp.log(PPO_RATIO)
  loss_fn = lambda lp: objectives.ppo_loss(lp, old, PPO_ADV, PPO_MASK, 0.2)
  (loss, metrics), grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(logp)
  # Surrogates min(r A, clip(r) A): [1.2 * 1.5, 0.5 * 1.5, 1.5 * -2, 0.8 * -2, 1.1, -0.9].
  np.testing.assert_allclose(loss, -(1.8 + 0.75 - 3.0 - 1.6 + 1.1 - 0.9) / 6, rtol=1e-6)
  np.testing.assert_allclose(grad, [[0, -0.75 / 6, 3.0 / 6, 0, -1.1 / 6, 0.9 / 6, 0]],
                             rtol=1e-6, atol=1e-7)
  want_loss, want_grad = ppo_reference(PPO_RATIO, PPO_ADV, PPO_MASK, 0.2)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
  np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-7)
  assert float(metrics["clip_fraction"]) == pytest.approx(4 / 6)
  k3 = PPO_RATIO - 1 - np.log(PPO_RATIO)
  np.testing.assert_allclose(metrics["approx_kl"], np.sum(k3 * PPO_MASK) / 6, rtol=1e-6)


def test_ppo_matches_numpy_on_random_tokens():
  rng = np.random.default_rng(0)
  ratio = np.exp(rng.normal(scale=0.4, size=(3, 9))).astype(np.float32)
  adv = rng.normal(size=(3, 9)).astype(np.float32)
  mask = (rng.random((3, 9)) < 0.7).astype(np.float32)
  loss_fn = lambda lp: objectives.ppo_loss(lp, jnp.zeros_like(lp), adv, mask, 0.1)[0]
  loss, grad = jax.jit(jax.value_and_grad(loss_fn))(jnp.log(ratio))
  want_loss, want_grad = ppo_reference(ratio, adv, mask, 0.1)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
  np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7)


# Per-token terms 1, 2, 3 in sequence 0 and 6 in sequence 1 (100 off the mask); sequence 2
# has no learner token.
AGG_ADV = np.array([[1, 2, 3, 100], [6, 100, 100, 100], [100, 100, 100, 100]], np.float32)
AGG_MASK = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32)
AGGREGATED = {"token_mean": (1 + 2 + 3 + 6) / 4,  # Every token of the batch.
              "sequence_mean": (2 + 6 + 0) / 3,  # Each sequence's mean, then over rows.
              "constant": (6 + 6 + 0) / (3 * 4)}  # Each sequence's sum / 4, over rows.
# d loss / d logp of each masked token, per unit of advantage.
AGG_TOKEN_WEIGHT = {"token_mean": np.full((3, 4), 1 / 4),
                    "sequence_mean": np.array([[1 / 9] * 4, [1 / 3] * 4, [0] * 4]),
                    "constant": np.full((3, 4), 1 / 12)}


@pytest.mark.parametrize("aggregation", objectives.AGGREGATIONS)
def test_aggregations_by_hand(aggregation):
  logp = -jnp.ones((3, 4))  # So that -logp * A is A.
  reinforce = jax.jit(jax.value_and_grad(functools.partial(
      objectives.reinforce_loss, aggregation=aggregation, normalizer=4)))
  loss, grad = reinforce(logp, AGG_ADV, AGG_MASK)
  np.testing.assert_allclose(loss, AGGREGATED[aggregation], rtol=1e-6)
  np.testing.assert_allclose(grad, -AGG_ADV * AGG_MASK * AGG_TOKEN_WEIGHT[aggregation],
                             rtol=1e-6)
  # PPO at ratio 1 is REINFORCE, aggregated the same way.
  ppo = jax.jit(jax.value_and_grad(lambda lp: objectives.ppo_loss(
      lp, logp, AGG_ADV, AGG_MASK, aggregation=aggregation, normalizer=4)[0]))
  ppo_loss, ppo_grad = ppo(logp)
  np.testing.assert_allclose(ppo_loss, -AGGREGATED[aggregation], rtol=1e-6)
  np.testing.assert_allclose(ppo_grad, grad, rtol=1e-6)


def test_aggregation_choices_are_checked():
  x = jnp.ones((2, 3))
  with pytest.raises(ValueError, match="normalizer"):
    objectives.aggregate(x, x, "constant")
  with pytest.raises(ValueError, match="aggregation"):
    objectives.reinforce_loss(x, x, x, aggregation="sum")


def test_value_loss_clips_moves_past_the_clip_on_both_sides():
  old = jnp.zeros((1, 6))
  values = jnp.array([[0.5, -0.5, 0.5, -0.5, 0.1, 7.0]])
  returns = jnp.array([[1.0, -1.0, 0.0, 0.0, 0.5, 0.0]])
  mask = jnp.array([[1, 1, 1, 1, 1, 0]], jnp.float32)
  loss_fn = jax.jit(jax.value_and_grad(objectives.value_loss), static_argnums=4)
  # Clipped to +-0.2 the first two err by 0.8 (more than 0.5, so kept, and no gradient);
  # the next two err less clipped (0.2) than not (0.5); the fifth moved within the clip.
  loss, grad = loss_fn(values, old, returns, mask, 0.2)
  np.testing.assert_allclose(loss, 0.5 * (0.64 + 0.64 + 0.25 + 0.25 + 0.16) / 5, rtol=1e-6)
  np.testing.assert_allclose(grad, [[0, 0, 0.1, -0.1, -0.08, 0]], rtol=1e-5, atol=1e-7)
  loss, grad = loss_fn(values, old, returns, mask, None)
  np.testing.assert_allclose(loss, 0.5 * (0.25 * 4 + 0.16) / 5, rtol=1e-6)
  np.testing.assert_allclose(grad, [[-0.1, 0.1, 0.1, -0.1, -0.08, 0]], rtol=1e-5)


# Two positions over a vocabulary of 5 of which the last may not be written.
LEGAL = np.array([[[True] * 4 + [False]] * 3])
P = np.array([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]])
Q = np.array([[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]])
# Logits of the illegal token are large: the policy never writes it, so neither counts it.
LOGITS_P = jnp.asarray(np.concatenate([np.log(P), [[5.0], [9.0]]], -1)[None], jnp.float32)
LOGITS_Q = jnp.asarray(np.concatenate([np.log(Q), [[7.0], [-3.0]]], -1)[None], jnp.float32)


def test_kl_from_logits_is_the_exact_kl_over_the_legal_tokens():
  exact = jax.jit(objectives.kl_from_logits)(LOGITS_P, LOGITS_Q, LEGAL)
  want = np.sum(P * np.log(P / Q), -1)
  np.testing.assert_allclose(exact, [[0, *want]], rtol=1e-5)
  np.testing.assert_allclose(objectives.kl_from_logits(LOGITS_P, LOGITS_P, LEGAL), 0,
                             atol=1e-7)
  # Every writable token of the game's vocabulary when legal is None.
  uniform = objectives.kl_from_logits(jnp.zeros((1, 1, 260)), jnp.zeros((1, 1, 260)))
  np.testing.assert_allclose(uniform, [[0, 0]], atol=1e-7)


def test_sampled_k1_and_k3_average_to_the_exact_kl():
  n = 50_000
  logp_policy = objectives.log_policy(LOGITS_P, LEGAL[:, 1:])
  sampled = jax.random.categorical(jax.random.key(0), logp_policy, shape=(n, 1, 2))
  tokens = jnp.concatenate([jnp.zeros((n, 1), jnp.int32), sampled[:, 0]], axis=1)
  legal = jnp.broadcast_to(LEGAL, (n, 3, 5))
  tile = lambda logits: jnp.broadcast_to(logits, (n, 2, 5))
  logp = objectives.token_logprobs(tile(LOGITS_P), tokens, legal)
  ref_logp = objectives.token_logprobs(tile(LOGITS_Q), tokens, legal)
  exact = np.asarray(objectives.kl_from_logits(LOGITS_P, LOGITS_Q, LEGAL))[0]
  for estimator in ("k1", "k3"):
    estimate = np.asarray(jax.jit(objectives.kl, static_argnums=2)(logp, ref_logp, estimator))
    for position in (1, 2):
      samples = estimate[:, position]
      stderr = samples.std() / np.sqrt(n)
      assert abs(samples.mean() - exact[position]) < 4 * stderr, (estimator, position)


def test_token_entropy_by_hand():
  logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25, 1.0], [1.0, 2.0, 3.0, 5.0]]]))
  legal = np.array([[[True] * 3 + [False]] * 3])
  # H(0.5, 0.25, 0.25) = 1.5 log 2; the second position's illegal token is left out, and
  # the probabilities 1/6, 2/6, 3/6 of the others renormalised.
  second = -sum(p * np.log(p) for p in (1 / 6, 2 / 6, 3 / 6))
  entropy = jax.jit(objectives.token_entropy)(logits, legal)
  np.testing.assert_allclose(entropy, [[0, 1.5 * np.log(2), second]], rtol=1e-6)
  np.testing.assert_allclose(objectives.token_entropy(jnp.zeros((1, 1, 260))),
                             [[0, np.log(258)]], rtol=1e-6)
