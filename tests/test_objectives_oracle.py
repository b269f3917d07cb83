"""Every objective against an independent float64 NumPy oracle written plainly here (loops
where they read best), on small inputs where every branch matters: PPO's clip on both
sides and both signs of the advantage under each aggregation (loss, metrics, and its
gradient against a central finite difference of the oracle), GAE with gamma and lambda
below 1 over interleaved opponent tokens with bootstraps and episode ends, the group
advantages with each normaliser, the value clip, the KL estimators (whose exact
expectations under the policy must equal the exact KL), entropies and log-probabilities
under per-position legal masks, DPO/IPO with beta != 1, Bradley-Terry, regression and
cloning. Inputs are float32, the oracle reads them as float64, tolerances are tight."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import objectives, vocab

RTOL, ATOL = 1e-5, 1e-6


def close(got, want, rtol=RTOL, atol=ATOL):
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol)


def f64(x):
  return np.asarray(x, np.float64)


def numeric_grad(f, x, h=1e-6):
  """Central finite difference of the float64 scalar function ``f`` at ``x``."""
  x = f64(x)
  grad = np.zeros_like(x)
  for i in np.ndindex(x.shape):
    up, down = x.copy(), x.copy()
    up[i] += h
    down[i] -= h
    grad[i] = (f(up) - f(down)) / (2 * h)
  return grad


def log_sigmoid(x):
  return -np.logaddexp(0.0, -f64(x))


def np_log_softmax(logits, legal):
  """Log-probabilities over the ``legal [..., V]`` entries of ``logits [..., V]``; -inf
  elsewhere."""
  x = np.where(legal, f64(logits), -np.inf)
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


# ----------------------------------------------------------------------------------------
# PPO, REINFORCE and the aggregations.

def np_aggregate(x, mask, aggregation, normalizer=None):
  """Plain loops: one number from per-token terms ``x [B, T]``."""
  batch, length = x.shape
  if aggregation == "token_mean":
    total = sum(x[b, t] * mask[b, t] for b in range(batch) for t in range(length))
    count = sum(mask[b, t] for b in range(batch) for t in range(length))
    return total / count if count else 0.0
  per_row = []
  for b in range(batch):
    total = sum(x[b, t] * mask[b, t] for t in range(length))
    count = sum(mask[b, t] for t in range(length))
    if aggregation == "sequence_mean":
      per_row.append(total / count if count else 0.0)
    else:  # constant
      per_row.append(total / normalizer)
  return sum(per_row) / batch


def np_ppo(logp, old_logp, adv, mask, clip_eps, aggregation="token_mean", normalizer=None):
  logp, old_logp, adv, mask = map(f64, (logp, old_logp, adv, mask))
  ratio = np.exp(logp - old_logp)
  surrogate = np.zeros_like(ratio)
  for i in np.ndindex(ratio.shape):
    clipped = min(max(ratio[i], 1 - clip_eps), 1 + clip_eps)
    surrogate[i] = min(ratio[i] * adv[i], clipped * adv[i])
  loss = -np_aggregate(surrogate, mask, aggregation, normalizer)
  n = mask.sum()
  clip_fraction = np.sum((np.abs(ratio - 1) > clip_eps) * mask) / n
  log_ratio = logp - old_logp
  approx_kl = np.sum((ratio - 1 - log_ratio) * mask) / n  # k3 of old to new.
  return loss, clip_fraction, approx_kl


# Ratios below, inside and above [0.8, 1.2] (never within 0.05 of an edge), the first row
# with positive advantages, the second negative, the third mixed; the fourth has no
# learner token. Off-mask tokens carry large advantages and ratios, so any leak shows.
PPO_RATIO = np.array([[0.5, 0.75, 0.9, 1.0, 1.1, 1.3, 2.0, 1.25],
                      [0.5, 0.75, 0.9, 1.0, 1.1, 1.3, 2.0, 1.25],
                      [0.6, 1.4, 0.7, 1.6, 0.95, 1.05, 3.0, 0.4],
                      [3.0, 0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
PPO_ADV_SIGN = np.array([[1] * 8, [-1] * 8, [1, 1, -1, -1, 1, -1, 1, -1], [1] * 8])
PPO_MASK = np.array([[1, 1, 1, 1, 1, 1, 1, 0],
                     [0, 1, 1, 0, 1, 1, 1, 1],
                     [1, 1, 1, 1, 0, 1, 0, 1],
                     [0, 0, 0, 0, 0, 0, 0, 0]], np.float32)


def ppo_inputs(seed=0):
  rng = np.random.default_rng(seed)
  old_logp = rng.uniform(-3.0, -0.5, PPO_RATIO.shape).astype(np.float32)
  logp = (old_logp + np.log(PPO_RATIO)).astype(np.float32)
  adv = (PPO_ADV_SIGN * rng.uniform(0.5, 2.0, PPO_RATIO.shape)).astype(np.float32)
  adv = np.where(PPO_MASK > 0, adv, 100.0).astype(np.float32)
  logp = np.where(PPO_MASK > 0, logp, old_logp + 2.0).astype(np.float32)
  return logp, old_logp, adv


@pytest.mark.parametrize("clip_eps", [0.2, 0.15])
@pytest.mark.parametrize("aggregation", objectives.AGGREGATIONS)
def test_ppo_loss_gradient_and_metrics_against_numpy(aggregation, clip_eps):
  logp, old_logp, adv = ppo_inputs()
  kwargs = {"aggregation": aggregation, "normalizer": 7.0}
  (loss, metrics), grad = jax.value_and_grad(
      lambda lp: objectives.ppo_loss(lp, old_logp, adv, PPO_MASK, clip_eps, **kwargs),
      has_aux=True)(jnp.asarray(logp))
  want_loss, want_clip, want_kl = np_ppo(logp, old_logp, adv, PPO_MASK, clip_eps, **kwargs)
  close(loss, want_loss)
  close(metrics["clip_fraction"], want_clip)
  close(metrics["approx_kl"], want_kl)
  want_grad = numeric_grad(
      lambda lp: np_ppo(lp, old_logp, adv, PPO_MASK, clip_eps, **kwargs)[0], logp)
  close(grad, want_grad, atol=1e-6)
  # The clipped tokens whose clip binds have no gradient; the others do.
  assert np.sum(np.asarray(grad) != 0) == np.sum(np.abs(want_grad) > 1e-9) > 4


def test_ppo_differentiates_neither_old_logp_nor_advantages():
  logp, old_logp, adv = ppo_inputs(1)
  # First epoch: the new and old log-probabilities are one traced array. The ratio is
  # 1, and the gradient REINFORCE's, -A / n per masked token.
  grad = jax.grad(lambda lp: objectives.ppo_loss(lp, lp, adv, PPO_MASK)[0])(jnp.asarray(logp))
  close(grad, -f64(adv) * PPO_MASK / PPO_MASK.sum())
  grad_adv = jax.grad(lambda a: objectives.ppo_loss(logp, old_logp, a, PPO_MASK)[0])(
      jnp.asarray(adv))
  np.testing.assert_array_equal(grad_adv, 0.0)
  grad_adv = jax.grad(lambda a: objectives.reinforce_loss(logp, a, PPO_MASK))(jnp.asarray(adv))
  np.testing.assert_array_equal(grad_adv, 0.0)


@pytest.mark.parametrize("aggregation", objectives.AGGREGATIONS)
def test_reinforce_loss_and_gradient_against_numpy(aggregation):
  logp, _, adv = ppo_inputs(2)
  oracle = lambda lp: -np_aggregate(f64(lp) * f64(adv), f64(PPO_MASK), aggregation, 5.0)
  loss, grad = jax.value_and_grad(lambda lp: objectives.reinforce_loss(
      lp, adv, PPO_MASK, aggregation, 5.0))(jnp.asarray(logp))
  close(loss, oracle(logp))
  close(grad, numeric_grad(oracle, logp))


# ----------------------------------------------------------------------------------------
# GAE.

def np_gae(rewards, values, mask, gamma, lam, bootstrap=None, dones=None):
  """GAE as its definition: each row split into episodes at ``dones``; in each, the
  learner's steps are its masked tokens, a step's reward is every reward from its token
  up to the next step (or the episode's end), the value after the last step is 0 if the
  episode ended and ``bootstrap`` (or 0) if the row cut it off, and
  ``A_k = sum_{l >= k} (gamma lam)^(l - k) delta_l``."""
  rewards, values, mask = f64(rewards), f64(values), np.asarray(mask) > 0
  batch, length = rewards.shape
  adv = np.zeros((batch, length))
  for b in range(batch):
    episodes, start = [], 0
    for t in range(length):
      if dones is not None and dones[b, t]:
        episodes.append((start, t + 1, True))
        start = t + 1
    if start < length:
      episodes.append((start, length, False))
    for start, end, ended in episodes:
      steps = [t for t in range(start, end) if mask[b, t]]
      n = len(steps)
      reward = [rewards[b, steps[k]:(steps[k + 1] if k + 1 < n else end)].sum()
                for k in range(n)]
      after = 0.0 if ended or bootstrap is None else float(bootstrap[b])
      value = [values[b, t] for t in steps] + [after]
      delta = [reward[k] + gamma * value[k + 1] - value[k] for k in range(n)]
      for k in range(n):
        adv[b, steps[k]] = sum((gamma * lam) ** (l - k) * delta[l] for l in range(k, n))
  return adv, np.where(mask, adv + values, 0.0)


# Row 0: the learner's tokens interleaved with the opponent's (token 0 is the opponent's);
# row 1: every token the learner's; rows 2 and 3: interleaved, with episode ends on an
# opponent's token, on a learner's token, and (row 3) at the row's end; row 4: no learner
# token.
GAE_MASK = np.array([[0, 1, 1, 0, 0, 1, 0, 1, 1, 0],
                     [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                     [1, 0, 1, 0, 0, 1, 1, 0, 1, 0],
                     [0, 1, 0, 1, 1, 0, 1, 0, 1, 0],
                     [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], np.float32)
GAE_DONES = np.zeros(GAE_MASK.shape, bool)
GAE_DONES[1, 4] = GAE_DONES[2, 3] = GAE_DONES[2, 6] = True
GAE_DONES[3, 4] = GAE_DONES[3, 9] = GAE_DONES[0, 9] = GAE_DONES[4, 5] = True


def gae_inputs(seed=0):
  rng = np.random.default_rng(seed)
  rewards = (rng.normal(size=GAE_MASK.shape) * (rng.random(GAE_MASK.shape) < 0.6))
  values = rng.normal(size=GAE_MASK.shape)
  bootstrap = rng.normal(size=GAE_MASK.shape[:1]) + 2.0
  return rewards.astype(np.float32), values.astype(np.float32), bootstrap.astype(np.float32)


@pytest.mark.parametrize("gamma,lam", [(0.9, 0.7), (0.8, 0.95), (0.97, 0.0), (0.95, 1.0)])
@pytest.mark.parametrize("with_bootstrap", [False, True])
@pytest.mark.parametrize("with_dones", [False, True])
def test_gae_against_numpy(gamma, lam, with_bootstrap, with_dones):
  rewards, values, bootstrap = gae_inputs()
  extra = {}
  if with_bootstrap:
    extra["bootstrap"] = jnp.asarray(bootstrap)
  if with_dones:
    extra["dones"] = jnp.asarray(GAE_DONES)
  adv, returns = objectives.gae(rewards, values, GAE_MASK, gamma, lam, **extra)
  want_adv, want_returns = np_gae(rewards, values, GAE_MASK, gamma, lam,
                                  bootstrap if with_bootstrap else None,
                                  GAE_DONES if with_dones else None)
  close(adv, want_adv)
  close(returns, want_returns)


def test_gae_limits_are_td_error_and_discounted_return():
  """lambda 0: the one-step TD error over learner steps; lambda 1: the discounted return
  to the row's end (plus the discounted bootstrap) minus the value. Row 0 of the fixture:
  learner steps at tokens 1, 2, 5, 7, 8; the opponent's tokens' rewards go to the step
  before them (token 0's, before any step, to none)."""
  rewards, values, bootstrap = gae_inputs(3)
  r, v = f64(rewards[0]), f64(values[0])
  steps = [1, 2, 5, 7, 8]
  step_reward = [r[1], r[2] + r[3] + r[4], r[5] + r[6], r[7], r[8] + r[9]]
  gamma = 0.85
  boot = jnp.asarray(bootstrap)
  adv0, _ = objectives.gae(rewards, values, GAE_MASK, gamma, 0.0, bootstrap=boot)
  adv1, ret1 = objectives.gae(rewards, values, GAE_MASK, gamma, 1.0, bootstrap=boot)
  next_value = [v[2], v[5], v[7], v[8], float(bootstrap[0])]
  for k, t in enumerate(steps):
    close(adv0[0, t], step_reward[k] + gamma * next_value[k] - v[t])
    to_go = sum(gamma ** (l - k) * step_reward[l] for l in range(k, 5))
    to_go += gamma ** (5 - k) * float(bootstrap[0])
    close(ret1[0, t], to_go)
    close(adv1[0, t], to_go - v[t])
  np.testing.assert_array_equal(np.asarray(adv0[0])[[0, 3, 4, 6, 9]], 0.0)


# ----------------------------------------------------------------------------------------
# Group advantages.

def np_grpo(returns, group_size, eps, std):
  out = []
  for start in range(0, len(returns), group_size):
    group = [float(x) for x in returns[start:start + group_size]]
    mean = sum(group) / group_size
    ddof = {"population": 0, "sample": 1, None: None}[std]
    if ddof is None:
      out += [x - mean for x in group]
      continue
    s = (sum((x - mean) ** 2 for x in group) / (group_size - ddof)) ** 0.5
    out += [0.0 if s == 0 else (x - mean) / (s + eps) for x in group]
  return np.array(out)


def np_rloo(returns, group_size):
  out = []
  for start in range(0, len(returns), group_size):
    group = [float(x) for x in returns[start:start + group_size]]
    for i, x in enumerate(group):
      out.append(x - (sum(group) - x) / (group_size - 1))
  return np.array(out)


# Three groups of four: spread, one of equal returns, one with an outlier.
GROUPED = np.array([0.2, 1.5, -0.7, 0.9, 3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.1, 4.0], np.float32)


@pytest.mark.parametrize("std", objectives.GROUP_STDS)
@pytest.mark.parametrize("eps", [0.0, 1e-4, 0.3])
def test_grpo_against_numpy(std, eps):
  close(objectives.grpo(GROUPED, 4, eps, std), np_grpo(GROUPED, 4, eps, std))
  close(objectives.grpo(GROUPED, 2, eps, std), np_grpo(GROUPED, 2, eps, std))


def test_rloo_batch_baseline_and_per_token_against_numpy():
  for size in (2, 3, 4, 6):
    close(objectives.rloo(GROUPED, size), np_rloo(GROUPED, size))
  close(objectives.batch_baseline(GROUPED), f64(GROUPED) - f64(GROUPED).mean())
  adv = np.array([1.5, -2.0, 0.25], np.float32)
  bool_mask = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]], bool)
  want = np.array([[adv[b] if bool_mask[b, t] else 0.0 for t in range(4)] for b in range(3)])
  close(objectives.per_token(adv, bool_mask), want)
  close(objectives.per_token(adv, bool_mask.astype(np.float32)), want)


