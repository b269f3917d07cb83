"""A mixture of games is a game: chance's draw, each episode its drawn game's, one compile.

The contract every registered game keeps (tests/test_games_contract.py) covers the
default mixture too; these tests pin what makes it the drawn game's episode.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, models, players, rollout, train, vocab

MIX = games.make("mixture", components=(("arithmetic", {"num_digits": 1}),
                                        ("facts", {"num_entities": 16, "num_seen": 8}),
                                        ("in_context", {"word_length": 1})),
                 weights=(2.0, 1.0, 1.0))


def play(seat_two: str, batch: int, key: int = 0):
  seats = (games.player("mixture", 1, "human", MIX), games.player("mixture", 2, seat_two, MIX))
  return rollout.play(MIX, seats, (None, None), jax.random.key(key), batch)


def test_chance_draws_components_by_weight_and_each_writes_its_own_opening():
  keys = jax.random.split(jax.random.key(0), 4096)
  states = jax.vmap(lambda k: game_lib.init(MIX, k))(keys)
  drawn = np.asarray(states.hidden["game"])
  np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 4096, [0.5, 0.25, 0.25],
                             atol=0.03)  # > 4 sigma.
  for n in range(8):
    i = int(drawn[n])
    part = MIX.parts[i]
    own = game_lib.init(part, jax.random.split(jax.random.split(keys[n])[1], 3)[i])
    width = part.max_length
    np.testing.assert_array_equal(states.tokens[n, :width], own.tokens)
    assert (np.asarray(states.tokens[n, width:]) == vocab.PAD).all()
    assert int(states.length[n]) == int(own.length) and int(states.to_move[n]) == int(own.to_move)
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(lambda x: x[n],
                                                             states.hidden["parts"][i]), own.hidden)


def test_limits_are_the_largest_components():
  for name in ("max_length", "max_turns", "max_opening_length", "private_length"):
    assert getattr(MIX, name) == max(getattr(g, name) for g in MIX.parts)
  assert MIX.min_opening_length == min(g.min_opening_length for g in MIX.parts)


@pytest.mark.parametrize("seat_two", ["expert", "noisy"])
def test_every_episode_is_a_game_of_the_drawn_component_with_its_payoff(seat_two):
  """Replaying each episode's moves in the drawn game alone, from the same opening,
  ends where the mixture's did with the same returns: the drawn game's payoff and
  limits applied (a shorter game ended at its own capacity)."""
  traj = play(seat_two, 96, key=1)
  drawn = np.asarray(traj.hidden["game"])
  assert set(drawn) == {0, 1, 2}
  step = jax.jit(game_lib.step, static_argnums=0)
  for n in range(96):
    i = int(drawn[n])
    part = MIX.parts[i]
    state = game_lib.GameState(
        tokens=traj.tokens[n, :part.max_length], owner=traj.owner[n, :part.max_length],
        length=traj.opening_length[n], opening_length=traj.opening_length[n],
        to_move=jnp.int32(2), turn=jnp.int32(1), turn_length=jnp.int32(0),
        done=jnp.bool_(False), returns=jnp.zeros(2), hidden=jax.tree.map(
            lambda x: x[n], traj.hidden["parts"][i]))
    state = state._replace(tokens=jnp.where(jnp.arange(part.max_length) < state.length,
                                            state.tokens, vocab.PAD))
    for t in range(int(traj.opening_length[n]), int(traj.length[n])):
      assert not bool(state.done)
      state, _ = step(part, state, traj.tokens[n, t])
    assert bool(state.done) and int(traj.length[n]) <= part.max_length
    np.testing.assert_allclose(state.returns, traj.returns[n], atol=1e-6)
  if seat_two == "expert":  # The experts of arithmetic and in_context are always right.
    np.testing.assert_array_equal(np.asarray(traj.returns[drawn != 1, 1]), 1.0)


def test_a_model_player_and_an_rl_iteration_play_the_mixture_in_one_compile():
  model = models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                               max_length=MIX.max_length))
  tx = train.optimizer(1e-3, 10)
  iteration = jax.jit(train.make_iteration(
      MIX, model, tx, games.player("mixture", 1, "human", MIX),
      train.RLSettings(num_openings=8, group_size=4)))
  state = train.create(model.init(jax.random.key(0)), tx, jax.random.key(1))
  for _ in range(2):
    state, metrics = iteration(state, train.Frozen())
  assert iteration._cache_size() == 1 and np.isfinite(float(metrics["loss"]))
  traj = rollout.play(MIX, (games.player("mixture", 1, "human", MIX),
                            players.model_player(model, MIX)), (None, state.params),
                      jax.random.key(2), 32)
  assert set(np.asarray(traj.hidden["game"])) == {0, 1, 2}
  assert (np.asarray(traj.length) <= np.array([g.max_length for g in MIX.parts])[
      np.asarray(traj.hidden["game"])]).all()


def test_settings_are_checked():
  with pytest.raises(ValueError, match="at least one component"):
    games.make("mixture", components=())
  with pytest.raises(ValueError, match="weights"):
    games.make("mixture", components=(("arithmetic", {}),), weights=(1.0, 2.0))
  with pytest.raises(ValueError, match="not mixtures"):
    games.make("mixture", components=(("mixture", {}),))
  with pytest.raises(KeyError, match="unknown game"):
    games.make("mixture", components=(("chess", {}),))
  # Settings given as a dict or as pairs make one game (one compile).
  assert games.make("mixture", components=(("arithmetic", {"num_digits": 1}),)) == games.make(
      "mixture", components=(("arithmetic", (("num_digits", 1),)),))
