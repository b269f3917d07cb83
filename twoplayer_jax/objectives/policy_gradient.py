"""Policy learning for either role: advantages, policy losses, value loss, KL, entropy.

Every function takes ``[B, T]`` arrays aligned with the transcript (see ``tokens.py``)
and a ``mask [B, T]`` of the learner's own tokens: the other player's tokens are not
time steps of the learner. Sequence-level estimators (batch baseline, RLOO, GRPO) give
one advantage per game, spread over the learner's tokens by ``per_token``; ``turn_advantages``
gives one per learner turn, to each of its tokens; GAE gives one per token. Per-token
losses become one number by ``aggregate``.
"""

import jax
import jax.numpy as jnp

from twoplayer_jax.objectives.tokens import log_policy, masked_mean, shift_right

AGGREGATIONS = ("token_mean", "sequence_mean", "constant")
GROUP_STDS = ("population", "sample", None)


def _check(expected: str, floating: tuple[str, ...] = (), **arrays) -> None:
  """Raises a ValueError naming the first of ``arrays`` whose rank is not that of
  ``expected`` (e.g. "[batch, length]") or whose shape is not the first array's, or one
  named in ``floating`` that does not hold floats."""
  rank = expected.count(",") + 1
  (first, reference), *_ = arrays.items()
  for name, x in arrays.items():
    if x.ndim != rank:
      raise ValueError(f"{name} {x.shape} must be {expected}")
    if x.shape != reference.shape:
      raise ValueError(f"{name} {x.shape} must be {expected} like {first} {reference.shape}")
    if name in floating and not jnp.issubdtype(x.dtype, jnp.floating):
      raise ValueError(f"{name} must hold floats, got {x.dtype}")


def _groups(x: jax.Array, group_size: int) -> jax.Array:
  _check("[batch]", returns=x)
  if group_size < 1 or x.shape[0] % group_size:
    raise ValueError(f"group_size={group_size} must divide the batch of {x.shape} returns "
                     "(games of one opening lie next to each other)")
  return x.reshape(-1, group_size)


def _shifted(g: jax.Array) -> jax.Array:
  """``g [G, N]`` minus each group's first value.

  Centring these instead of ``g`` gives a group of equal values exactly 0 (a float mean of
  equal values need not equal them: eight float32 0.7 average 6e-8 below 0.7) and keeps
  the precision of large values.
  """
  return g - g[:, :1]


def _centred(g: jax.Array) -> jax.Array:
  """``g [G, N]`` minus each group's mean; exactly 0 in a group of equal values."""
  d = _shifted(g)
  return d - jnp.mean(d, axis=1, keepdims=True)


def batch_baseline(returns: jax.Array) -> jax.Array:
  """``[B]`` returns minus the batch mean (exactly 0 when all are equal)."""
  _check("[batch]", returns=returns)
  return _centred(returns[None])[0]


def rloo(returns: jax.Array, group_size: int) -> jax.Array:
  """``[B]`` leave-one-out advantages: each return minus the mean of the others of its
  group (``group_size`` >= 2 continuations of one opening, adjacent in the batch);
  exactly 0 in a group of equal returns."""
  if group_size < 2:
    raise ValueError(f"RLOO needs group_size >= 2, got {group_size}")
  d = _shifted(_groups(returns, group_size))
  others = (jnp.sum(d, axis=1, keepdims=True) - d) / (group_size - 1)
  return (d - others).reshape(-1)


def grpo(returns: jax.Array, group_size: int, eps: float = 1e-6,
         std: str | None = "population") -> jax.Array:
  """``[B]`` group-relative advantages: ``(r_i - m) / (s + eps)`` over each group.

  ``m`` is the group's mean return and ``s`` its standard deviation, ``s = sqrt(sum_i
  (r_i - m)^2 / (N - ddof))`` over the ``N = group_size`` returns. A group of equal
  returns gets exactly 0, for any ``eps`` (0 included).

  Args:
    returns: ``[B]`` one return per game, the ``group_size`` continuations of one
      opening adjacent.
    group_size: games per group.
    eps: added to ``s``.
    std: the normaliser ``s``: "population" (ddof 0, the GRPO paper's), "sample" (ddof
      1, as TRL's ``GRPOTrainer``, which uses ``eps=1e-4``: rewards [0, 1] give +-0.707
      where "population" gives +-0.999998), or None for no division, ``r_i - m`` only
      (Dr. GRPO: dividing by ``s`` weighs groups of nearly equal returns up).
  """
  if std not in GROUP_STDS:
    raise ValueError(f"std must be one of {GROUP_STDS}, got {std!r}")
  if std == "sample" and group_size < 2:
    raise ValueError(f"the sample std needs group_size >= 2, got {group_size}")
  centred = _centred(_groups(returns, group_size))
  if std is None:
    return centred.reshape(-1)
  ddof = 1 if std == "sample" else 0
  s = jnp.sqrt(jnp.sum(jnp.square(centred), axis=1, keepdims=True) / (group_size - ddof))
  # Where s is 0 the centred returns are 0 too; dividing them by 1 keeps eps=0 from NaN.
  return (centred / jnp.where(s > 0, s + eps, 1.0)).reshape(-1)