# ----------------------------------------------------------------------------------------
# Value loss, KL, entropy, log-probabilities.

def np_value_loss(values, old_values, returns, mask, clip=None):
  values, old_values, returns, mask = map(f64, (values, old_values, returns, mask))
  total = 0.0
  for i in np.ndindex(values.shape):
    err = (values[i] - returns[i]) ** 2
    if clip is not None:
      moved = old_values[i] + min(max(values[i] - old_values[i], -clip), clip)
      err = max(err, (moved - returns[i]) ** 2)
    total += mask[i] * err
  return 0.5 * total / mask.sum()


# Row 0 with clip 0.2: moved past the clip towards the return (clipped error larger, no
# gradient); past it away from the return (unclipped larger); inside it; past it
# downwards (unclipped larger); past it downwards (clipped larger); off the mask.
VALUE_OLD = np.array([[0.0, 0.0, 0.3, 1.0, 1.0, 0.0], [0.1, -0.4, 0.6, 0.2, 0.0, -1.0]],
                     np.float32)
VALUE_NEW = np.array([[0.5, 0.5, 0.4, 0.5, 0.5, 9.0], [0.8, -0.3, 0.0, -0.5, 0.05, 1.0]],
                     np.float32)
VALUE_RETURNS = np.array([[1.0, 0.0, -1.0, 0.9, 0.0, -9.0], [2.0, 0.5, -0.1, 0.4, 0.3, 0.7]],
                         np.float32)
