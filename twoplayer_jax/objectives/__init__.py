"""Every training stage as a pure objective over game trajectories.

One mechanism: a mask of the learner's tokens (from each token's owner) and a weight per
token: 1 for cloning, an advantage for policy learning, a preference margin for DPO.
Objectives know arrays, not games.
"""

from twoplayer_jax.objectives.imitation import imitation_loss, imitation_weights
from twoplayer_jax.objectives.policy_gradient import (
    AGGREGATIONS, GROUP_STDS, aggregate, batch_baseline, gae, grpo, kl, kl_from_logits,
    per_token, ppo_loss, reinforce_loss, rloo, turn_advantages, value_loss)
from twoplayer_jax.objectives.preference import preference_loss
from twoplayer_jax.objectives.reward_model import (
    bradley_terry_loss, final_scores, regression_loss)
from twoplayer_jax.objectives.tokens import (
    log_policy, masked_mean, sequence_sum, shift_right, token_entropy, token_logprobs,
    valid_tokens, widen)
