"""Pairwise and scalar objectives against hand-derived numbers: DPO and IPO with beta != 1
at non-zero log-ratios (with and without length normalisation), Bradley-Terry with a
margin, regression."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import objectives

CHOSEN = jnp.array([-1.0, -2.0])
REF_CHOSEN = jnp.array([-1.5, -1.0])
REJECTED = jnp.array([-3.0, -1.0])
REF_REJECTED = jnp.array([-2.0, -2.5])
# Log-ratios: chosen [0.5, -1], rejected [-1, 1.5]; h = [1.5, -2.5].
H = np.array([1.5, -2.5])

preference = jax.jit(objectives.preference_loss, static_argnums=(4, 5),
                     static_argnames="normalize_length")


def log_sigmoid(x):
  return -np.log1p(np.exp(-x))


@pytest.mark.parametrize("beta", [0.5, 0.25])
def test_dpo_by_hand(beta):
  grad_fn = jax.grad(lambda c, r: preference(c, r, REF_CHOSEN, REF_REJECTED, beta, "dpo")[0],
                     argnums=(0, 1))
  loss, metrics = preference(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, beta, "dpo")
  np.testing.assert_allclose(loss, -np.mean(log_sigmoid(beta * H)), rtol=1e-6)
  # d/dh -log sigmoid(beta h) = -beta sigmoid(-beta h), averaged over the 2 pairs.
  g_chosen, g_rejected = grad_fn(CHOSEN, REJECTED)
  want = -beta / (1 + np.exp(beta * H)) / 2
  np.testing.assert_allclose(g_chosen, want, rtol=1e-6)
  np.testing.assert_allclose(g_rejected, -want, rtol=1e-6)
  np.testing.assert_allclose(metrics["chosen_reward"], beta * (0.5 - 1.0) / 2, rtol=1e-6)
  np.testing.assert_allclose(metrics["rejected_reward"], beta * (-1.0 + 1.5) / 2, rtol=1e-6)
  np.testing.assert_allclose(metrics["reward_margin"], beta * H.mean(), rtol=1e-6)
  assert float(metrics["accuracy"]) == 0.5


def test_ipo_by_hand_with_and_without_length_normalisation():
  # (h - 1 / (2 beta))^2: with beta 0.5 the target is 1, with beta 0.25 it is 2.
  loss, _ = preference(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, 0.5, "ipo")
  np.testing.assert_allclose(loss, (0.25 + 12.25) / 2, rtol=1e-6)
  loss, _ = preference(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, 0.25, "ipo")
  np.testing.assert_allclose(loss, (0.25 + 20.25) / 2, rtol=1e-6)
  g_chosen = jax.grad(lambda c: preference(c, REJECTED, REF_CHOSEN, REF_REJECTED, 0.25,
                                           "ipo")[0])(CHOSEN)
  np.testing.assert_allclose(g_chosen, 2 * (H - 2) / 2, rtol=1e-6)
  # Log-ratios over 2 and 4 chosen tokens, 5 and 3 rejected: h = [0.45, -0.75].
  counts = {"chosen_count": jnp.array([2, 4]), "rejected_count": jnp.array([5, 3])}
  loss, metrics = preference(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, 0.5, "ipo",
                             normalize_length=True, **counts)
  np.testing.assert_allclose(loss, (0.55 ** 2 + 1.75 ** 2) / 2, rtol=1e-6)
  np.testing.assert_allclose(metrics["chosen_reward"], 0.5 * (0.25 - 0.25) / 2, atol=1e-7)
  np.testing.assert_allclose(metrics["rejected_reward"], 0.5 * (-0.2 + 0.5) / 2, rtol=1e-6)
  with pytest.raises(ValueError, match="chosen_count"):
    objectives.preference_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, 0.5, "ipo",
                               normalize_length=True)


def test_bradley_terry_margin_by_hand():
  chosen, rejected = jnp.array([2.0, 0.0]), jnp.array([1.0, 1.0])
  bt = jax.jit(objectives.bradley_terry_loss)
  loss, metrics = bt(chosen, rejected)
  np.testing.assert_allclose(loss, -np.mean(log_sigmoid(np.array([1.0, -1.0]))), rtol=1e-6)
  loss, metrics = bt(chosen, rejected, 0.5)
  np.testing.assert_allclose(loss, -np.mean(log_sigmoid(np.array([0.5, -1.5]))), rtol=1e-6)
  loss, _ = bt(chosen, rejected, jnp.array([0.5, 1.0]))
  np.testing.assert_allclose(loss, -np.mean(log_sigmoid(np.array([0.5, -2.0]))), rtol=1e-6)
  assert float(metrics["margin"]) == 0.0 and float(metrics["accuracy"]) == 0.5


def test_regression_loss_by_hand():
  scores, payoffs = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 2.0, 5.0])
  (loss, metrics), grad = jax.jit(jax.value_and_grad(objectives.regression_loss,
                                                     has_aux=True))(scores, payoffs)
  np.testing.assert_allclose(loss, (1 + 0 + 4) / 3, rtol=1e-6)
  np.testing.assert_allclose(grad, [2 / 3, 0, -4 / 3], rtol=1e-6)
  assert float(metrics["mean_score"]) == 2.0
