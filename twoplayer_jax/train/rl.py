"""One policy-learning iteration as ONE pure function: play, score, advantages, update.

``make_iteration`` returns ``iteration(state, params) -> (state, metrics)``. Who learns is
``settings.play``:

  "opponent":     the learner (seat ``settings.role``) plays a fixed opponent;
  "self_play":    one policy plays both seats and learns from both seats' tokens;
  "two_learners": one policy per seat, their parameters stacked on a leading axis of 2
                  (seat one's first) and updated in the same iteration (or alternately);
  "population":   the learner (seat ``settings.role``) plays, per opening, a member of a
                  population of policies of its own architecture drawn from a
                  meta-strategy (fictitious self-play: uniform over past snapshots; PSRO:
                  the meta-game's Nash equilibrium; see ``gametheory.matrix``).

The games are scored by the game's payoff (each seat's own), a learned reward model, or
both; advantages are estimated over each learning seat's own tokens, and the learners
are updated for a few epochs of minibatches. Every model reads its seat's view (its
private text, then the transcript), in play and in training alike. ``state.step``
counts iterations (the optimiser counts its own steps). Jit it with
``donate_argnums=0``; ``jax.vmap`` it over train states to train several seeds at once.
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from twoplayer_jax import game as game_lib
from twoplayer_jax import objectives, players, rollout
from twoplayer_jax.models.interface import Model
from twoplayer_jax.train.state import TrainState
from twoplayer_jax.train.steps import reward_scores, seat_forward

ALGORITHMS = ("reinforce", "rloo", "grpo", "turn", "ppo")
PLAY = ("opponent", "self_play", "two_learners", "population")


@dataclasses.dataclass(frozen=True)
class RLSettings:
  """Settings of policy learning.

  Attributes:
    algorithm: advantage estimator: "reinforce" (return minus a baseline), "rloo"
      (leave-one-out within a group), "grpo" (group-normalised), "turn" (one advantage
      per learner turn: its rewards to go minus the group's mean at that turn,
      ``objectives.turn_advantages``) or "ppo" (GAE with the learner's value head).
    play: who learns: "opponent", "self_play" or "two_learners" (see the module).
    role: the learner's seat, 1 or 2, with "opponent" and "population".
    alternate: with "two_learners", update one seat per iteration (seat one at even
      iterations) instead of both.
    num_openings: distinct openings per iteration.
    group_size: games per opening (continuations compared by RLOO and GRPO).
    epochs: passes over the games per iteration.
    minibatches: gradient steps per epoch, each on whole groups (the openings' shared
      tokens are read once per group); must divide ``num_openings``.
    clip_eps: PPO's ratio clip, used by every algorithm's surrogate (at ratio 1 it is
      the REINFORCE gradient).
    aggregation: how token losses are averaged (``objectives.aggregate``): "token_mean"
      over every learner token of the batch, "sequence_mean" (each game's mean, then
      over games: the GRPO paper) or "constant" (the sum over a constant: Dr. GRPO).
    loss_normalizer: the constant of "constant"; None for the transcript capacity.
    grpo_std: GRPO's normaliser, "population", "sample" (ddof 1) or None (centring only).
    grpo_eps: added to GRPO's std (1e-4 matches the most used PyTorch trainer).
    baseline: REINFORCE's baseline: "batch" (batch mean) or "value" (value head).
    gamma: discount per learner step (GAE and the value baseline).
    lam: GAE lambda.
    normalize_advantages: whiten advantages over the learner's tokens of the batch.
    value_coef: weight of the value loss (PPO and the value baseline).
    value_clip: clip of the value update around the values at play; None for none.
    value_only: learn the value head alone, from the value loss (no policy, KL or
      entropy term; every other parameter kept as it is): a warm-up of the critic on the
      start's own games before PPO.
    kl_coef: weight of the KL to the reference policy; 0 for none (``Frozen.kl_coef``,
      when given, replaces it).
    kl_estimator: "k1" or "k3".
    kl_in_reward: subtract kl_coef * k1 from each learner token's reward instead of
      adding a KL loss.
    entropy_coef: weight of the entropy bonus.
    reward_source: "payoff" (the game's), "model" (a learned reward model's score of the
      finished transcript), or "sum" of both.
  """
  algorithm: str = "grpo"
  play: str = "opponent"
  role: int = 2
  alternate: bool = False
  num_openings: int = 8
  group_size: int = 8
  epochs: int = 1
  minibatches: int = 1
  clip_eps: float = 0.2
  aggregation: str = "token_mean"
  loss_normalizer: float | None = None
  grpo_std: str | None = "population"
  grpo_eps: float = 1e-6
  baseline: str = "batch"
  gamma: float = 1.0
  lam: float = 0.95
  normalize_advantages: bool = False
  value_coef: float = 0.5
  value_clip: float | None = 0.2
  value_only: bool = False
  kl_coef: float = 0.0
  kl_estimator: str = "k3"
  kl_in_reward: bool = False
  entropy_coef: float = 0.0
  reward_source: str = "payoff"

  def __post_init__(self):
    choices = {"algorithm": ALGORITHMS, "play": PLAY, "role": (1, 2), "baseline": ("batch", "value"),
               "kl_estimator": ("k1", "k3"), "reward_source": ("payoff", "model", "sum"),
               "aggregation": objectives.AGGREGATIONS, "grpo_std": objectives.GROUP_STDS}
    for name, allowed in choices.items():
      if getattr(self, name) not in allowed:
        raise ValueError(f"RLSettings.{name} must be one of {allowed}, got "
                         f"{getattr(self, name)!r}")
    if self.num_openings % self.minibatches:
      raise ValueError(f"minibatches={self.minibatches} must divide num_openings="
                       f"{self.num_openings}: a minibatch holds whole groups")
    if self.algorithm in ("rloo", "grpo", "turn") and self.group_size < 2:
      raise ValueError(f"{self.algorithm} compares continuations: group_size must be >= 2")
    if len(self.seats) > 1 and self.reward_source != "payoff":
      raise ValueError(f"play={self.play!r} scores each seat by its own payoff: "
                       f"reward_source must be 'payoff', got {self.reward_source!r}")
    if self.value_only and not self.uses_values:
      raise ValueError(f"value_only learns the value head: algorithm {self.algorithm!r} "
                       f"with baseline {self.baseline!r} has none")
    if self.alternate and self.play != "two_learners":
      raise ValueError("alternate=True takes turns between two learners: "
                       f"play must be 'two_learners', got {self.play!r}")

  @property
  def seats(self) -> tuple[int, ...]:
    """The learning seats."""
    if self.play in ("opponent", "population"):
      return (self.role,)
    return (game_lib.ONE, game_lib.TWO)

  @property
  def uses_values(self) -> bool:
    return self.algorithm == "ppo" or (self.algorithm == "reinforce" and self.baseline == "value")


class Frozen(NamedTuple):
  """The frozen parameters an iteration reads and does not learn, each None when unused:
  the opponent's (with "population", the members' stacked ``[K, ...]``), the
  meta-strategy ``[K]`` over the population (probabilities; 0 for empty slots), the
  reference policy's (for the KL, e.g. the cloned policy or a magnet; with "two_learners"
  one per seat, stacked like the learners) and the reward model's; and ``kl_coef``, a
  ``[]`` weight of the KL replacing ``RLSettings.kl_coef``: frozen values are vmapped as
  seeds are, so runs of several KL weights train side by side."""
  opponent: Any = None
  reference: Any = None
  reward_model: Any = None
  meta_strategy: jax.Array | None = None
  kl_coef: jax.Array | None = None


def _rewards(traj: game_lib.Trajectory, seat: int, settings: RLSettings,
             reward_model: Model | None, rm_params) -> tuple[jax.Array, jax.Array]:
  """``[B, T]`` rewards of ``seat`` by the chosen source, and the reward model's ``[B]``
  scores (0 without one)."""
  payoff = traj.reward[..., seat - 1]
  if reward_model is None:
    return payoff, jnp.zeros(payoff.shape[0])
  scores = reward_scores(reward_model, rm_params, traj.tokens, traj.length)
  learned = jnp.zeros_like(payoff).at[jnp.arange(payoff.shape[0]), traj.length - 1].set(scores)
  return {"payoff": payoff, "model": learned, "sum": payoff + learned}[settings.reward_source], scores


def make_iteration(game: game_lib.Game, model: Model, tx: optax.GradientTransformation,
                   opponent: players.Player | None, settings: RLSettings,
                   reference: Model | None = None, reward_model: Model | None = None,
                   games_sharding: jax.sharding.Sharding | None = None
                   ) -> Callable[[TrainState, Frozen], tuple[TrainState, dict]]:
  """The pure policy-learning iteration of ``model`` (see the module for ``settings.play``).

  Args:
    game: the game played.
    model: the learners' transformer (with ``scalar_head`` for PPO or a value baseline).
    tx: the optimiser (of each learner: "two_learners" states hold one optimiser state
      per seat, ``train.create(..., stacked=True)``).
    opponent: the fixed player in the other seat when ``play == "opponent"``, else None
      (a population's members are model players of ``model``).
    settings: see ``RLSettings``.
    reference: the reference policy's model for the KL (the learner's own architecture
      if None and ``kl_coef`` > 0).
    reward_model: a scalar-head model scoring finished transcripts, needed unless
      ``reward_source == "payoff"``.
    games_sharding: a sharding of the games' leading axis (e.g. ``NamedSharding(mesh,
      P("data"))``): the iteration's games are played and learned from split over those
      devices. Random draws do not depend on it (JAX's partitionable threefry), so the
      iteration computes the same on any number of devices, up to float summation order.
      Under ``jax.vmap`` over seeds the seed axis is left to the caller.
  """
  if settings.uses_values and not model.config.scalar_head:
    raise ValueError(f"{settings.algorithm} with baseline={settings.baseline!r} needs the "
                     "learner's value head: TransformerConfig(scalar_head=True)")
  if settings.reward_source != "payoff" and reward_model is None:
    raise ValueError(f"reward_source={settings.reward_source!r} needs a reward_model")
  if (opponent is None) == (settings.play == "opponent"):
    raise ValueError(f"play={settings.play!r} takes "
                     + ("an opponent player" if settings.play == "opponent" else "no opponent"))
  reference = reference or model
  learner = {seat: players.model_player(model, game, seat=seat)
             for seat in (game_lib.ONE, game_lib.TWO)}
  group = settings.group_size
  stacked = settings.play == "two_learners"

  def seat_params(params, seat):
    return jax.tree.map(lambda x: x[seat - 1], params) if stacked else params

  def views(model, params, tokens, hidden):
    """Each learning seat's ``(logits, values)`` of the transcripts: one pass per distinct
    view (one for both seats of a policy in a game without private text)."""
    read = lambda seat: seat_forward(model, seat_params(params, seat), game, tokens, hidden,
                                     seat, group)
    if stacked or game.private_length or len(settings.seats) == 1:
      return [read(seat) for seat in settings.seats]
    return [read(settings.seats[0])] * len(settings.seats)

  def seat_loss(read, mb, mine, kl_coef):
    """The policy loss of a seat's tokens: ``read`` its ``(logits, values)``, ``mine`` its
    ``[B, T]`` arrays, ``kl_coef`` the KL's weight (None: no KL loss)."""
    logits, values = read
    logp = objectives.token_logprobs(logits, mb["tokens"], mb["legal"])
    normalizer = settings.loss_normalizer or mb["tokens"].shape[1] - 1
    loss, metrics = objectives.ppo_loss(logp, mb["logprob"], mine["advantages"], mine["mask"],
                                        settings.clip_eps, settings.aggregation, normalizer)
    if settings.value_only:
      loss = 0.0
    if settings.uses_values:
      v_loss = objectives.value_loss(values, mb["value"], mine["returns"], mine["mask"],
                                     settings.value_clip)
      loss += settings.value_coef * v_loss
      metrics["value_loss"] = v_loss
    if kl_coef is not None and not settings.kl_in_reward and not settings.value_only:
      loss += kl_coef * objectives.aggregate(
          objectives.kl(logp, mine["ref_logp"], settings.kl_estimator), mine["mask"],
          settings.aggregation, normalizer)
    entropy = objectives.masked_mean(objectives.token_entropy(logits, mb["legal"]),
                                     mine["mask"])
    if settings.entropy_coef and not settings.value_only:  # Else a metric only.
      loss -= settings.entropy_coef * entropy
    metrics.update(loss=loss, entropy=entropy)
    return loss, metrics

  def loss_fn(params, mb, kl_coef):
    reads = views(model, params, mb["tokens"], mb["hidden"])
    losses, metrics = zip(*[seat_loss(read, mb, jax.tree.map(lambda x: x[:, i], mb["seat"]),
                                      kl_coef) for i, read in enumerate(reads)])
    loss = sum(losses)
    return loss, {**_by_seat(metrics, settings.seats), "loss": loss}

  def update(params, opt_state, grads, step):
    if not stacked:
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state
    # Each learner its own optimiser: no gradient clipping across the two seats.
    updates, new_opt_state = jax.vmap(tx.update)(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if not settings.alternate:
      return new_params, new_opt_state
    moving = jnp.arange(2) == step % 2
    pick = lambda new, old: jnp.where(moving.reshape((2,) + (1,) * (new.ndim - 1)), new, old)
    return jax.tree.map(pick, new_params, params), jax.tree.map(pick, new_opt_state, opt_state)

  def play(params, fixed: Frozen, key):
    """The iteration's games, ``num_openings`` groups of ``group_size``."""
    if settings.play == "opponent":
      seats = (learner[1], opponent) if settings.role == 1 else (opponent, learner[2])
      pair = (params, fixed.opponent) if settings.role == 1 else (fixed.opponent, params)
      return rollout.play(game, seats, pair, key, settings.num_openings * group, group)
    if settings.play != "population":
      return rollout.play(game, (learner[1], learner[2]),
                          (seat_params(params, 1), seat_params(params, 2)), key,
                          settings.num_openings * group, group)
    # Each group against one member: the members' weights gathered per group and the
    # groups' games vmapped, as seeds are (no per-game gather in the decode loop).
    k_member, k_games = jax.random.split(key)
    member = jax.random.categorical(k_member, jnp.log(fixed.meta_strategy),
                                    shape=(settings.num_openings,))
    members = jax.tree.map(lambda x: x[member], fixed.opponent)
    role = settings.role

    def one_group(opponent_params, key):
      pair = (params, opponent_params) if role == 1 else (opponent_params, params)
      return rollout.play(game, (learner[1], learner[2]), pair, key, group, group)

    traj = jax.vmap(one_group)(members, jax.random.split(k_games, settings.num_openings))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), traj)

  def iteration(state: TrainState, fixed: Frozen) -> tuple[TrainState, dict]:
    rng, k_play, k_epochs = jax.random.split(state.rng, 3)
    traj = play(state.params, fixed, k_play)
    if games_sharding is not None:
      traj = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, games_sharding), traj)

    per_seat, scores = [], jnp.zeros(traj.tokens.shape[0])
    kl_coef = fixed.kl_coef if fixed.kl_coef is not None else (
        settings.kl_coef if settings.kl_coef > 0 else None)
    use_kl = kl_coef is not None
    if use_kl:
      if fixed.reference is None:
        raise ValueError("a KL weight needs the reference policy's parameters: Frozen.reference")
      ref_reads = views(reference, fixed.reference, traj.tokens, traj.hidden)
    for i, seat in enumerate(settings.seats):
      mask = ((traj.owner == seat) & traj.played).astype(jnp.float32)
      rewards, scores = _rewards(traj, seat, settings, reward_model, fixed.reward_model)
      ref_logp = jnp.zeros_like(mask)
      if use_kl:
        ref_logp = objectives.token_logprobs(ref_reads[i][0], traj.tokens, traj.legal)
      if use_kl and settings.kl_in_reward:
        rewards = rewards - kl_coef * mask * objectives.kl(traj.logprob, ref_logp, "k1")
      advantages, returns = _advantages(rewards, traj.value, mask, settings)
      per_seat.append({"mask": mask, "advantages": advantages, "returns": returns,
                       "ref_logp": ref_logp})
    data = {"tokens": traj.tokens, "logprob": traj.logprob, "value": traj.value,
            "hidden": traj.hidden, "legal": traj.legal,
            "seat": jax.tree.map(lambda *x: jnp.stack(x, axis=1), *per_seat)}  # [B, S, T]

    def epoch(carry, key):
      def minibatch(carry, mb):
        params, opt_state = carry
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, mb, kl_coef)
        new_params, opt_state = update(params, opt_state, grads, state.step)
        params = ({**params, "scalar_head": new_params["scalar_head"]} if settings.value_only
                  else new_params)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return (params, opt_state), metrics

      groups = jax.random.permutation(key, settings.num_openings)
      order = (groups[:, None] * group + jnp.arange(group)).reshape(settings.minibatches, -1)
      return jax.lax.scan(minibatch, carry, jax.tree.map(lambda x: x[order], data))

    (new_params, opt_state), metrics = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(k_epochs, settings.epochs))
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics.update(
        payoff_one=jnp.mean(traj.returns[:, 0]), payoff_two=jnp.mean(traj.returns[:, 1]),
        game_length=jnp.mean(traj.length - traj.opening_length))
    seat_metrics = []
    for mine in per_seat:
      seat_metrics.append({"learner_tokens": jnp.sum(mine["mask"])})
      if use_kl:
        seat_metrics[-1]["kl_to_reference"] = objectives.masked_mean(
            traj.logprob - mine["ref_logp"], mine["mask"])
    metrics.update(_by_seat(seat_metrics, settings.seats))
    if len(settings.seats) == 1:
      metrics["reward_model_score"] = jnp.mean(scores)
    return TrainState(new_params, opt_state, state.step + 1, rng), metrics

  return iteration


