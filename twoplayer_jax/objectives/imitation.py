"""Behaviour cloning: cross-entropy of the chosen role's tokens.

Pre-training clones both players of human-human transcripts (``role=(1, 2)``), SFT
clones a skilled player two (``role=2``). The weight per token is 1 on the role's
tokens and 0 elsewhere; the loss is a mean over weighted tokens of the whole batch.
"""

import jax
import jax.numpy as jnp

from twoplayer_jax.game import role_mask
from twoplayer_jax.objectives.tokens import (
    log_policy, masked_mean, token_logprobs, valid_tokens)


def imitation_weights(tokens: jax.Array, owner: jax.Array, length: jax.Array,
                      role: int | tuple[int, ...]) -> jax.Array:
  """``[B, T]`` float32 weights: 1 on tokens 1..length-1 written by ``role``."""
  if tokens.ndim != 2 or owner.shape != tokens.shape:
    raise ValueError(f"tokens {tokens.shape} and owner {owner.shape} must both be "
                     "[batch, length]")
  if length.shape != tokens.shape[:1]:
    raise ValueError(f"length {length.shape} must be [batch] for tokens {tokens.shape}")
  return (valid_tokens(tokens, length) & role_mask(owner, role)).astype(jnp.float32)


def imitation_loss(logits: jax.Array, tokens: jax.Array, weights: jax.Array
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Weighted token-level cross-entropy and accuracy.

  Args:
    logits: ``[B, T-1, V]`` from the forward pass over ``tokens[:, :-1]``.
    tokens: ``[B, T]`` transcripts.
    weights: ``[B, T]`` weight of each token (see ``imitation_weights``).

  Returns:
    The loss and metrics: ``loss``, ``accuracy`` (greedy next-token accuracy on the
    weighted tokens) and ``tokens`` (their count).
  """
  logp = token_logprobs(logits, tokens)
  loss = -masked_mean(logp, weights)
  predicted = jnp.pad(jnp.argmax(log_policy(logits), -1), [(0, 0), (1, 0)])
  accuracy = masked_mean((predicted == tokens).astype(jnp.float32), weights)
  return loss, {"loss": loss, "accuracy": accuracy, "tokens": jnp.sum(weights > 0)}
