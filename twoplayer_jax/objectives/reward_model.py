"""Reward modelling: learning player one's payoff from its judgements.

A reward model is a transformer with a scalar head; its score of a transcript is the
scalar at the transcript's last token (the end of the turn being judged). It learns from
player one's preferences between two player-two continuations of one opening
(Bradley-Terry), or by regression on observed payoffs.
"""

import jax
import jax.numpy as jnp


def final_scores(scalars: jax.Array, length: jax.Array) -> jax.Array:
  """``[B]`` score of each transcript: ``scalars [B, T]`` read at its last token."""
  if scalars.ndim != 2 or length.shape != scalars.shape[:1]:
    raise ValueError(f"scalars {scalars.shape} must be [batch, length] and length "
                     f"{length.shape} [batch]")
  return jnp.take_along_axis(scalars, (length - 1)[:, None], axis=1)[:, 0]


def bradley_terry_loss(chosen: jax.Array, rejected: jax.Array
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """-log sigmoid(chosen - rejected), averaged over pairs.

  Args:
    chosen: ``[B]`` scores of the preferred transcripts.
    rejected: ``[B]`` scores of the other transcript of each pair.

  Returns:
    The loss and metrics: ``loss``, ``accuracy`` (share of pairs ordered correctly) and
    ``margin`` (mean score difference).
  """
  if chosen.shape != rejected.shape or chosen.ndim != 1:
    raise ValueError(f"chosen {chosen.shape} and rejected {rejected.shape} must both be [pairs]")
  margin = chosen - rejected
  loss = -jnp.mean(jax.nn.log_sigmoid(margin))
  return loss, {"loss": loss, "accuracy": jnp.mean(margin > 0), "margin": jnp.mean(margin)}


def regression_loss(scores: jax.Array, payoffs: jax.Array
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean squared error of ``scores [B]`` against observed ``payoffs [B]``."""
  if scores.shape != payoffs.shape:
    raise ValueError(f"scores {scores.shape} and payoffs {payoffs.shape} must match")
  loss = jnp.mean(jnp.square(scores - payoffs))
  return loss, {"loss": loss, "mean_score": jnp.mean(scores)}