VALUE_MASK = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 1]], np.float32)


@pytest.mark.parametrize("clip", [None, 0.2, 0.45])
def test_value_loss_and_gradient_against_numpy(clip):
  oracle = lambda v: np_value_loss(v, VALUE_OLD, VALUE_RETURNS, VALUE_MASK, clip)
  loss, grad = jax.value_and_grad(objectives.value_loss)(
      jnp.asarray(VALUE_NEW), VALUE_OLD, VALUE_RETURNS, VALUE_MASK, clip)
  close(loss, oracle(VALUE_NEW))
  close(grad, numeric_grad(oracle, VALUE_NEW))


def test_kl_estimators_against_numpy():
  rng = np.random.default_rng(4)
  logp = rng.uniform(-4, -0.1, (3, 5)).astype(np.float32)
  ref_logp = rng.uniform(-4, -0.1, (3, 5)).astype(np.float32)
  p, q = f64(logp), f64(ref_logp)
  close(objectives.kl(logp, ref_logp, "k1"), p - q)
  close(objectives.kl(logp, ref_logp, "k3"), np.exp(q - p) - 1 - (q - p))
  assert float(jnp.min(objectives.kl(logp, ref_logp, "k3"))) >= 0


# Two sequences of 4 tokens over a model vocabulary of 7 of which the game has 5; the legal
# tokens change from position to position (position 0's mask, BOS's, is never read).
LEGAL = np.array([[[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 1]],
                  [[0, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 1, 1], [0, 1, 1, 1, 1]]], bool)
