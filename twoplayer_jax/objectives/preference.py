"""Preference learning from pairs, offline: DPO and IPO.

Each pair holds two continuations of one opening, the chosen and the rejected; a
sequence's log-probability sums the learner's tokens. The reference policy's
log-probabilities are computed once, before training, and passed in.
"""

import jax
import jax.numpy as jnp


def preference_loss(chosen: jax.Array, rejected: jax.Array, ref_chosen: jax.Array,
                    ref_rejected: jax.Array, beta: float = 0.1, kind: str = "dpo", *,
                    normalize_length: bool = False, chosen_count: jax.Array | None = None,
                    rejected_count: jax.Array | None = None
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """DPO or IPO loss over pairs.

  With ``rho_c = chosen - ref_chosen`` and ``rho_r = rejected - ref_rejected`` the
  log-ratios of each side to the reference (each divided by its side's token count with
  ``normalize_length``) and ``h = rho_c - rho_r``, the loss per pair is
  ``-log sigmoid(beta h)`` (DPO) or ``(h - 1 / (2 beta))^2`` (IPO), averaged over pairs.

  Args:
    chosen: ``[B]`` policy log-probability of each chosen continuation.
    rejected: ``[B]`` policy log-probability of each rejected continuation.
    ref_chosen: ``[B]`` reference log-probability of each chosen continuation.
    ref_rejected: ``[B]`` reference log-probability of each rejected continuation.
    beta: strength of the implicit KL constraint to the reference.
    kind: "dpo" or "ipo".
    normalize_length: divide each side's log-ratio by its number of tokens, as TRL's
      ``DPOTrainer`` does for IPO; False keeps the IPO paper's (and DPO's) sums.
    chosen_count: ``[B]`` the learner's tokens in each chosen continuation (the sum of
      its mask); needed with ``normalize_length``.
    rejected_count: ``[B]`` the same for each rejected continuation.

  Returns:
    The loss and metrics, means over pairs: ``accuracy`` (pairs where the chosen gains
    more), ``chosen_reward`` and ``rejected_reward`` (DPO's implicit rewards ``beta
    rho_c`` and ``beta rho_r``) and ``reward_margin`` (``beta h``, their difference).
  """
  sides = {"chosen": chosen, "rejected": rejected, "ref_chosen": ref_chosen,
           "ref_rejected": ref_rejected}
  for name, x in sides.items():
    if x.ndim != 1 or x.shape != chosen.shape:
      raise ValueError(f"{name} {x.shape} must be [pairs] like chosen {chosen.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise ValueError(f"{name} must hold log-probabilities (floats), got {x.dtype}")
  if kind not in ("dpo", "ipo"):
    raise ValueError(f"kind must be 'dpo' or 'ipo', got {kind!r}")
  rho_c = chosen - jax.lax.stop_gradient(ref_chosen)
  rho_r = rejected - jax.lax.stop_gradient(ref_rejected)
  if normalize_length:
    for name, count in (("chosen_count", chosen_count), ("rejected_count", rejected_count)):
      if count is None or count.shape != chosen.shape:
        raise ValueError(f"normalize_length needs {name} [pairs] like chosen {chosen.shape}, "
                         f"got {None if count is None else count.shape}")
    # A side without tokens has log-ratio 0: dividing it by 1 keeps it 0, not NaN.
    rho_c = rho_c / jnp.maximum(chosen_count, 1)
    rho_r = rho_r / jnp.maximum(rejected_count, 1)
  h = rho_c - rho_r
  if kind == "dpo":
    loss = -jnp.mean(jax.nn.log_sigmoid(beta * h))
  else:
    loss = jnp.mean(jnp.square(h - 1 / (2 * beta)))
  return loss, {"loss": loss, "accuracy": jnp.mean(h > 0),
                "chosen_reward": jnp.mean(beta * rho_c),
                "rejected_reward": jnp.mean(beta * rho_r),
                "reward_margin": jnp.mean(beta * h)}
