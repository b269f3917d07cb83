"""Meta-games between policies: cross-play, Nash equilibria of matrix games, ratings."""

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import games, models, players, rollout
from twoplayer_jax.gametheory import matrix


def rock_paper_scissors(a, b, c):
  """Skew-symmetric: rock beats scissors by b, paper beats rock by a, scissors beat paper
  by c. Its unique equilibrium, solved by hand, plays (c, b, a) / (a + b + c)."""
  return jnp.array([[0.0, -a, b], [a, 0.0, -c], [-b, c, 0.0]])


def test_nash_of_rock_paper_scissors_matrices_matches_the_hand_solution():
  solve = jax.jit(matrix.zero_sum_nash)
  for a, b, c in ((1, 1, 1), (1, 2, 3), (0.5, 4, 1)):
    row, column = solve(rock_paper_scissors(a, b, c))
    expected = np.array([c, b, a]) / (a + b + c)
    np.testing.assert_allclose(row, expected, atol=5e-3)
    np.testing.assert_allclose(column, expected, atol=5e-3)
    assert float(matrix.exploitability(rock_paper_scissors(a, b, c), row, column)) < 1e-2


def test_missing_members_get_no_weight_and_dominated_ones_vanish():
  # Row 3 is a copy of rock made worse by 1 everywhere: strictly dominated.
  payoff = jnp.concatenate([rock_paper_scissors(1, 1, 1),
                            rock_paper_scissors(1, 1, 1)[:1] - 1.0])
  row, column = matrix.zero_sum_nash(payoff)
  assert float(row[3]) < 1e-2
  np.testing.assert_allclose(column, np.full(3, 1 / 3), atol=5e-3)
  # Only rock and paper exist for the row player. By hand: rows (x, 1 - x) get
  # min(1 - x, -x, 2x - 1), highest at x = 1/3; columns (0, y, 1 - y) make rock and paper
  # indifferent at y = 2/3. Value -1/3.
  row, column = matrix.zero_sum_nash(payoff, rows=jnp.array([True, True, False, False]))
  np.testing.assert_allclose(row, [1 / 3, 2 / 3, 0, 0], atol=1e-2)
  np.testing.assert_allclose(column, [0, 2 / 3, 1 / 3], atol=1e-2)
  np.testing.assert_allclose(row @ payoff @ column, -1 / 3, atol=1e-2)


def test_ratings_ignore_copies_where_a_mean_would_not():
  payoff = rock_paper_scissors(1, 1, 1)
  copies = jnp.concatenate([payoff, payoff[:, :1], payoff[:, :1]], axis=1)  # Rock x3.
  np.testing.assert_allclose(matrix.ratings(copies), matrix.ratings(payoff), atol=1e-2)
  assert float(jnp.ptp(copies.mean(axis=1))) > 0.5  # The mean is fooled by the copies.
  np.testing.assert_allclose(matrix.worst_case(payoff), [-1.0, -1.0, -1.0])
  np.testing.assert_allclose(matrix.worst_case(payoff, jnp.array([True, False, False])),
                             [0.0, 1.0, -1.0])


def test_cross_play_entries_equal_direct_play_payoffs():
  game = games.make("kuhn_poker")
  model = models.make(models.TransformerConfig(num_layers=1, d_model=16, num_heads=2, d_ff=32,
                                               max_length=game.private_length + game.max_length))
  population = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 3))
  seats = (players.model_player(model, game, seat=1), players.model_player(model, game, seat=2))
  key = jax.random.key(1)
  table = matrix.cross_play(game, seats, population, population, key, 64)
  assert table.shape == (3, 3, 2)
  member = lambda i: jax.tree.map(lambda x: x[i], population)
  for i, j in ((0, 0), (1, 2), (2, 0)):
    traj = rollout.play(game, seats, (member(i), member(j)), key, 64)
    np.testing.assert_allclose(table[i, j], jnp.mean(traj.returns, axis=0), atol=1e-6)


def test_add_member_writes_one_slot():
  population = {"w": jnp.zeros((4, 2))}
  grown = jax.jit(matrix.add_member)(population, {"w": jnp.ones(2)}, 2)
  np.testing.assert_array_equal(grown["w"], [[0, 0], [0, 0], [1, 1], [0, 0]])
