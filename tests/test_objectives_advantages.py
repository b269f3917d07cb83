"""Advantage estimators against hand-derived numbers and plain numpy references: the batch
baseline, RLOO, GRPO (its normalisers and groups of equal returns), turn-level advantages
and GAE (two-player, textbook single-player, episode boundaries, truncation)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import objectives

EQUAL_VALUES = (0.7, 0.85, 0.9, 0.95, 1e6, -3.3, 0.0, 0.1, 1 / 3, 123.456, -1e-3, 3e-8)


def grpo_reference(returns, group_size, eps, ddof):
  g = np.asarray(returns, np.float64).reshape(-1, group_size)
  centred = g - g.mean(1, keepdims=True)
  if ddof is None:
    return centred.reshape(-1)
  return (centred / (g.std(1, ddof=ddof, keepdims=True) + eps)).reshape(-1)


def rloo_reference(returns, group_size):
  out = []
  for group in np.asarray(returns, np.float64).reshape(-1, group_size):
    for i, r in enumerate(group):
      out.append(r - np.mean(np.delete(group, i)))
  return np.array(out)


@pytest.mark.parametrize("group_size", [2, 3, 8, 16])
def test_a_group_of_equal_returns_gets_exactly_zero(group_size):
  returns = jnp.repeat(jnp.array(EQUAL_VALUES, jnp.float32), group_size)
  mixed = jnp.concatenate([returns, jnp.arange(group_size, dtype=jnp.float32) ** 2])
  for std in objectives.GROUP_STDS:
    for eps in (1e-6, 0.0):
      grpo = jax.jit(functools.partial(objectives.grpo, group_size=group_size, eps=eps,
                                       std=std))
      adv = np.asarray(grpo(mixed))
      np.testing.assert_array_equal(adv[:returns.size], 0.0)
      assert np.all(np.isfinite(adv)) and np.abs(adv[returns.size:]).min() > 0
  rloo = jax.jit(objectives.rloo, static_argnums=1)
  np.testing.assert_array_equal(rloo(returns, group_size), 0.0)
  np.testing.assert_array_equal(objectives.batch_baseline(jnp.full(group_size, 0.7)), 0.0)


def test_grpo_normalisers_by_hand():
  pair = jnp.array([0.0, 1.0])
  grpo = jax.jit(objectives.grpo, static_argnames=("group_size", "eps", "std"))
  # TRL's GRPOTrainer: sample std (0.7071) plus 1e-4.
  np.testing.assert_allclose(grpo(pair, 2, 1e-4, "sample"), [-0.70700, 0.70700], atol=1e-5)
  np.testing.assert_allclose(grpo(pair, 2), [-0.999998, 0.999998], atol=1e-6)
  np.testing.assert_allclose(grpo(pair, 2, std=None), [-0.5, 0.5])
  # Mean 3, centred [-2, -1, 0, 3], squares sum to 14.
  four = jnp.array([1.0, 2.0, 3.0, 6.0])
  centred = np.array([-2.0, -1.0, 0.0, 3.0])
  np.testing.assert_allclose(grpo(four, 4, 0.0), centred / np.sqrt(14 / 4), rtol=1e-6)
  np.testing.assert_allclose(grpo(four, 4, 0.0, "sample"), centred / np.sqrt(14 / 3),
                             rtol=1e-6)
  np.testing.assert_allclose(grpo(four, 4, std=None), centred)


def test_grpo_matches_numpy_on_random_groups():
  returns = np.random.default_rng(0).normal(size=24).astype(np.float32) * 3
  grpo = jax.jit(objectives.grpo, static_argnames=("group_size", "eps", "std"))
  for std, ddof in (("population", 0), ("sample", 1), (None, None)):
    np.testing.assert_allclose(grpo(returns, 6, 1e-4, std),
                               grpo_reference(returns, 6, 1e-4, ddof), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="std"):
    objectives.grpo(returns, 6, std="mad")
  with pytest.raises(ValueError, match="group_size >= 2"):
    objectives.grpo(returns, 1, std="sample")


def test_rloo_and_batch_baseline_by_hand_and_against_numpy():
  rloo = jax.jit(objectives.rloo, static_argnums=1)
  # 1 - mean(2, 6), 2 - mean(1, 6), 6 - mean(1, 2).
  np.testing.assert_allclose(rloo(jnp.array([1.0, 2.0, 6.0]), 3), [-3.0, -1.5, 4.5])
  np.testing.assert_allclose(rloo(jnp.array([1.0, 2.0, 3.0, 10.0]), 2), [-1, 1, -7, 7])
  returns = np.random.default_rng(1).normal(size=20).astype(np.float32)
  for size in (2, 4, 5):
    np.testing.assert_allclose(rloo(returns, size), rloo_reference(returns, size),
                               rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jax.jit(objectives.batch_baseline)(jnp.array([1.0, 2.0, 6.0])),
                             [-2.0, -1.0, 3.0])


def turns_reference(rewards, mask, group_size):
  """One advantage per learner turn as plain loops: the rewards from the turn's first token
  on, minus their mean over the group's games' turns of the same number."""
  rewards, mask = np.asarray(rewards, np.float64), np.asarray(mask) > 0
  batch, length = mask.shape
  firsts = [[t for t in range(length) if mask[b, t] and (t == 0 or not mask[b, t - 1])]
            for b in range(batch)]
  to_go = [[rewards[b, t:].sum() for t in firsts[b]] for b in range(batch)]
  adv = np.zeros((batch, length))
  for b in range(batch):
    group = range(b - b % group_size, b - b % group_size + group_size)
    for k, t in enumerate(firsts[b]):
      mean = np.mean([to_go[g][k] for g in group if k < len(to_go[g])])
      end = t
      while end < length and mask[b, end]:
        adv[b, end] = to_go[b][k] - mean
        end += 1
  return adv


def test_turn_advantages_by_hand_and_against_the_loops():
  turn_advantages = jax.jit(objectives.turn_advantages, static_argnums=2)
  rewards = jnp.array([[0, 0, 1, 0, 0, 2, 0, 0], [0, 0, 0, 0, 3, 0, 0, 1.0]])
  mask = jnp.array([[0, 1, 1, 0, 1, 1, 0, 0], [0, 1, 0, 1, 1, 0, 1, 0]])
  # Rewards to go at the turns: game 0 [3, 2], game 1 [4, 4, 1]; group means [3.5, 3, 1]
  # (the third turn is game 1's alone). Alone in its group, every turn gets 0.
  np.testing.assert_allclose(turn_advantages(rewards, mask, 2),
                             [[0, -0.5, -0.5, 0, -1, -1, 0, 0],
                              [0, 0.5, 0, 1, 1, 0, 0, 0]])
  np.testing.assert_array_equal(turn_advantages(rewards, mask, 1), 0.0)
  rng = np.random.default_rng(3)
  rewards = rng.normal(size=(12, 16)).astype(np.float32)
  mask = (rng.random((12, 16)) < 0.5).astype(np.float32)
  for size in (3, 4):
    np.testing.assert_allclose(turn_advantages(rewards, mask, size),
                               turns_reference(rewards, mask, size),
                               rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="group_size"):
    objectives.turn_advantages(rewards, mask, 5)


def gae_reference(rewards, values, mask, gamma, lam, bootstrap=None, dones=None):
  """Textbook GAE over each row's learner steps, as plain loops.

  A learner step's reward is its token's plus the other player's tokens' until the next
  learner step or the end of its episode; ``A_k = sum_l (gamma lam)^l delta_{k+l}`` over
  the episode's later steps, ``delta_k = r_k + gamma V_{k+1} - V_k`` with ``V`` after the
  episode's end 0 and after the row's end ``bootstrap``.
  """
  rewards, values, mask = (np.asarray(x, np.float64) for x in (rewards, values, mask))
  batch, length = rewards.shape
  dones = np.zeros((batch, length), bool) if dones is None else np.asarray(dones)
  adv = np.zeros((batch, length))
  for b in range(batch):
    steps = [t for t in range(length) if mask[b, t]]
    reward, ends = [], []
    for i, t in enumerate(steps):
      until = steps[i + 1] if i + 1 < len(steps) else length
      total, ended = 0.0, False
      for u in range(t, until):
        total += rewards[b, u]
        if dones[b, u]:
          ended = True
          break
      reward.append(total)
      ends.append(ended)
    deltas = []
    for k, t in enumerate(steps):
      if ends[k]:
        next_value = 0.0
      elif k + 1 < len(steps):
        next_value = values[b, steps[k + 1]]
      else:
        next_value = 0.0 if bootstrap is None else float(bootstrap[b])
      deltas.append(reward[k] + gamma * next_value - values[b, t])
    for k, t in enumerate(steps):
      total, weight = 0.0, 1.0
      for later in range(k, len(steps)):
        total += weight * deltas[later]
        if ends[later]:
          break
        weight *= gamma * lam
      adv[b, t] = total
  return adv, np.where(mask > 0, adv + values, 0.0)


gae = jax.jit(objectives.gae, static_argnums=(3, 4))


def test_textbook_single_player_gae_by_hand():
  mask = jnp.ones((1, 3))
  rewards = jnp.array([[1.0, 0.0, 2.0]])
  values = jnp.array([[0.5, 0.4, 0.3]])
  # delta = [1 + .9 * .4 - .5, .9 * .3 - .4, 2 - .3]; A_t = delta_t + .72 A_{t+1}.
  adv, returns = gae(rewards, values, mask, 0.9, 0.8)
  np.testing.assert_allclose(adv, [[1.64768, 1.094, 1.7]], rtol=1e-6)
  np.testing.assert_allclose(returns, [[2.14768, 1.494, 2.0]], rtol=1e-6)
  # Cut off by a limit: the last step bootstraps from the next state's value, 1.
  adv, _ = gae(rewards, values, mask, 0.9, 0.8, bootstrap=jnp.array([1.0]))
  np.testing.assert_allclose(adv, [[2.11424, 1.742, 2.6]], rtol=1e-6)


def test_gae_stops_at_episode_boundaries_inside_a_row():
  # Episode [0, 1] ends at step 1; episode [2, 3] is cut off, worth 1 after step 3.
  adv, returns = gae(jnp.array([[1.0, 2.0, 0.0, 3.0]]), jnp.array([[0.5, 0.4, 0.3, 0.2]]),
                     jnp.ones((1, 4)), 0.9, 0.8, bootstrap=jnp.array([1.0]),
                     dones=jnp.array([[False, True, False, False]]))
  np.testing.assert_allclose(adv, [[2.012, 1.6, 2.544, 3.7]], rtol=1e-6)
  np.testing.assert_allclose(returns, [[2.512, 2.0, 2.844, 3.9]], rtol=1e-6)


def test_two_player_gae_by_hand():
  # The learner writes tokens 1, 4, 5; the opponent's 2, 3, 6. The 0.25 paid at token 2
  # belongs to step 1, the 2.0 at token 6 to step 5, both undiscounted.
  mask = jnp.array([[0, 1, 0, 0, 1, 1, 0]], jnp.float32)
  rewards = jnp.array([[0, 0.5, 0.25, 0, 0, 1.0, 2.0]])
  values = jnp.array([[9, 0.1, 9, 9, 0.2, 0.3, 9]])
  # Steps' rewards [0.75, 0, 3]; delta = [.75 + .9 * .2 - .1, .9 * .3 - .2, 3 - .3].
  adv, returns = gae(rewards, values, mask, 0.9, 0.5)
  np.testing.assert_allclose(adv, [[0, 1.40825, 0, 0, 1.285, 2.7, 0]], rtol=1e-6)
  np.testing.assert_allclose(returns, [[0, 1.50825, 0, 0, 1.485, 3.0, 0]], rtol=1e-6)


def test_gae_matches_the_textbook_loops_on_random_rows():
  keys = jax.random.split(jax.random.key(0), 6)
  shape = (4, 12)
  rewards = jax.random.normal(keys[0], shape) * jax.random.bernoulli(keys[1], 0.4, shape)
  values = jax.random.normal(keys[2], shape)
  bootstrap = jax.random.normal(keys[3], shape[:1])
  dones = jax.random.bernoulli(keys[4], 0.15, shape)
  for mask in (jnp.ones(shape), jax.random.bernoulli(keys[5], 0.5, shape).astype(jnp.float32)):
    for episodes in ({}, {"bootstrap": bootstrap}, {"bootstrap": bootstrap, "dones": dones}):
      got = gae(rewards, values, mask, 0.9, 0.7, **episodes)
      want = gae_reference(rewards, values, mask, 0.9, 0.7, **episodes)
      for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
