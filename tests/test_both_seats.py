"""Both seats learn: self-play, two learners and populations, on Kuhn poker.

Kuhn poker is small enough to measure a policy exactly: each check reads the models'
behaviour strategies at every information state and evaluates them by backward
induction (``gametheory``), so no margin here is eaten by sampling noise.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import gametheory, games, models, train
from twoplayer_jax.games import kuhn_poker

GAME = games.make("kuhn_poker")
MODEL = models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                             max_length=GAME.private_length + GAME.max_length))
TREE = gametheory.build_tree(GAME, kuhn_poker.ACTIONS)
SETTINGS = dict(algorithm="grpo", num_openings=8, group_size=8)


@jax.jit
def evaluate(params_one, params_two):
  """Exact values and exploitability of seat one played by ``params_one`` and seat two
  by ``params_two``."""
  one, _ = gametheory.model_strategy(MODEL, params_one, TREE)
  _, two = gametheory.model_strategy(MODEL, params_two, TREE)
  return gametheory.evaluate(TREE, one, two)


def seat(params, i):
  return jax.tree.map(lambda x: x[i], params)


def stack(*params):
  return jax.tree.map(lambda *x: jnp.stack(x), *params)


def run(settings, params, fixed, iterations, learning_rate=1e-3):
  tx = train.optimizer(learning_rate, iterations)
  iteration = jax.jit(train.make_iteration(GAME, MODEL, tx, None, settings), donate_argnums=0)
  state = train.create(jax.tree.map(jnp.copy, params), tx, jax.random.key(1),
                       stacked=settings.play == "two_learners")
  for _ in range(iterations):
    state, metrics = iteration(state, fixed)
  return state, metrics


@pytest.fixture(scope="module")
def start():
  return MODEL.init(jax.random.key(0)), MODEL.init(jax.random.key(1))


def test_self_play_with_a_magnet_lowers_exploitability(start):
  """Magnetic mirror descent: one policy in both seats, a KL to its starting point."""
  params, _ = start
  settings = train.RLSettings(play="self_play", kl_coef=0.1, **SETTINGS)
  state, metrics = run(settings, params, train.Frozen(reference=params), 40)
  before = float(evaluate(params, params).exploitability)
  after = float(evaluate(state.params, state.params).exploitability)
  assert after < 0.8 * before, (before, after)
  assert {"loss_one", "loss_two", "learner_tokens_one", "kl_to_reference_two"} <= set(metrics)
  assert float(metrics["learner_tokens_one"]) > 0 and float(metrics["learner_tokens_two"]) > 0


def test_two_learners_learn_at_once(start):
  """Seat one's learner, against seat two's final policy, beats its own starting policy.
  (Seat two's learner is then exploited by seat one's, which learned against it: the
  same check for seat two fails, as simultaneous learning in a zero-sum game goes.)"""
  settings = train.RLSettings(play="two_learners", **SETTINGS)
  state, metrics = run(settings, stack(*start), train.Frozen(), 30, learning_rate=3e-3)
  one, two = seat(state.params, 0), seat(state.params, 1)
  assert float(evaluate(one, two).values[0]) > float(evaluate(start[0], two).values[0]) + 0.1
  assert not np.allclose(two["unembed"], start[1]["unembed"])
  assert {"loss_one", "loss_two", "grad_norm"} <= set(metrics)


def test_two_learners_taking_turns_move_one_seat_per_iteration(start):
  settings = train.RLSettings(play="two_learners", alternate=True, **SETTINGS)
  tx = train.optimizer(1e-2, 10)
  iteration = jax.jit(train.make_iteration(GAME, MODEL, tx, None, settings))
  state = train.create(stack(*start), tx, jax.random.key(2), stacked=True)
  for moving in (0, 1, 0):
    new, _ = iteration(state, train.Frozen())
    moved = [not np.allclose(seat(new.params, i)["unembed"], seat(state.params, i)["unembed"])
             for i in (0, 1)]
    assert moved == [i == moving for i in (0, 1)], (moving, moved)
    state = new


def test_a_population_learner_beats_its_population(start):
  """Seat two learns against a population of two members, one of them empty (weight 0):
  NaN parameters there would poison the games if it were ever drawn."""
  member, learner = start
  empty = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), member)
  fixed = train.Frozen(opponent=stack(member, empty), meta_strategy=jnp.array([1.0, 0.0]))
  settings = train.RLSettings(play="population", role=2, **SETTINGS)
  state, metrics = run(settings, learner, fixed, 30, learning_rate=3e-3)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  before = float(evaluate(member, learner).values[1])
  assert float(evaluate(member, state.params).values[1]) > before + 0.1


def test_settings_name_what_does_not_fit():
  with pytest.raises(ValueError, match="reward_source must be 'payoff'"):
    train.RLSettings(play="self_play", reward_source="model")
  with pytest.raises(ValueError, match="alternate=True"):
    train.RLSettings(alternate=True)
  with pytest.raises(ValueError, match="takes no opponent"):
    train.make_iteration(GAME, MODEL, train.optimizer(1e-3, 1), kuhn_poker.PLAYER_ONE["human"](
        GAME), train.RLSettings(play="self_play", **SETTINGS))
  with pytest.raises(ValueError, match="takes an opponent player"):
    train.make_iteration(GAME, MODEL, train.optimizer(1e-3, 1), None, train.RLSettings())
