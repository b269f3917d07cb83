"""One policy-learning iteration as ONE pure function: play, score, advantages, update.

``make_iteration`` returns ``iteration(state, params) -> (state, metrics)``: the learner
(seat ``settings.role``, a model player at temperature 1) plays a batch of games against
a fixed opponent, the games are scored by the game's payoff, a learned reward model, or
both, advantages are estimated over the learner's own tokens, and the learner is updated
for a few epochs of minibatches. ``state.step`` counts iterations (the optimiser counts
its own steps). Jit it with ``donate_argnums=0``; ``jax.vmap`` it over train states to
train several seeds at once.
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from twoplayer_jax import game as game_lib
from twoplayer_jax import objectives, players, rollout
from twoplayer_jax.models.transformer import Model
from twoplayer_jax.train.state import TrainState
from twoplayer_jax.train.steps import grouped_forward, positions_of

ALGORITHMS = ("reinforce", "rloo", "grpo", "ppo")


@dataclasses.dataclass(frozen=True)
class RLSettings:
  """Settings of policy learning.

  Attributes:
    algorithm: advantage estimator: "reinforce" (return minus a baseline), "rloo"
      (leave-one-out within a group), "grpo" (group-normalised), or "ppo" (GAE with the
      learner's value head).
    role: the learner's seat, 1 or 2.
    num_openings: distinct openings per iteration.
    group_size: games per opening (continuations compared by RLOO and GRPO).
    epochs: passes over the games per iteration.
    minibatches: gradient steps per epoch, each on whole groups (the openings' shared
      tokens are read once per group); must divide ``num_openings``.
    clip_eps: PPO's ratio clip, used by every algorithm's surrogate (at ratio 1 it is
      the REINFORCE gradient).
    baseline: REINFORCE's baseline: "batch" (batch mean) or "value" (value head).
    gamma: discount per learner step (GAE and the value baseline).
    lam: GAE lambda.
    normalize_advantages: whiten advantages over the learner's tokens of the batch.
    value_coef: weight of the value loss (PPO and the value baseline).
    value_clip: clip of the value update around the values at play; None for none.
    kl_coef: weight of the KL to the reference policy; 0 for none.
    kl_estimator: "k1" or "k3".
    kl_in_reward: subtract kl_coef * k1 from each learner token's reward instead of
      adding a KL loss.
    entropy_coef: weight of the entropy bonus.
    reward_source: "payoff" (the game's), "model" (a learned reward model's score of the
      finished transcript), or "sum" of both.
  """
  algorithm: str = "grpo"
  role: int = 2
  num_openings: int = 8
  group_size: int = 8
  epochs: int = 1
  minibatches: int = 1
  clip_eps: float = 0.2
  baseline: str = "batch"
  gamma: float = 1.0
  lam: float = 0.95
  normalize_advantages: bool = False
  value_coef: float = 0.5
  value_clip: float | None = 0.2
  kl_coef: float = 0.0
  kl_estimator: str = "k3"
  kl_in_reward: bool = False
  entropy_coef: float = 0.0
  reward_source: str = "payoff"

  def __post_init__(self):
    choices = {"algorithm": ALGORITHMS, "role": (1, 2), "baseline": ("batch", "value"),
               "kl_estimator": ("k1", "k3"), "reward_source": ("payoff", "model", "sum")}
    for name, allowed in choices.items():
      if getattr(self, name) not in allowed:
        raise ValueError(f"RLSettings.{name} must be one of {allowed}, got "
                         f"{getattr(self, name)!r}")
    if self.num_openings % self.minibatches:
      raise ValueError(f"minibatches={self.minibatches} must divide num_openings="
                       f"{self.num_openings}: a minibatch holds whole groups")
    if self.algorithm in ("rloo", "grpo") and self.group_size < 2:
      raise ValueError(f"{self.algorithm} compares continuations: group_size must be >= 2")

  @property
  def uses_values(self) -> bool:
    return self.algorithm == "ppo" or (self.algorithm == "reinforce" and self.baseline == "value")


class Params(NamedTuple):
  """The fixed parameters an iteration reads: the opponent's, the reference policy's (for
  the KL) and the reward model's (each None when unused)."""
  opponent: Any = None
  reference: Any = None
  reward_model: Any = None


def _rewards(traj: game_lib.Trajectory, settings: RLSettings, reward_model: Model | None,
             rm_params) -> tuple[jax.Array, jax.Array]:
  """``[B, T]`` learner rewards by the chosen source, and the reward model's ``[B]``
  scores (0 without one)."""
  payoff = traj.reward[..., settings.role - 1]
  if reward_model is None:
    return payoff, jnp.zeros(payoff.shape[0])
  _, scalars, _ = reward_model.apply(rm_params, traj.tokens, positions_of(traj.tokens))
  scores = objectives.final_scores(scalars, traj.length)
  learned = jnp.zeros_like(payoff).at[jnp.arange(payoff.shape[0]), traj.length - 1].set(scores)
  return {"payoff": payoff, "model": learned, "sum": payoff + learned}[settings.reward_source], scores


def make_iteration(game: game_lib.Game, model: Model, tx: optax.GradientTransformation,
                   opponent: players.Player, settings: RLSettings,
                   reference: Model | None = None, reward_model: Model | None = None
                   ) -> Callable[[TrainState, Params], tuple[TrainState, dict]]:
  """The pure policy-learning iteration of ``model`` in seat ``settings.role``.

  Args:
    game: the game played.
    model: the learner's transformer (with ``scalar_head`` for PPO or a value baseline).
    tx: the learner's optimiser.
    opponent: the fixed player in the other seat.
    settings: see ``RLSettings``.
    reference: the reference policy's model for the KL (the learner's own architecture
      if None and ``kl_coef`` > 0).
    reward_model: a scalar-head model scoring finished transcripts, needed unless
      ``reward_source == "payoff"``.
  """
  if settings.uses_values and not model.config.scalar_head:
    raise ValueError(f"{settings.algorithm} with baseline={settings.baseline!r} needs the "
                     "learner's value head: TransformerConfig(scalar_head=True)")
  if settings.reward_source != "payoff" and reward_model is None:
    raise ValueError(f"reward_source={settings.reward_source!r} needs a reward_model")
  reference = reference or model
  learner = players.model_player(model, game)
  group = settings.group_size
  role = settings.role
  # Transcripts of a group share their opening's first tokens: read once per group.
  read = lambda model, params, tokens: grouped_forward(model, params, tokens, group,
                                                       game.min_opening_length)

  def iteration(state: TrainState, fixed: Params) -> tuple[TrainState, dict]:
    rng, k_play, k_epochs = jax.random.split(state.rng, 3)
    seats = (learner, opponent) if role == 1 else (opponent, learner)
    seat_params = (state.params, fixed.opponent) if role == 1 else (fixed.opponent, state.params)
    traj = rollout.play(game, seats, seat_params, k_play, settings.num_openings * group, group)
    mask = (game_lib.role_mask(traj.owner, role) & traj.played).astype(jnp.float32)
    rewards, scores = _rewards(traj, settings, reward_model, fixed.reward_model)
    use_kl = settings.kl_coef > 0
    ref_logp = (objectives.token_logprobs(read(reference, fixed.reference, traj.tokens)[0],
                                          traj.tokens) if use_kl else jnp.zeros_like(mask))
    if use_kl and settings.kl_in_reward:
      rewards = rewards - settings.kl_coef * mask * objectives.kl(traj.logprob, ref_logp, "k1")
    advantages, returns = _advantages(rewards, traj.value, mask, settings)

    def loss_fn(params, mb):
      logits, values = read(model, params, mb["tokens"])
      logp = objectives.token_logprobs(logits, mb["tokens"])
      loss, metrics = objectives.ppo_loss(logp, mb["logprob"], mb["advantages"], mb["mask"],
                                          settings.clip_eps)
      if settings.uses_values:
        v_loss = objectives.value_loss(values, mb["value"], mb["returns"], mb["mask"],
                                       settings.value_clip)
        loss += settings.value_coef * v_loss
        metrics["value_loss"] = v_loss
      if use_kl and not settings.kl_in_reward:
        loss += settings.kl_coef * objectives.masked_mean(
            objectives.kl(logp, mb["ref_logp"], settings.kl_estimator), mb["mask"])
      entropy = objectives.masked_mean(objectives.token_entropy(logits), mb["mask"])
      if settings.entropy_coef:  # Else a metric only, with no gradient to compute.
        loss -= settings.entropy_coef * entropy
      metrics.update(loss=loss, entropy=entropy)
      return loss, metrics

    data = {"tokens": traj.tokens, "logprob": traj.logprob, "value": traj.value,
            "mask": mask, "advantages": advantages, "returns": returns, "ref_logp": ref_logp}

    def epoch(carry, key):
      def minibatch(carry, mb):
        params, opt_state = carry
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, mb)
        updates, opt_state = tx.update(grads, opt_state, params)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return (optax.apply_updates(params, updates), opt_state), metrics

      groups = jax.random.permutation(key, settings.num_openings)
      order = (groups[:, None] * group + jnp.arange(group)).reshape(settings.minibatches, -1)
      return jax.lax.scan(minibatch, carry, jax.tree.map(lambda x: x[order], data))

    (params, opt_state), metrics = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(k_epochs, settings.epochs))
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics.update(
        payoff_one=jnp.mean(traj.returns[:, 0]), payoff_two=jnp.mean(traj.returns[:, 1]),
        reward_model_score=jnp.mean(scores),
        learner_tokens=jnp.sum(mask), game_length=jnp.mean(traj.length - traj.opening_length))
    if use_kl:
      metrics["kl_to_reference"] = objectives.masked_mean(traj.logprob - ref_logp, mask)
    return TrainState(params, opt_state, state.step + 1, rng), metrics

  return iteration


def _advantages(rewards, values, mask, settings: RLSettings):
  """``[B, T]`` advantages and value targets over the learner's tokens."""
  if settings.algorithm == "ppo" or (settings.algorithm == "reinforce"
                                     and settings.baseline == "value"):
    lam = settings.lam if settings.algorithm == "ppo" else 1.0
    advantages, returns = objectives.gae(rewards, values, mask, settings.gamma, lam)
  else:
    total = jnp.sum(rewards, axis=1)
    if settings.algorithm == "reinforce":
      sequence = objectives.batch_baseline(total)
    else:
      estimator = objectives.rloo if settings.algorithm == "rloo" else objectives.grpo
      sequence = estimator(total, settings.group_size)
    advantages, returns = objectives.per_token(sequence, mask), jnp.zeros_like(mask)
  if settings.normalize_advantages:
    mean = objectives.masked_mean(advantages, mask)
    std = jnp.sqrt(objectives.masked_mean(jnp.square(advantages - mean), mask))
    advantages = mask * (advantages - mean) / (std + 1e-6)
  return advantages, returns