def per_token(advantages: jax.Array, mask: jax.Array) -> jax.Array:
  """``[B, T]``: each game's advantage ``[B]`` on its masked tokens ``mask [B, T]``."""
  _check("[batch]", advantages=advantages)
  _check("[batch, length]", mask=mask)
  if mask.shape[0] != advantages.shape[0]:
    raise ValueError(f"mask {mask.shape} must be [batch, length] for advantages "
                     f"{advantages.shape}")
  return advantages[:, None] * mask


def turn_advantages(rewards: jax.Array, mask: jax.Array, group_size: int) -> jax.Array:
  """``[B, T]`` turn-level advantages: one per learner turn, given to each of its tokens.

  A learner turn is a maximal run of masked tokens. Its advantage is the rewards from its
  first token to the end of the game (undiscounted, the other player's replies
  included) minus the mean of the same over the games of its group that have a turn of
  that number (the learner's k-th turn of each): GRPO's group baseline (without its
  division by the std), turn by turn, so that a turn is credited with what followed it
  and not with the rewards before it. A turn number that one game alone reached gets 0.

  Args:
    rewards: ``[B, T]`` the learner's reward for the step writing each token.
    mask: ``[B, T]`` the learner's tokens.
    group_size: games per group (continuations of one opening, adjacent in the batch).
  """
  _check("[batch, length]", rewards=rewards, mask=mask)
  b, t = mask.shape
  if group_size < 1 or b % group_size:
    raise ValueError(f"group_size={group_size} must divide the batch of {b} games")
  mask = mask.astype(bool)
  first = mask & ~shift_right(mask[:, :-1])
  to_go = jnp.cumsum(rewards[:, ::-1].astype(jnp.float32), axis=1)[:, ::-1]
  number = jnp.maximum(jnp.cumsum(first, axis=1) - 1, 0)  # [B, T] the learner's turn.
  group = (jnp.arange(b) // group_size)[:, None] * t + number
  own = (jnp.arange(b)[:, None] * t + number).reshape(-1)
  turn_sum = lambda ids, x: jax.ops.segment_sum((x * first).reshape(-1), ids.reshape(-1),
                                                b * t)
  mean = turn_sum(group, to_go) / jnp.maximum(turn_sum(group, jnp.ones_like(to_go)), 1)
  advantage = turn_sum(own, to_go)[own] - mean[group.reshape(-1)]
  return jnp.where(mask, advantage.reshape(b, t), 0.0)


def gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, gamma: float = 1.0,
        lam: float = 1.0, *, bootstrap: jax.Array | None = None,
        dones: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Generalised advantage estimation over the learner's own tokens.

  The learner's time steps are its masked tokens; a reward paid at another token (e.g.
  the payoff when the opponent ends the game) belongs to the learner's latest step
  before it, undiscounted, so a terminal reward is neither decayed nor lost across the
  opponent's tokens. With every token masked it is the textbook single-player GAE:
  ``A_t = delta_t + gamma lam A_{t+1}``, ``delta_t = r_t + gamma V_{t+1} - V_t``.

  Args:
    rewards: ``[B, T]`` the learner's reward for the step writing each token.
    values: ``[B, T]`` the learner's value of the state before each of its tokens.
    mask: ``[B, T]`` the learner's tokens.
    gamma: discount per learner step.
    lam: GAE lambda.
    bootstrap: ``[B]`` the value of the state after each row, for rows cut off by a
      limit before their episode ended; 0 (the row ends its episode) if None.
    dones: ``[B, T]`` bool, True at the last token of an episode inside a row: the next
      token starts a new episode, and no value, advantage or reward flows back across
      it. A row ending on a done ignores its bootstrap. None: one episode per row.

  Returns:
    ``advantages [B, T]`` and ``returns [B, T]`` (advantages + values), 0 off the mask.
  """
  episodes = {} if dones is None else {"dones": dones}
  _check("[batch, length]", rewards=rewards, values=values, mask=mask, **episodes)
  batch = rewards.shape[:1]
  if bootstrap is not None and bootstrap.shape != batch:
    raise ValueError(f"bootstrap {bootstrap.shape} must be [batch] for rewards "
                     f"{rewards.shape}")
  mask = mask.astype(bool)

  def back(carry, x):
    r, v, m, done = x
    if done is not None:
      carry = tuple(jnp.where(done, 0.0, c) for c in carry)
    next_value, next_adv, pending = carry
    r = r + pending
    adv = r + gamma * next_value - v + gamma * lam * next_adv
    carry = (jnp.where(m, v, next_value), jnp.where(m, adv, next_adv), jnp.where(m, 0.0, r))
    return carry, jnp.where(m, adv, 0.0)

  zeros = jnp.zeros(batch, jnp.float32)
  last_value = zeros if bootstrap is None else bootstrap.astype(jnp.float32)
  _, adv = jax.lax.scan(back, (last_value, zeros, zeros),
                        (rewards.T.astype(jnp.float32), values.T.astype(jnp.float32), mask.T,
                         None if dones is None else dones.T.astype(bool)), reverse=True)
  adv = adv.T
  return adv, jnp.where(mask, adv + values, 0.0)


def aggregate(x: jax.Array, mask: jax.Array, aggregation: str = "token_mean",
              normalizer: float | None = None) -> jax.Array:
  """One number from per-token terms ``x [B, T]`` over the weights ``mask [B, T]``.

  Args:
    x: ``[B, T]`` a loss per token.
    mask: ``[B, T]`` the learner's tokens (or weights).
    aggregation: "token_mean": the mean over every masked token of the batch, so longer
      sequences weigh more (``masked_mean``). "sequence_mean": each sequence's mean over
      its masked tokens, then the mean over the ``B`` sequences (the GRPO paper's
      ``1/G sum_i 1/|o_i| sum_t``); a sequence without masked tokens counts as 0.
      "constant": the sum over every masked token divided by ``B * normalizer``, i.e.
      each sequence's sum divided by ``normalizer``, averaged over the sequences (Dr.
      GRPO, with ``normalizer`` the most learner tokens a sequence can hold): no length
      is favoured.
    normalizer: the constant of "constant" (required there, unused otherwise).
  """
  _check("[batch, length]", x=x, mask=mask)
  if aggregation == "token_mean":
    return masked_mean(x, mask)
  sums = jnp.sum(x * mask, axis=-1)
  if aggregation == "sequence_mean":
    return jnp.mean(sums / jnp.maximum(jnp.sum(mask, axis=-1), 1e-8))
  if aggregation == "constant":
    if normalizer is None:
      raise ValueError("aggregation='constant' needs a normalizer (e.g. the most learner "
                       "tokens a sequence can hold)")
    return jnp.mean(sums) / normalizer
  raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def reinforce_loss(logp: jax.Array, advantages: jax.Array, mask: jax.Array,
                   aggregation: str = "token_mean", normalizer: float | None = None
                   ) -> jax.Array:
  """-(advantage * log-probability) over the learner's tokens, aggregated.

  Args:
    logp: ``[B, T]`` log-probabilities under the policy being updated.
    advantages: ``[B, T]`` (no gradient flows into them).
    mask: ``[B, T]`` the learner's tokens.
    aggregation: how tokens and sequences are averaged; see ``aggregate``.
    normalizer: the constant of ``aggregation="constant"``.
  """
  _check("[batch, length]", ("logp",), logp=logp, advantages=advantages, mask=mask)
  return -aggregate(logp * jax.lax.stop_gradient(advantages), mask, aggregation, normalizer)


def ppo_loss(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, mask: jax.Array,
             clip_eps: float = 0.2, aggregation: str = "token_mean",
             normalizer: float | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The clipped surrogate of PPO over the learner's tokens.

  Per token, ``-min(r A, clip(r, 1 - clip_eps, 1 + clip_eps) A)`` with ``r = exp(logp -
  old_logp)``, aggregated over tokens and sequences.

  Args:
    logp: ``[B, T]`` log-probabilities under the policy being updated.
    old_logp: ``[B, T]`` log-probabilities under the policy that played.
    advantages: ``[B, T]``.
    mask: ``[B, T]`` the learner's tokens.
    clip_eps: the ratio is clipped to [1 - clip_eps, 1 + clip_eps].
    aggregation: how tokens and sequences are averaged; see ``aggregate``.
    normalizer: the constant of ``aggregation="constant"``.

  Returns:
    The loss and metrics ``clip_fraction`` and ``approx_kl`` (k3 of old to new), both
    means over the masked tokens.
  """
  _check("[batch, length]", ("logp", "old_logp"), logp=logp, old_logp=old_logp,
         advantages=advantages, mask=mask)
  adv = jax.lax.stop_gradient(advantages)
  log_ratio = logp - jax.lax.stop_gradient(old_logp)
  ratio = jnp.exp(log_ratio)
  surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
  metrics = {
      "clip_fraction": masked_mean((jnp.abs(ratio - 1) > clip_eps).astype(jnp.float32), mask),
      "approx_kl": masked_mean(jax.lax.stop_gradient(ratio - 1 - log_ratio), mask),
  }
  return -aggregate(surrogate, mask, aggregation, normalizer), metrics