TOKENS = np.array([[0, 3, 4, 1], [0, 4, 3, 2]], np.int32)


def legal_logits(seed):
  """``[2, 3, 7]`` logits, the largest on tokens that are illegal or beyond the game's
  vocabulary, so that counting them shows."""
  logits = np.random.default_rng(seed).normal(scale=1.5, size=(2, 3, 7))
  logits[..., 5:] += 6.0
  logits[0, 0, 4] += 5.0  # Illegal at position 1 of sequence 0.
  return logits.astype(np.float32)


def np_widened_legal(legal, size):
  return np.concatenate([legal, np.zeros(legal.shape[:-1] + (size - legal.shape[-1],), bool)],
                        -1)


def test_token_logprobs_entropy_and_exact_kl_under_per_position_legal_masks():
  logits_p, logits_q = legal_logits(5), legal_logits(6)
  moves = np_widened_legal(LEGAL, 7)[:, 1:]  # The masks of tokens 1..3.
  logp, logq = np_log_softmax(logits_p, moves), np_log_softmax(logits_q, moves)
  probs = np.exp(logp)
  want_logprobs = np.zeros((2, 4))
  want_entropy = np.zeros((2, 4))
  want_kl = np.zeros((2, 4))
  for b in range(2):
    for t in range(1, 4):
      want_logprobs[b, t] = logp[b, t - 1, TOKENS[b, t]]
      legal = moves[b, t - 1]
      pt, lp, lq = probs[b, t - 1][legal], logp[b, t - 1][legal], logq[b, t - 1][legal]
      want_entropy[b, t] = -np.sum(pt * lp)
      want_kl[b, t] = np.sum(pt * (lp - lq))
  close(objectives.token_logprobs(logits_p, TOKENS, LEGAL), want_logprobs)
  close(objectives.token_entropy(logits_p, LEGAL), want_entropy)
  close(objectives.kl_from_logits(logits_p, logits_q, LEGAL), want_kl)


