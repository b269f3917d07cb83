"""Preference learning from pairs, offline: DPO and IPO.

Each pair holds two continuations of one opening, the chosen and the rejected; a
sequence's log-probability sums the learner's tokens. The reference policy's
log-probabilities are computed once, before training, and passed in.
"""

import jax
import jax.numpy as jnp


def preference_loss(chosen: jax.Array, rejected: jax.Array, ref_chosen: jax.Array,
                    ref_rejected: jax.Array, beta: float = 0.1, kind: str = "dpo"
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """DPO or IPO loss over pairs.

  Args:
    chosen: ``[B]`` policy log-probability of each chosen continuation.
    rejected: ``[B]`` policy log-probability of each rejected continuation.
    ref_chosen: ``[B]`` reference log-probability of each chosen continuation.
    ref_rejected: ``[B]`` reference log-probability of each rejected continuation.
    beta: strength of the implicit KL constraint to the reference.
    kind: "dpo" (-log sigmoid(beta h)) or "ipo" ((h - 1 / (2 beta))^2), where h is the
      difference of the two log-ratios to the reference.

  Returns:
    The loss and metrics ``accuracy`` (pairs where the chosen gains more) and
    ``reward_margin`` (mean of beta h, DPO's implicit reward difference).
  """
  if not chosen.shape == rejected.shape == ref_chosen.shape == ref_rejected.shape:
    raise ValueError("chosen, rejected and both reference log-probabilities must have one "
                     f"shape [pairs], got {chosen.shape}, {rejected.shape}, "
                     f"{ref_chosen.shape}, {ref_rejected.shape}")
  h = (chosen - jax.lax.stop_gradient(ref_chosen)) - (rejected - jax.lax.stop_gradient(ref_rejected))
  if kind == "dpo":
    loss = -jnp.mean(jax.nn.log_sigmoid(beta * h))
  elif kind == "ipo":
    loss = jnp.mean(jnp.square(h - 1 / (2 * beta)))
  else:
    raise ValueError(f"kind must be 'dpo' or 'ipo', got {kind!r}")
  return loss, {"loss": loss, "accuracy": jnp.mean(h > 0), "reward_margin": jnp.mean(beta * h)}
