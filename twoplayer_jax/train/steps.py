"""Pure update steps, ``update(state, batch) -> (state, metrics)``, for the offline stages:
imitation (pre-training, SFT), reward modelling and preference learning (DPO, IPO).

Each factory binds the static parts (model, optimiser, settings) and returns a pure
function: jit it with ``donate_argnums=0`` (``jit_update``), or call it inside your own
``pmap``, ``shard_map`` or ``vmap``. Batches are dicts of ``[B, T]`` arrays.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from twoplayer_jax import objectives
from twoplayer_jax.models.transformer import Model
from twoplayer_jax.train.state import TrainState, apply_gradients

Update = Callable[[TrainState, dict], tuple[TrainState, dict]]


def positions_of(tokens: jax.Array) -> jax.Array:
  """``[B, T]`` positions 0..T-1 of unpacked transcripts."""
  return jnp.broadcast_to(jnp.arange(tokens.shape[-1]), tokens.shape)


def forward(model: Model, params, tokens: jax.Array, positions: jax.Array | None = None,
            segments: jax.Array | None = None):
  """Logits ``[B, T-1, V]`` and scalars ``[B, T]`` (or None) of the model reading
  ``tokens [B, T]``; scalars re-indexed by the token they precede (see objectives.tokens)."""
  positions = positions_of(tokens) if positions is None else positions
  logits, scalars, _ = model.apply(params, tokens[:, :-1], positions[:, :-1],
                                   segments=None if segments is None else segments[:, :-1])
  return logits, None if scalars is None else objectives.shift_right(scalars)


def sequence_logprobs(model: Model, params, tokens: jax.Array, mask: jax.Array) -> jax.Array:
  """``[B]`` log-probability of each sequence's masked tokens under the model."""
  logits, _ = forward(model, params, tokens)
  return objectives.sequence_sum(objectives.token_logprobs(logits, tokens), mask)


def _update(loss_fn, tx):
  def update(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, batch)
    metrics["grad_norm"] = optax.global_norm(grads)
    return apply_gradients(state, grads, tx), metrics
  return update


def imitation_batch(tokens, owner, length, role: int | tuple[int, ...]) -> dict:
  """A host-side imitation batch of transcripts: ``tokens`` and the ``weights`` of
  ``role``'s tokens. Raises if the batch holds no token of ``role`` to learn from."""
  tokens, owner, length = np.asarray(tokens), np.asarray(owner), np.asarray(length)
  if not tokens.shape == owner.shape or length.shape != tokens.shape[:1]:
    raise ValueError(f"tokens {tokens.shape}, owner {owner.shape} must match and length "
                     f"{length.shape} be [batch]")
  weights = np.asarray(objectives.imitation_weights(tokens, owner, length, role))
  if not weights.any():
    raise ValueError(f"the batch has no tokens of role {role} to learn from")
  return {"tokens": tokens, "weights": weights}


def imitation_step(model: Model, tx: optax.GradientTransformation) -> Update:
  """Behaviour cloning. ``batch``: ``tokens [B, T]`` and ``weights [B, T]`` (see
  ``objectives.imitation_weights``), optionally ``positions`` and ``segments`` of packed
  text."""

  def loss_fn(params, batch):
    logits, _ = forward(model, params, batch["tokens"], batch.get("positions"),
                        batch.get("segments"))
    return objectives.imitation_loss(logits, batch["tokens"], batch["weights"])

  return _update(loss_fn, tx)


def reward_model_step(model: Model, tx: optax.GradientTransformation,
                      loss: str = "bradley_terry") -> Update:
  """Reward modelling with a scalar-head model.

  ``loss="bradley_terry"``: ``batch`` holds pairs ``chosen``, ``rejected`` ``[B, T]`` and
  their ``chosen_length``, ``rejected_length`` ``[B]``. ``loss="regression"``: ``tokens
  [B, T]``, ``length [B]`` and the observed ``payoff [B]``.
  """
  if not model.config.scalar_head:
    raise ValueError("a reward model needs TransformerConfig(scalar_head=True)")
  if loss not in ("bradley_terry", "regression"):
    raise ValueError(f"loss must be 'bradley_terry' or 'regression', got {loss!r}")

  def score(params, tokens, length):
    _, scalars, _ = model.apply(params, tokens, positions_of(tokens))
    return objectives.final_scores(scalars, length)

  def loss_fn(params, batch):
    if loss == "regression":
      return objectives.regression_loss(score(params, batch["tokens"], batch["length"]),
                                        batch["payoff"])
    both = jnp.concatenate([batch["chosen"], batch["rejected"]])
    lengths = jnp.concatenate([batch["chosen_length"], batch["rejected_length"]])
    chosen, rejected = jnp.split(score(params, both, lengths), 2)
    return objectives.bradley_terry_loss(chosen, rejected)

  return _update(loss_fn, tx)


def with_reference(model: Model, ref_params, batch: dict) -> dict:
  """The preference batch with the reference policy's ``ref_chosen`` and
  ``ref_rejected`` ``[B]`` added: computed once, before preference learning."""
  return {**batch,
          "ref_chosen": sequence_logprobs(model, ref_params, batch["chosen"],
                                          batch["chosen_mask"]),
          "ref_rejected": sequence_logprobs(model, ref_params, batch["rejected"],
                                            batch["rejected_mask"])}


def preference_step(model: Model, tx: optax.GradientTransformation, beta: float = 0.1,
                    kind: str = "dpo") -> Update:
  """DPO or IPO. ``batch``: ``chosen``, ``rejected`` ``[B, T]``, the learner's tokens of
  each as ``chosen_mask``, ``rejected_mask`` ``[B, T]``, and ``ref_chosen``,
  ``ref_rejected`` ``[B]`` from ``with_reference``."""

  def loss_fn(params, batch):
    chosen = sequence_logprobs(model, params, batch["chosen"], batch["chosen_mask"])
    rejected = sequence_logprobs(model, params, batch["rejected"], batch["rejected_mask"])
    return objectives.preference_loss(chosen, rejected, batch["ref_chosen"],
                                      batch["ref_rejected"], beta, kind)

  return _update(loss_fn, tx)


def jit_update(update: Update) -> Update:
  """``update`` compiled, donating the old state's buffers to the new one."""
  return jax.jit(update, donate_argnums=0)