def test_token_logprobs_and_entropy_over_the_writable_tokens_by_default():
  rng = np.random.default_rng(7)
  logits = rng.normal(scale=2.0, size=(2, 3, vocab.VOCAB_SIZE)).astype(np.float32)
  logits[..., vocab.PAD] += 8.0  # Never writable: must not count.
  logits[..., vocab.BOS] += 8.0
  writable = np.arange(vocab.VOCAB_SIZE) != vocab.PAD
  writable &= np.arange(vocab.VOCAB_SIZE) != vocab.BOS
  tokens = np.array([[vocab.BOS, 7, vocab.EOT, 200], [vocab.BOS, 0, 255, vocab.EOG]], np.int32)
  logp = np_log_softmax(logits, writable)
  want_logprobs = np.zeros((2, 4))
  want_entropy = np.zeros((2, 4))
  for b in range(2):
    for t in range(1, 4):
      want_logprobs[b, t] = logp[b, t - 1, tokens[b, t]]
      want_entropy[b, t] = -np.sum(np.exp(logp[b, t - 1][writable]) * logp[b, t - 1][writable])
  close(objectives.token_logprobs(logits, tokens), want_logprobs)
  close(objectives.token_entropy(logits), want_entropy)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_kl_estimators_average_exactly_to_the_exact_kl(estimator):
  """The expectation of the per-token estimate over the policy's tokens, computed exactly
  (each legal token weighted by its probability, no sampling), is KL(policy || ref) as
  ``kl_from_logits`` gives it."""
  logits_p, logits_q = legal_logits(8), legal_logits(9)
  moves = jnp.asarray(np_widened_legal(LEGAL, 7)[:, 1:])
  logp = objectives.log_policy(logits_p, moves)
  logq = objectives.log_policy(logits_q, moves)
  # Every token of every position as a sample, weighted by the policy's probability.
  estimate = np.asarray(objectives.kl(logp, logq, estimator), np.float64)
  expectation = np.sum(np.where(moves, np.exp(f64(logp)) * estimate, 0.0), -1)
  exact = np.asarray(objectives.kl_from_logits(logits_p, logits_q, LEGAL))
  close(expectation, exact[:, 1:])
  assert exact[:, 1:].min() > 0.01


