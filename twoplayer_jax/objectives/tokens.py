"""Per-token quantities every objective shares, aligned with the transcript.

Index t of every ``[B, T]`` array here refers to token t of the transcript: the model's
log-probability of writing it (read from the logits at position t - 1), the value of the
state in which it was written, and whether it carries the loss. Position 0 (BOS) never
does. This is the alignment of ``Trajectory.logprob`` and ``Trajectory.value``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import vocab


def widen(mask: jax.Array, size: int) -> jax.Array:
  """A ``[..., V]`` token mask widened with False to a model's larger vocabulary."""
  return jnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, size - mask.shape[-1])])


def log_policy(logits: jax.Array, legal: jax.Array | None = None) -> jax.Array:
  """``[..., V]`` log-probabilities over the tokens the mover may write, as model players
  sample them (at temperature 1, no top-k).

  Args:
    logits: ``[..., V]`` a model's logits (V may exceed the game vocabulary).
    legal: ``[..., V']`` bool tokens the mover may write (``Game.legal_mask``); every
      writable token (``vocab.writable``) if None.
  """
  legal = np.asarray(vocab.writable()) if legal is None else legal
  # A finite floor keeps p * log p at 0 (not NaN) for the tokens never written.
  return jax.nn.log_softmax(
      jnp.where(widen(legal, logits.shape[-1]), logits.astype(jnp.float32), -1e30))


def _moves(legal: jax.Array | None) -> jax.Array | None:
  """The legal masks ``[B, T, V']`` of tokens 1..T-1, aligned with the logits."""
  return None if legal is None else legal[:, 1:]


def shift_right(x: jax.Array) -> jax.Array:
  """``x [B, T-1, ...]`` read at positions 0..T-2, re-indexed by the token they predict."""
  return jnp.pad(x, [(0, 0), (1, 0)] + [(0, 0)] * (x.ndim - 2))


def token_logprobs(logits: jax.Array, tokens: jax.Array, legal: jax.Array | None = None
                   ) -> jax.Array:
  """``[B, T]`` log-probability of each token under the policy, 0 at position 0.

  Args:
    logits: ``[B, T-1, V]`` logits of positions 0..T-2 (the forward pass over
      ``tokens[:, :-1]``).
    tokens: ``[B, T]`` transcripts.
    legal: ``[B, T, V']`` the mask each token was written under
      (``Trajectory.legal``); every writable token if None.
  """
  _check_logits(logits, tokens)
  logp = log_policy(logits, _moves(legal))
  return shift_right(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0])


def token_entropy(logits: jax.Array, legal: jax.Array | None = None) -> jax.Array:
  """``[B, T]`` entropy of the policy (over the legal tokens, by default every writable
  one) at the state before each token, 0 at position 0. ``legal`` as in
  ``token_logprobs``."""
  logp = log_policy(logits, _moves(legal))
  return shift_right(-jnp.sum(jnp.exp(logp) * logp, axis=-1))


def masked_mean(x: jax.Array, weights: jax.Array) -> jax.Array:
  """Mean of ``x`` over the tokens where ``weights [B, T]`` is nonzero, weighted.

  Normalised over all tokens of the batch, so sequences count by their length and
  padding counts not at all; an all-zero mask gives 0, not NaN.
  """
  _check_same(x, weights, "x", "weights")
  return jnp.sum(x * weights) / jnp.maximum(jnp.sum(weights), 1e-8)


def sequence_sum(x: jax.Array, mask: jax.Array) -> jax.Array:
  """``[B]`` sum of ``x [B, T]`` over each sequence's masked tokens."""
  _check_same(x, mask, "x", "mask")
  return jnp.sum(x * mask, axis=-1)


def valid_tokens(tokens: jax.Array, length: jax.Array) -> jax.Array:
  """``[B, T]`` bool: tokens 1..length-1 of each transcript (those a model can predict)."""
  pos = jnp.arange(tokens.shape[-1])
  return (pos >= 1) & (pos < length[:, None])


def _check_same(a, b, name_a, name_b):
  if a.shape != b.shape:
    raise ValueError(f"{name_a} {a.shape} and {name_b} {b.shape} must have the same shape")


def _check_logits(logits, tokens):
  if logits.ndim != 3 or logits.shape[:2] != (tokens.shape[0], tokens.shape[1] - 1):
    raise ValueError(f"logits {logits.shape} must be [batch, length - 1, vocab] for tokens "
                     f"{tokens.shape}: the forward pass over tokens[:, :-1]")
