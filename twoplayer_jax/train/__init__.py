"""Training: the train state, pure update steps, and the policy-learning iteration.

The loop that drives them (checkpoints, metrics, files) is the shell: ``train.loop``.
"""

from twoplayer_jax.train.rl import Frozen, RLSettings, make_iteration
from twoplayer_jax.train.state import TrainState, apply_gradients, create, optimizer
from twoplayer_jax.train.steps import (
    forward, grouped_forward, imitation_batch, imitation_step, jit_update, preference_step,
    reward_model_step, reward_scores, seat_forward, sequence_logprobs, with_reference)
