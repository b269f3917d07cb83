"""Measures logged during training and mixtures of policies (``gametheory.measure``), on
Kuhn poker: exact, so every comparison is to float32 rounding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import pyspiel
from open_spiel.python import policy as policy_lib
from open_spiel.python.algorithms import exploitability as os_exploitability
from open_spiel.python.algorithms import policy_aggregator

from twoplayer_jax import gametheory, games, models, train
from twoplayer_jax.gametheory import measure
from twoplayer_jax.games import kuhn_poker

GAME = games.make("kuhn_poker")
TREE = gametheory.build_tree(GAME, kuhn_poker.ACTIONS)
MODEL = models.make(models.TransformerConfig(num_layers=1, d_model=16, num_heads=2, d_ff=32,
                                             max_length=GAME.private_length + GAME.max_length))
HEURISTIC = gametheory.scripted_strategy(GAME, TREE, kuhn_poker.STRATEGIES["heuristic"])
STRINGS = [kuhn_poker.information_state(jax.tree.map(lambda x: x[i], TREE.states),
                                        int(TREE.seat[i])) for i in range(len(TREE.seat))]


def table_of(bets: dict[str, float]) -> np.ndarray:
  """``[I, A]`` a strategy over all information states from the probability of betting
  at each (OpenSpiel's string, e.g. ``"0pb"``); 0 where not named."""
  bet = np.array([bets.get(s, 0.0) for s in STRINGS])
  return np.stack([1 - bet, bet], axis=1).astype(np.float32)


def noisy(state, fixed):
  """A stand-in iteration: moves the parameters a little and counts the step."""
  del fixed
  key, sub = jax.random.split(state.rng)
  params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(sub, x.shape), state.params)
  return state._replace(params=params, step=state.step + 1, rng=key), {"loss": jnp.float32(0)}


@functools.partial(jax.jit, static_argnums=(2, 3))
def run(state, fixed, every, total):
  measured = measure.logged(noisy, lambda s, f: MEASURE(s.params), every, total)
  return measured(state, fixed)


MEASURE = measure.policy_measure(MODEL, TREE, {"heuristic": HEURISTIC})


def direct(params):
  one, two = gametheory.model_strategy(MODEL, params, TREE)
  return gametheory.evaluate(TREE, one, two), measure.payoff_against(TREE, (one, two), HEURISTIC)


def test_logged_measures_exactly_at_the_due_steps():
  state = train.TrainState(MODEL.init(jax.random.key(0)), None, jnp.int32(0), jax.random.key(1))
  measured_steps = []
  for _ in range(7):
    state, metrics = run(state, None, 3, 7)
    step = int(state.step)
    if step % 3 and step != 7:
      assert np.isnan(float(metrics["exploitability"])) and float(metrics["loss"]) == 0
      continue
    measured_steps.append(step)
    result, payoff = direct(state.params)
    np.testing.assert_allclose(metrics["exploitability"], result.exploitability, atol=1e-6)
    np.testing.assert_allclose(metrics["nash_conv"], result.nash_conv, atol=1e-6)
    np.testing.assert_allclose(metrics["payoff_vs_heuristic"], payoff, atol=1e-6)
  assert measured_steps == [3, 6, 7]


def test_logged_around_stacked_seeds_measures_each_seed():
  """Seeds stacked [S]: a vmapped iteration and a vmapped measure, the step checked once."""
  keys = jax.random.split(jax.random.key(0), 2)
  state = jax.vmap(lambda k: train.TrainState(MODEL.init(k), None, jnp.int32(0), k))(keys)
  iteration = measure.logged(jax.vmap(noisy), lambda s, f: jax.vmap(MEASURE)(s.params), 2)
  state, metrics = jax.jit(iteration)(state, None)
  assert np.all(np.isnan(metrics["exploitability"]))
  state, metrics = jax.jit(iteration)(state, None)
  for i in range(2):
    result, _ = direct(jax.tree.map(lambda x: x[i], state.params))
    np.testing.assert_allclose(metrics["exploitability"][i], result.exploitability, atol=1e-6)


def test_logged_refuses_a_measure_named_like_a_metric():
  state = train.TrainState(MODEL.init(jax.random.key(0)), None, jnp.int32(0), jax.random.key(1))
  with pytest.raises(ValueError, match="clash"):
    measure.logged(noisy, lambda s, f: {"loss": jnp.float32(1)}, 1)(state, None)