# ----------------------------------------------------------------------------------------
# Pairs: DPO, IPO, Bradley-Terry; regression; cloning.

PAIR_CHOSEN = np.array([-4.0, -6.5, -3.2, -8.0, -5.0], np.float32)
PAIR_REJECTED = np.array([-5.5, -6.0, -2.0, -9.5, -5.0], np.float32)
PAIR_REF_CHOSEN = np.array([-4.6, -6.0, -3.0, -7.1, -5.0], np.float32)
PAIR_REF_REJECTED = np.array([-5.0, -7.2, -2.9, -9.0, -5.0], np.float32)
CHOSEN_COUNT = np.array([3, 5, 2, 0, 4], np.int32)
REJECTED_COUNT = np.array([4, 2, 6, 3, 0], np.int32)


def np_preference(chosen, rejected, ref_chosen, ref_rejected, beta, kind,
                  normalize_length=False):
  rho_c = f64(chosen) - f64(ref_chosen)
  rho_r = f64(rejected) - f64(ref_rejected)
  if normalize_length:
    rho_c = rho_c / np.maximum(CHOSEN_COUNT, 1)
    rho_r = rho_r / np.maximum(REJECTED_COUNT, 1)
  h = rho_c - rho_r
  if kind == "dpo":
    loss = np.mean(-log_sigmoid(beta * h))
  else:
    loss = np.mean((h - 1 / (2 * beta)) ** 2)
  return loss, {"accuracy": np.mean(h > 0), "chosen_reward": np.mean(beta * rho_c),
                "rejected_reward": np.mean(beta * rho_r), "reward_margin": np.mean(beta * h)}


