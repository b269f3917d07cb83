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
  if not jnp.issubdtype(length.dtype, jnp.integer):
    raise ValueError(f"length must hold token counts (integers), got {length.dtype}")
  return jnp.take_along_axis(scalars, (length - 1)[:, None], axis=1)[:, 0]


def bradley_terry_loss(chosen: jax.Array, rejected: jax.Array,
                       margin: float | jax.Array = 0.0
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """-log sigmoid(chosen - rejected - margin), averaged over pairs.

  Args:
    chosen: ``[B]`` scores of the preferred transcripts.
    rejected: ``[B]`` scores of the other transcript of each pair.
    margin: a number or ``[B]``: how far each chosen score should exceed the rejected
      one (e.g. larger for clearer preferences, as Llama 2's reward models); 0 is
      plain Bradley-Terry.

  Returns:
    The loss and metrics: ``loss``, ``accuracy`` (share of pairs ordered correctly) and
    ``margin`` (mean score difference, without the ``margin`` argument).
  """
  if chosen.shape != rejected.shape or chosen.ndim != 1:
    raise ValueError(f"chosen {chosen.shape} and rejected {rejected.shape} must both be [pairs]")
  if jnp.ndim(margin) and jnp.shape(margin) != chosen.shape:
    raise ValueError(f"margin {jnp.shape(margin)} must be a number or [pairs] like chosen "
                     f"{chosen.shape}")
  difference = chosen - rejected
  loss = -jnp.mean(jax.nn.log_sigmoid(difference - margin))
  return loss, {"loss": loss, "accuracy": jnp.mean(difference > 0),
                "margin": jnp.mean(difference)}


def regression_loss(scores: jax.Array, payoffs: jax.Array
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean squared error of ``scores [B]`` against observed ``payoffs [B]``."""
  if scores.shape != payoffs.shape or scores.ndim != 1:
    raise ValueError(f"scores {scores.shape} and payoffs {payoffs.shape} must both be "
                     "[batch]")
  loss = jnp.mean(jnp.square(scores - payoffs))
  return loss, {"loss": loss, "mean_score": jnp.mean(scores)}