def test_payoff_against_averages_the_two_seats():
  one, two = gametheory.uniform_strategy(TREE)
  as_one = gametheory.evaluate(TREE, one, HEURISTIC[1]).values[0]
  as_two = gametheory.evaluate(TREE, HEURISTIC[0], two).values[1]
  np.testing.assert_allclose(measure.payoff_against(TREE, (one, two), HEURISTIC),
                             (as_one + as_two) / 2, atol=1e-6)
  np.testing.assert_allclose(measure.payoff_against(TREE, HEURISTIC, HEURISTIC), 0, atol=1e-7)


def test_stacked_learners_are_read_one_per_seat():
  params = [MODEL.init(jax.random.key(i)) for i in range(2)]
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *params)
  one, two = measure.seat_tables(MODEL, stacked, TREE, stacked=True)
  np.testing.assert_allclose(one, gametheory.model_strategy(MODEL, params[0], TREE)[0])
  np.testing.assert_allclose(two, gametheory.model_strategy(MODEL, params[1], TREE)[1])


def test_the_average_of_copies_is_the_strategy():
  table = jnp.concatenate(gametheory.model_strategy(MODEL, MODEL.init(jax.random.key(3)), TREE))
  average = measure.average_strategy(TREE, jnp.stack([table] * 3), jnp.array([0.2, 0.5, 0.3]))
  np.testing.assert_allclose(average, table, atol=1e-6)


def test_the_average_of_two_pure_strategies_by_hand():
  """Two members mixed 1:3. Seat one: always bet (A) or always pass, calling with the K
  only (B). A never reaches ``?pb``, so there the mixture plays B; at its first move it
  bets with probability 1/4. Seat two: bet or call everything (C) or nothing (D): it
  moves once, each member reaches all its information states, so 1/4 at each."""
  a = table_of({"0": 1, "1": 1, "2": 1})
  b = table_of({"2pb": 1})
  c = table_of({s: 1 for s in STRINGS})
  d = table_of({})
  first = TREE.sizes[0]
  tables = jnp.stack([np.concatenate([a[:first], c[first:]]),
                      np.concatenate([b[:first], d[first:]])])
  average = measure.average_strategy(TREE, tables, jnp.array([0.25, 0.75]))
  expected = table_of({"0": 0.25, "1": 0.25, "2": 0.25, "2pb": 1.0,
                       **{s: 0.25 for s in STRINGS[first:]}})
  np.testing.assert_allclose(average, expected, atol=1e-7)


def test_the_average_is_realisation_equivalent_to_the_mixture():
  """Against any fixed opponent the average's values are the mixture's: the weighted
  values of its members, in each seat."""
  keys = jax.random.split(jax.random.key(4), 3)
  tables = jax.vmap(lambda k: jnp.concatenate(gametheory.model_strategy(
      MODEL, jax.tree.map(lambda x: 4 * x, MODEL.init(k)), TREE)))(keys)  # Far from uniform.
  weights = jnp.array([0.5, 0.0, 0.5]) + jnp.array([0.1, 0.2, -0.3])
  average = gametheory.split(TREE, measure.average_strategy(TREE, tables, weights))

  def against_heuristic(table, seat):  # [2] values of `table`'s seat against the heuristic.
    pair = list(HEURISTIC)
    pair[seat] = table[seat]
    return gametheory.evaluate(TREE, *pair).values

  for seat in (0, 1):
    members = np.stack([against_heuristic(gametheory.split(TREE, t), seat) for t in tables])
    np.testing.assert_allclose(against_heuristic(average, seat),
                               np.tensordot(weights, members, 1), atol=1e-6)


def test_the_mixture_exploitability_is_openspiels():
  """OpenSpiel's policy aggregator, the second judge: its realisation-equivalent policy
  of the mixture has the exploitability ``mixture_measure`` gives."""
  keys = jax.random.split(jax.random.key(5), 2)
  tables = np.asarray(jax.vmap(lambda k: jnp.concatenate(gametheory.model_strategy(
      MODEL, jax.tree.map(lambda x: 4 * x, MODEL.init(k)), TREE)))(keys))
  weights = np.array([0.3, 0.7])
  ours = measure.mixture_measure(TREE, {})(jnp.asarray(tables), jnp.asarray(weights))
  os_game = pyspiel.load_game("kuhn_poker")
  members = []
  for table in tables:
    member = policy_lib.TabularPolicy(os_game)
    for row, string in zip(table, STRINGS):
      member.action_probability_array[member.state_lookup[string]] = row
    members.append(member)
  mixed = policy_aggregator.PolicyAggregator(os_game).aggregate(
      [0, 1], [members, members], [list(weights), list(weights)])
  np.testing.assert_allclose(ours["exploitability"],
                             os_exploitability.exploitability(os_game, mixed), atol=1e-6)