@pytest.mark.parametrize("normalize_length", [False, True])
@pytest.mark.parametrize("kind", ["dpo", "ipo"])
@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_preference_loss_metrics_and_gradients_against_numpy(beta, kind, normalize_length):
  counts = ({"chosen_count": jnp.asarray(CHOSEN_COUNT),
             "rejected_count": jnp.asarray(REJECTED_COUNT)} if normalize_length else {})

  def loss_fn(c, r, rc, rr):
    return objectives.preference_loss(c, r, rc, rr, beta, kind,
                                      normalize_length=normalize_length, **counts)

  args = tuple(map(jnp.asarray, (PAIR_CHOSEN, PAIR_REJECTED, PAIR_REF_CHOSEN,
                                 PAIR_REF_REJECTED)))
  (loss, metrics), grads = jax.value_and_grad(loss_fn, argnums=(0, 1, 2, 3),
                                              has_aux=True)(*args)
  oracle = lambda c, r: np_preference(c, r, PAIR_REF_CHOSEN, PAIR_REF_REJECTED, beta, kind,
                                      normalize_length)
  want_loss, want_metrics = oracle(PAIR_CHOSEN, PAIR_REJECTED)
  close(loss, want_loss)
  close(metrics["loss"], want_loss)
  for name, want in want_metrics.items():
    close(metrics[name], want)
  close(grads[0], numeric_grad(lambda c: oracle(c, PAIR_REJECTED)[0], PAIR_CHOSEN))
  close(grads[1], numeric_grad(lambda r: oracle(PAIR_CHOSEN, r)[0], PAIR_REJECTED))
  # The reference is fixed: no gradient flows into it, even when it is the policy itself
  # (the first step of training, both computed by one traced function).
  np.testing.assert_array_equal(grads[2], 0.0)
  np.testing.assert_array_equal(grads[3], 0.0)
  same = jax.grad(lambda c, r: loss_fn(c, r, c, r)[0], argnums=(0, 1))(args[0], args[1])
  at_reference = lambda c, r: np_preference(c, r, PAIR_CHOSEN, PAIR_REJECTED, beta, kind,
                                            normalize_length)[0]
  close(same[0], numeric_grad(lambda c: at_reference(c, PAIR_REJECTED), PAIR_CHOSEN))
  close(same[1], numeric_grad(lambda r: at_reference(PAIR_CHOSEN, r), PAIR_REJECTED))


