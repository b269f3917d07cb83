"""The train state, a plain pytree, and the optimisers the update steps use."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
  """Everything an update step changes.

  Attributes:
    params: model parameters.
    opt_state: the optimiser's state.
    step: ``[]`` int32 number of updates made.
    rng: PRNG key for the randomness of the next update (e.g. play).
  """
  params: Any
  opt_state: Any
  step: jax.Array
  rng: jax.Array


def create(params: Any, tx: optax.GradientTransformation, key: jax.Array,
           stacked: bool = False) -> TrainState:
  """A train state at step 0. ``stacked``: ``params`` are several learners' stacked on a
  leading axis (e.g. one per seat), each with an optimiser state of its own."""
  return TrainState(params, (jax.vmap(tx.init) if stacked else tx.init)(params), jnp.int32(0),
                    key)


def optimizer(learning_rate: float, total_steps: int, warmup_steps: int = 0,
              clip_norm: float | None = 1.0, weight_decay: float = 0.0, b2: float = 0.99
              ) -> optax.GradientTransformation:
  """AdamW with global-norm gradient clipping, linear warmup and cosine decay to 0.

  Args:
    learning_rate: peak learning rate.
    total_steps: steps of the schedule (warmup included).
    warmup_steps: steps of linear warmup from 0.
    clip_norm: clip gradients to this global norm; None for no clipping.
    weight_decay: decoupled weight decay.
    b2: Adam's second-moment decay.
  """
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, learning_rate, max(warmup_steps, 0), max(total_steps, warmup_steps + 1))
  chain = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
  chain.append(optax.adamw(schedule, b2=b2, weight_decay=weight_decay))
  return optax.chain(*chain)


def apply_gradients(state: TrainState, grads: Any, tx: optax.GradientTransformation,
                    rng: jax.Array | None = None) -> TrainState:
  """The state after one optimiser update with ``grads``."""
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1,
                    state.rng if rng is None else rng)