def value_loss(values: jax.Array, old_values: jax.Array, returns: jax.Array, mask: jax.Array,
               clip: float | None = None) -> jax.Array:
  """Squared error of ``values [B, T]`` against ``returns [B, T]``, halved and averaged
  over the tokens of ``mask [B, T]``; pessimistically clipped around ``old_values [B, T]``
  (as PPO: the larger of the errors of the value and of the value moved at most ``clip``
  from the old one) when ``clip`` is given."""
  _check("[batch, length]", ("values",), values=values, old_values=old_values,
         returns=returns, mask=mask)
  loss = jnp.square(values - returns)
  if clip is not None:
    clipped = old_values + jnp.clip(values - old_values, -clip, clip)
    loss = jnp.maximum(loss, jnp.square(clipped - returns))
  return 0.5 * masked_mean(loss, mask)


def kl(logp: jax.Array, ref_logp: jax.Array, estimator: str = "k3") -> jax.Array:
  """``[B, T]`` per-token estimate of KL(policy || reference) from sampled tokens.

  ``k1 = logp - ref_logp`` is unbiased but noisy and can be negative; ``k3 = r - 1 -
  log r`` with ``r = exp(ref_logp - logp)`` is unbiased and never negative. Both average
  to ``kl_from_logits`` over tokens sampled from the policy.
  """
  if logp.shape != ref_logp.shape:
    raise ValueError(f"ref_logp {ref_logp.shape} must have the shape of logp {logp.shape}")
  if estimator == "k1":
    return logp - ref_logp
  if estimator == "k3":
    log_r = ref_logp - logp
    return jnp.exp(log_r) - 1 - log_r
  raise ValueError(f"estimator must be 'k1' or 'k3', got {estimator!r}")


