"""Every public objective refuses arrays of the wrong shape or dtype with an error that
names the argument."""

import jax.numpy as jnp
import pytest

from twoplayer_jax import objectives

BT = jnp.zeros((2, 5))  # [B, T]
OTHER = jnp.zeros((2, 4))
B = jnp.zeros(2)
LOGITS = jnp.zeros((2, 4, 8))
MODEL_LOGITS = jnp.zeros((2, 4, 260))  # Over the game's whole vocabulary.
LEGAL = jnp.ones((2, 5, 8), bool)
TOKENS = jnp.zeros((2, 5), jnp.int32)
LENGTH = jnp.array([5, 3])

CASES = {
    "batch_baseline": (lambda: objectives.batch_baseline(BT), "returns"),
    "rloo": (lambda: objectives.rloo(BT, 2), "returns"),
    "grpo": (lambda: objectives.grpo(BT, 2), "returns"),
    "per_token advantages": (lambda: objectives.per_token(BT, BT), "advantages"),
    "per_token mask": (lambda: objectives.per_token(jnp.zeros(3), BT), "mask"),
    "gae values": (lambda: objectives.gae(BT, OTHER, BT), "values"),
    "gae mask": (lambda: objectives.gae(BT, BT, B), "mask"),
    "gae dones": (lambda: objectives.gae(BT, BT, BT, dones=OTHER), "dones"),
    "gae bootstrap": (lambda: objectives.gae(BT, BT, BT, bootstrap=jnp.zeros(3)), "bootstrap"),
    "aggregate": (lambda: objectives.aggregate(BT, OTHER), "mask"),
    "reinforce_loss shape": (lambda: objectives.reinforce_loss(BT, OTHER, BT), "advantages"),
    "reinforce_loss dtype": (lambda: objectives.reinforce_loss(TOKENS, BT, BT), "logp"),
    "ppo_loss old_logp": (lambda: objectives.ppo_loss(BT, OTHER, BT, BT), "old_logp"),
    "ppo_loss mask": (lambda: objectives.ppo_loss(BT, BT, BT, B), "mask"),
    "value_loss returns": (lambda: objectives.value_loss(BT, BT, OTHER, BT), "returns"),
    "value_loss old_values": (lambda: objectives.value_loss(BT, B, BT, BT), "old_values"),
    "kl": (lambda: objectives.kl(BT, OTHER), "ref_logp"),
    "kl_from_logits logits_q": (lambda: objectives.kl_from_logits(LOGITS, LOGITS[:, 1:]),
                                "logits_q"),
    "kl_from_logits rank": (lambda: objectives.kl_from_logits(BT, BT), "logits_p"),
    "kl_from_logits dtype": (lambda: objectives.kl_from_logits(TOKENS[..., None],
                                                               TOKENS[..., None]), "logits_p"),
    "kl_from_logits legal": (lambda: objectives.kl_from_logits(LOGITS, LOGITS, LEGAL[:, 1:]),
                             "legal"),
    "preference_loss": (lambda: objectives.preference_loss(B, B, B, jnp.zeros(3)),
                        "ref_rejected"),
    "preference_loss rank": (lambda: objectives.preference_loss(BT, BT, BT, BT), "chosen"),
    "preference_loss dtype": (lambda: objectives.preference_loss(B, LENGTH, B, B), "rejected"),
    "bradley_terry_loss": (lambda: objectives.bradley_terry_loss(B, jnp.zeros(3)), "rejected"),
    "bradley_terry_loss margin": (lambda: objectives.bradley_terry_loss(B, B, jnp.zeros(3)),
                                  "margin"),
    "regression_loss": (lambda: objectives.regression_loss(B, jnp.zeros(3)), "payoffs"),
    "regression_loss rank": (lambda: objectives.regression_loss(BT, BT), "scores"),
    "final_scores": (lambda: objectives.final_scores(BT, jnp.array([5, 3, 2])), "length"),
    "final_scores dtype": (lambda: objectives.final_scores(BT, B), "length"),
    "imitation_weights owner": (lambda: objectives.imitation_weights(TOKENS, OTHER, LENGTH, 2),
                                "owner"),
    "imitation_weights length": (lambda: objectives.imitation_weights(TOKENS, TOKENS, B[:1], 2),
                                 "length"),
    "imitation_loss logits": (lambda: objectives.imitation_loss(MODEL_LOGITS[:, 1:], TOKENS, BT),
                              "logits"),
    "imitation_loss weights": (lambda: objectives.imitation_loss(MODEL_LOGITS, TOKENS, OTHER),
                               "weights"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_arguments_are_named(case):
  call, name = CASES[case]
  with pytest.raises(ValueError, match=rf"\b{name}\b"):
    call()