def _by_seat(metrics: tuple[dict, ...], seats: tuple[int, ...]) -> dict:
  """One learner's metrics as they are; several seats' named ``<metric>_one``,
  ``<metric>_two`` (and the iteration adds the total ``loss``)."""
  if len(seats) == 1:
    return dict(metrics[0])
  return {f"{k}_{'one' if seat == game_lib.ONE else 'two'}": v
          for seat, m in zip(seats, metrics) for k, v in m.items()}


def _advantages(rewards, values, mask, settings: RLSettings):
  """``[B, T]`` advantages and value targets over the learner's tokens."""
  if settings.algorithm == "ppo" or (settings.algorithm == "reinforce"
                                     and settings.baseline == "value"):
    lam = settings.lam if settings.algorithm == "ppo" else 1.0
    advantages, returns = objectives.gae(rewards, values, mask, settings.gamma, lam)
  elif settings.algorithm == "turn":
    advantages = objectives.turn_advantages(rewards, mask, settings.group_size)
    returns = jnp.zeros_like(mask)
  else:
    total = jnp.sum(rewards, axis=1)
    if settings.algorithm == "reinforce":
      sequence = objectives.batch_baseline(total)
    else:
      sequence = (objectives.rloo(total, settings.group_size) if settings.algorithm == "rloo"
                  else objectives.grpo(total, settings.group_size, settings.grpo_eps,
                                       settings.grpo_std))
    advantages, returns = objectives.per_token(sequence, mask), jnp.zeros_like(mask)
  if settings.normalize_advantages:
    mean = objectives.masked_mean(advantages, mask)
    std = jnp.sqrt(objectives.masked_mean(jnp.square(advantages - mean), mask))
    advantages = mask * (advantages - mean) / (std + 1e-6)
  return advantages, returns