def kl_from_logits(logits_p: jax.Array, logits_q: jax.Array,
                   legal: jax.Array | None = None) -> jax.Array:
  """``[B, T]`` exact KL(p || q) of the next-token distributions, aligned like
  ``token_logprobs``: index t is the KL at the state before token t, 0 at position 0.

  Both distributions are over the tokens the policy samples (``log_policy``): the logits
  restricted to ``legal`` and renormalised, as ``token_logprobs`` reads the sampled
  tokens' log-probabilities that ``kl`` estimates from.

  Args:
    logits_p: ``[B, T-1, V]`` the policy's logits (the forward pass over
      ``tokens[:, :-1]``).
    logits_q: ``[B, T-1, V]`` the reference's logits over the same tokens.
    legal: ``[B, T, V']`` the mask each token was written under
      (``Trajectory.legal``); every writable token if None.
  """
  _check("[batch, length - 1, vocab]", ("logits_p", "logits_q"), logits_p=logits_p,
         logits_q=logits_q)
  b, t, _ = logits_p.shape
  if legal is not None and (legal.ndim != 3 or legal.shape[:2] != (b, t + 1)):
    raise ValueError(f"legal {legal.shape} must be [batch, length, vocab'] for logits_p "
                     f"{logits_p.shape}")
  moves = None if legal is None else legal[:, 1:]
  logp, logq = log_policy(logits_p, moves), log_policy(logits_q, moves)
  return shift_right(jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1))
