"""Pure update steps, ``update(state, batch) -> (state, metrics)``, for the offline stages:
imitation (pre-training, SFT), reward modelling and preference learning (DPO, IPO).

Each factory binds the static parts (model, optimiser, settings) and returns a pure
function: jit it with ``donate_argnums=0`` (``jit_update``), or call it inside your own
``pmap``, ``shard_map`` or ``vmap`` (with ``axis_name`` to average gradients over the
devices). Batches are ``twoplayer_jax.batches`` types: ``Turns``, ``Pairs``, ``Scored``.
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from twoplayer_jax import game as game_lib
from twoplayer_jax import objectives
from twoplayer_jax.batches import Pairs, Scored, Turns
from twoplayer_jax.models.interface import Model
from twoplayer_jax.train.state import TrainState, apply_gradients

Update = Callable[[TrainState, Any], tuple[TrainState, dict]]


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


def grouped_forward(model: Model, params, tokens: jax.Array, group_size: int,
                    prefix_length: int):
  """``forward`` of groups of ``group_size`` adjacent transcripts ``tokens [B, T]`` whose
  first ``prefix_length`` tokens are the same in a group (continuations of one opening).

  Each group's prefix is read once into a KV cache that its transcripts' other tokens
  attend to: the same logits ``[B, T-1, V]`` and scalars ``[B, T]``, the prefix's cost
  divided by ``group_size``; gradients reach the prefix through the shared cache.
  """
  b, t = tokens.shape
  p = min(prefix_length, t - 1)
  if group_size == 1 or p < 1:
    return forward(model, params, tokens)
  if b % group_size:
    raise ValueError(f"group_size={group_size} must divide the {b} transcripts")
  positions = positions_of(tokens)
  leaders = slice(None, None, group_size)
  head, head_scalars, cache = model.apply(params, tokens[leaders, :p], positions[leaders, :p],
                                          model.init_cache(b // group_size, t - 1))
  grouped = lambda x: jnp.repeat(x, group_size, axis=0)
  tail, tail_scalars, _ = model.apply(params, tokens[:, p:-1], positions[:, p:-1],
                                      jax.tree.map(grouped, cache))
  logits = jnp.concatenate([grouped(head), tail], axis=1)
  if tail_scalars is None:
    return logits, None
  return logits, objectives.shift_right(jnp.concatenate([grouped(head_scalars), tail_scalars], 1))


def seat_forward(model: Model, params, game: game_lib.Game, tokens: jax.Array, hidden,
                 seat: int | jax.Array, group_size: int = 1):
  """``forward`` of the model in ``seat`` reading its view of transcripts ``tokens [B, T]``
  (its private text from the games' ``hidden``, then the transcript), as its model
  player read them in play: logits ``[B, T-1, V]`` and scalars ``[B, T]`` (or None)
  aligned with the transcript. Groups of ``group_size`` adjacent games share their
  opening (and so their private text), read once per group."""
  p = game.private_length
  logits, scalars = grouped_forward(model, params, game_lib.view(game, tokens, hidden, seat),
                                    group_size, p + game.min_opening_length)
  return logits[:, p:], None if scalars is None else scalars[:, p:]


def sequence_logprobs(model: Model, params, tokens: jax.Array, mask: jax.Array) -> jax.Array:
  """``[B]`` log-probability of each sequence's masked tokens under the model."""
  logits, _ = forward(model, params, tokens)
  return objectives.sequence_sum(objectives.token_logprobs(logits, tokens), mask)


def _update(loss_fn, tx, axis_name: str | None = None):
  """The update step of ``loss_fn``.

  With ``axis_name`` (inside ``pmap`` or ``shard_map``, the state replicated and the
  batch split over that axis), gradients and float metrics are averaged over the axis and
  integer metrics (counts) summed, so every device applies the same update. The averaged
  gradient is the gradient of the mean of per-device losses: it equals the whole batch's
  gradient when every device's share carries equal loss weight (e.g. the same number of
  learned tokens).
  """
  def update(state: TrainState, batch: Any) -> tuple[TrainState, dict]:
    params = state.params
    if axis_name is not None:
      # Differentiate per-device copies: shard_map already sums the gradient of a
      # replicated input over the axis and pmap does not; per-device gradients average
      # the same way under both.
      params = jax.lax.pcast(params, axis_name, to="varying")
    grads, metrics = jax.grad(loss_fn, has_aux=True)(params, batch)
    if axis_name is not None:
      grads = jax.lax.pmean(grads, axis_name)
      metrics = jax.tree.map(lambda m: (jax.lax.psum(m, axis_name)
                                        if jnp.issubdtype(m.dtype, jnp.integer)
                                        else jax.lax.pmean(m, axis_name)), metrics)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return apply_gradients(state, grads, tx), metrics
  return update


def imitation_batch(tokens, owner, length, role: int | tuple[int, ...]) -> Turns:
  """A host-side imitation batch of transcripts ``[B, T]``: ``tokens`` and the ``weights``
  of ``role``'s tokens. Raises if the batch holds no token of ``role`` to learn from."""
  tokens, owner, length = np.asarray(tokens), np.asarray(owner), np.asarray(length)
  if not tokens.shape == owner.shape or length.shape != tokens.shape[:1]:
    raise ValueError(f"tokens {tokens.shape}, owner {owner.shape} must match and length "
                     f"{length.shape} be [batch]")
  weights = np.asarray(objectives.imitation_weights(tokens, owner, length, role))
  if not weights.any():
    raise ValueError(f"the batch has no tokens of role {role} to learn from")
  return Turns(tokens, weights)


def imitation_step(model: Model, tx: optax.GradientTransformation,
                   axis_name: str | None = None) -> Update:
  """Behaviour cloning. ``batch``: ``Turns``, its ``weights`` e.g.
  ``objectives.imitation_weights``, with ``positions`` and ``segments`` when rows are
  packed.

  ``axis_name``: for use inside ``shard_map``/``pmap``, the device axis the batch is split
  over. Each device then takes the token mean of ITS share, and the gradients are
  averaged over devices: that is the whole batch's token mean only when every device
  holds the same number of learned tokens (otherwise tokens on lightly loaded devices
  weigh more; measured: 4e-3 parameter difference after 5 steps against one device).
  Under ``jax.jit`` with sharded inputs (how ``train.runner`` runs it), leave it None:
  the loss is the whole batch's token mean exactly.
  """

  def loss_fn(params, batch: Turns):
    logits, _ = forward(model, params, batch.tokens, batch.positions, batch.segments)
    return objectives.imitation_loss(logits, batch.tokens, batch.weights)

  return _update(loss_fn, tx, axis_name)


def reward_scores(model: Model, params, tokens: jax.Array, length: jax.Array) -> jax.Array:
  """``[B]`` a scalar-head model's score of each finished transcript ``tokens [B, T]``:
  its scalar at the last token (``length [B]``)."""
  _, scalars, _ = model.apply(params, tokens, positions_of(tokens))
  return objectives.final_scores(scalars, length)


def reward_model_step(model: Model, tx: optax.GradientTransformation,
                      loss: str = "bradley_terry", axis_name: str | None = None) -> Update:
  """Reward modelling with a scalar-head model.

  ``loss="bradley_terry"``: ``batch`` is ``Pairs`` (its weights and references unread).
  ``loss="regression"``: ``Scored``, transcripts and their observed payoffs.
  ``axis_name``: the device axis to average gradients over (see ``_update``).
  """
  if not model.config.scalar_head:
    raise ValueError("a reward model needs TransformerConfig(scalar_head=True)")
  if loss not in ("bradley_terry", "regression"):
    raise ValueError(f"loss must be 'bradley_terry' or 'regression', got {loss!r}")

  score = functools.partial(reward_scores, model)

  def loss_fn(params, batch: Pairs | Scored):
    if loss == "regression":
      return objectives.regression_loss(score(params, batch.tokens, batch.length), batch.payoff)
    both = jnp.concatenate([batch.chosen, batch.rejected])
    lengths = jnp.concatenate([batch.chosen_length, batch.rejected_length])
    chosen, rejected = jnp.split(score(params, both, lengths), 2)
    return objectives.bradley_terry_loss(chosen, rejected)

  return _update(loss_fn, tx, axis_name)


def with_reference(model: Model, ref_params, batch: Pairs) -> Pairs:
  """``batch`` with the reference policy's ``ref_chosen`` and ``ref_rejected`` ``[B]``:
  computed once, before preference learning."""
  return batch._replace(
      ref_chosen=sequence_logprobs(model, ref_params, batch.chosen, batch.chosen_weights),
      ref_rejected=sequence_logprobs(model, ref_params, batch.rejected, batch.rejected_weights))


def preference_step(model: Model, tx: optax.GradientTransformation, beta: float = 0.1,
                    kind: str = "dpo", axis_name: str | None = None) -> Update:
  """DPO or IPO. ``batch``: ``Pairs`` with the learner's tokens of each side as
  ``chosen_weights``, ``rejected_weights`` and the references from ``with_reference``.
  ``axis_name``: the device axis to average gradients over (see ``_update``)."""

  def loss_fn(params, batch: Pairs):
    chosen = sequence_logprobs(model, params, batch.chosen, batch.chosen_weights)
    rejected = sequence_logprobs(model, params, batch.rejected, batch.rejected_weights)
    return objectives.preference_loss(chosen, rejected, batch.ref_chosen, batch.ref_rejected,
                                      beta, kind)

  return _update(loss_fn, tx, axis_name)


def jit_update(update: Update) -> Update:
  """``update`` compiled, donating the old state's buffers to the new one."""
  return jax.jit(update, donate_argnums=0)
