"""Policy learning for either role: advantages, policy losses, value loss, KL, entropy.

Every function takes ``[B, T]`` arrays aligned with the transcript (see ``tokens.py``)
and a ``mask [B, T]`` of the learner's own tokens: the other player's tokens are not
time steps of the learner. Sequence-level estimators (batch baseline, RLOO, GRPO) give
one advantage per game, spread over the learner's tokens by ``per_token``; GAE gives
one per token.
"""

import jax
import jax.numpy as jnp

from twoplayer_jax.objectives.tokens import masked_mean


def _groups(x: jax.Array, group_size: int) -> jax.Array:
  if x.ndim != 1 or group_size < 1 or x.shape[0] % group_size:
    raise ValueError(f"group_size={group_size} must divide the batch of {x.shape} returns "
                     "(games of one opening lie next to each other)")
  return x.reshape(-1, group_size)


def batch_baseline(returns: jax.Array) -> jax.Array:
  """``[B]`` returns minus the batch mean."""
  return returns - jnp.mean(returns)


def rloo(returns: jax.Array, group_size: int) -> jax.Array:
  """``[B]`` leave-one-out advantages: each return minus the mean of the others of its
  group (``group_size`` >= 2 continuations of one opening, adjacent in the batch)."""
  if group_size < 2:
    raise ValueError(f"RLOO needs group_size >= 2, got {group_size}")
  g = _groups(returns, group_size)
  others = (jnp.sum(g, axis=1, keepdims=True) - g) / (group_size - 1)
  return (g - others).reshape(-1)


def grpo(returns: jax.Array, group_size: int, eps: float = 1e-6) -> jax.Array:
  """``[B]`` group-normalised advantages: (return - group mean) / (group std + eps)."""
  g = _groups(returns, group_size)
  centred = g - jnp.mean(g, axis=1, keepdims=True)
  return (centred / (jnp.std(g, axis=1, keepdims=True) + eps)).reshape(-1)


def per_token(advantages: jax.Array, mask: jax.Array) -> jax.Array:
  """``[B, T]``: each game's advantage ``[B]`` on its masked tokens."""
  return advantages[:, None] * mask


def gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, gamma: float = 1.0,
        lam: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """Generalised advantage estimation over the learner's own tokens.

  The learner's time steps are its masked tokens; a reward paid at another token (e.g.
  the payoff when the opponent ends the game) belongs to the learner's latest step
  before it, undiscounted, so a terminal reward is neither decayed nor lost across the
  opponent's tokens.

  Args:
    rewards: ``[B, T]`` the learner's reward for the step writing each token.
    values: ``[B, T]`` the learner's value of the state before each of its tokens.
    mask: ``[B, T]`` the learner's tokens.
    gamma: discount per learner step.
    lam: GAE lambda.

  Returns:
    ``advantages [B, T]`` and ``returns [B, T]`` (advantages + values), 0 off the mask.
  """
  if not rewards.shape == values.shape == mask.shape or rewards.ndim != 2:
    raise ValueError(f"rewards {rewards.shape}, values {values.shape} and mask {mask.shape} "
                     "must all be [batch, length]")
  mask = mask.astype(bool)

  def back(carry, x):
    next_value, next_adv, pending = carry
    r, v, m = x
    r = r + pending
    adv = r + gamma * next_value - v + gamma * lam * next_adv
    carry = (jnp.where(m, v, next_value), jnp.where(m, adv, next_adv), jnp.where(m, 0.0, r))
    return carry, jnp.where(m, adv, 0.0)

  zeros = jnp.zeros(rewards.shape[0], jnp.float32)
  _, adv = jax.lax.scan(back, (zeros, zeros, zeros),
                        (rewards.T.astype(jnp.float32), values.T.astype(jnp.float32), mask.T),
                        reverse=True)
  adv = adv.T
  return adv, jnp.where(mask, adv + values, 0.0)


def reinforce_loss(logp: jax.Array, advantages: jax.Array, mask: jax.Array) -> jax.Array:
  """-mean(advantage * log-probability) over the learner's tokens."""
  return -masked_mean(logp * jax.lax.stop_gradient(advantages), mask)


def ppo_loss(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, mask: jax.Array,
             clip_eps: float = 0.2) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The clipped surrogate of PPO over the learner's tokens.

  Args:
    logp: ``[B, T]`` log-probabilities under the policy being updated.
    old_logp: ``[B, T]`` log-probabilities under the policy that played.
    advantages: ``[B, T]``.
    mask: ``[B, T]`` the learner's tokens.
    clip_eps: the ratio is clipped to [1 - clip_eps, 1 + clip_eps].

  Returns:
    The loss and metrics ``clip_fraction`` and ``approx_kl`` (k3 of old to new).
  """
  adv = jax.lax.stop_gradient(advantages)
  log_ratio = logp - jax.lax.stop_gradient(old_logp)
  ratio = jnp.exp(log_ratio)
  surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
  metrics = {
      "clip_fraction": masked_mean((jnp.abs(ratio - 1) > clip_eps).astype(jnp.float32), mask),
      "approx_kl": masked_mean(jax.lax.stop_gradient(ratio - 1 - log_ratio), mask),
  }
  return -masked_mean(surrogate, mask), metrics


def value_loss(values: jax.Array, old_values: jax.Array, returns: jax.Array, mask: jax.Array,
               clip: float | None = None) -> jax.Array:
  """Squared error of values against returns, pessimistically clipped around the old
  values (as PPO) when ``clip`` is given."""
  loss = jnp.square(values - returns)
  if clip is not None:
    clipped = old_values + jnp.clip(values - old_values, -clip, clip)
    loss = jnp.maximum(loss, jnp.square(clipped - returns))
  return 0.5 * masked_mean(loss, mask)


def kl(logp: jax.Array, ref_logp: jax.Array, estimator: str = "k3") -> jax.Array:
  """``[B, T]`` per-token estimate of KL(policy || reference) from sampled tokens.

  ``k1 = logp - ref_logp`` is unbiased but noisy and can be negative; ``k3 = r - 1 -
  log r`` with ``r = exp(ref_logp - logp)`` is unbiased and never negative.
  """
  if estimator == "k1":
    return logp - ref_logp
  if estimator == "k3":
    log_r = ref_logp - logp
    return jnp.exp(log_r) - 1 - log_r
  raise ValueError(f"estimator must be 'k1' or 'k3', got {estimator!r}")