@pytest.mark.parametrize("margin", [0.0, 0.7, np.array([0.0, 1.0, -0.5, 2.0], np.float32)])
def test_bradley_terry_against_numpy(margin):
  chosen = np.array([1.2, -0.3, 0.5, 2.0], np.float32)
  rejected = np.array([0.2, 0.4, 0.5, -1.0], np.float32)
  oracle = lambda c: np.mean(-log_sigmoid(f64(c) - f64(rejected) - f64(margin)))
  (loss, metrics), grad = jax.value_and_grad(objectives.bradley_terry_loss, has_aux=True)(
      jnp.asarray(chosen), rejected, margin)
  close(loss, oracle(chosen))
  close(metrics["loss"], oracle(chosen))
  close(grad, numeric_grad(oracle, chosen))
  close(metrics["accuracy"], 0.5)  # 1.2 > 0.2 and 2 > -1; not -0.3 > 0.4 nor the tie.
  close(metrics["margin"], np.mean(f64(chosen) - f64(rejected)))


def test_regression_loss_against_numpy():
  scores = np.array([0.5, -1.0, 2.5, 0.0], np.float32)
  payoffs = np.array([1.0, -1.0, 0.0, -0.5], np.float32)
  oracle = lambda s: np.mean((f64(s) - f64(payoffs)) ** 2)
  (loss, metrics), grad = jax.value_and_grad(objectives.regression_loss, has_aux=True)(
      jnp.asarray(scores), payoffs)
  close(loss, oracle(scores))
  close(grad, numeric_grad(oracle, scores))
  close(metrics["mean_score"], np.mean(f64(scores)))


def test_final_scores_and_imitation_weights_against_loops():
  scalars = np.arange(12, dtype=np.float32).reshape(2, 6) * 0.5
  length = np.array([6, 3], np.int32)
  close(objectives.final_scores(scalars, length), [scalars[0, 5], scalars[1, 2]])
  tokens = np.zeros((2, 6), np.int32)
  # Position 0 owned by a role too: never weighted all the same (nothing predicts it).
  owner = np.array([[1, 1, 1, 2, 1, 2], [2, 2, 2, 1, 1, 2]], np.int32)
  for role in (1, 2, (1, 2)):
    roles = (role,) if isinstance(role, int) else role
    want = [[float(1 <= t < length[b] and owner[b, t] in roles) for t in range(6)]
            for b in range(2)]
    close(objectives.imitation_weights(tokens, owner, length, role), want)


def test_imitation_loss_against_numpy():
  rng = np.random.default_rng(10)
  logits = rng.normal(scale=2.0, size=(2, 4, vocab.VOCAB_SIZE)).astype(np.float32)
  logits[0, 1, vocab.PAD] = 50.0  # The raw argmax is a token no player writes.
  writable = np.asarray(vocab.writable())
  logp = np_log_softmax(logits, writable)
  greedy = np.argmax(logp, -1)
  tokens = np.array([[vocab.BOS, greedy[0, 0], greedy[0, 1], 65, 66],
                     [vocab.BOS, 10, greedy[1, 1], greedy[1, 2], vocab.EOG]], np.int32)
  tokens[0, 3] = 65 if greedy[0, 2] != 65 else 66
  weights = np.array([[0, 1, 2, 0.5, 0], [0, 1, 1, 0, 3]], np.float32)
  total = count = correct = 0.0
  for b in range(2):
    for t in range(1, 5):
      total += weights[b, t] * logp[b, t - 1, tokens[b, t]]
      correct += weights[b, t] * (greedy[b, t - 1] == tokens[b, t])
      count += weights[b, t]
  (loss, metrics), grad = jax.value_and_grad(objectives.imitation_loss, has_aux=True)(
      jnp.asarray(logits), tokens, weights)
  close(loss, -total / count)
  close(metrics["loss"], -total / count)
  close(metrics["accuracy"], correct / count)
  assert int(metrics["tokens"]) == 6
  # d loss / d logits: weight * (softmax - one_hot(token)) / total weight, 0 off the
  # writable tokens.
  want_grad = np.zeros(logits.shape)
  for b in range(2):
    for t in range(1, 5):
      one_hot = np.eye(vocab.VOCAB_SIZE)[tokens[b, t]]
      want_grad[b, t - 1] = weights[b, t] * (np.exp(logp[b, t - 1]) - one_hot) / count
  close(grad, want_grad, atol=1e-7)
