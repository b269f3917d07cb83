"""play(): whole batches of games inside one jit, with scripted and model players."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, models, objectives, players, rollout, vocab

GAME = games.make("arithmetic", num_digits=3)
ONE = games.player("arithmetic", 1, "human", GAME)
EXPERT = games.player("arithmetic", 2, "expert", GAME)
MODEL = models.make(models.TransformerConfig(num_layers=2, d_model=32, num_heads=2, d_ff=64,
                                             max_length=GAME.max_length, scalar_head=True))
PARAMS = MODEL.init(jax.random.key(0))
PARAMS["scalar_head"] = jax.random.normal(jax.random.key(1), PARAMS["scalar_head"].shape)
MODEL_TWO = players.model_player(MODEL, GAME)


def model_game(key, batch=16):
  return rollout.play(GAME, (ONE, MODEL_TWO), (None, PARAMS), key, batch)


def test_expert_scores_payoff_one_on_every_game():
  traj = rollout.play(GAME, (ONE, EXPERT), (None, None), jax.random.key(0), 256)
  np.testing.assert_array_equal(traj.returns, 1.0)
  for i in range(4):
    a, b = np.asarray(traj.hidden["operands"][i])
    assert vocab.render(traj.tokens[i], traj.owner[i]) == f"one> {a}+{b}=⟨eot⟩\ntwo> {a + b}⟨eot⟩"


def test_play_is_deterministic_for_a_key_and_differs_across_keys():
  t1, t2, t3 = model_game(jax.random.key(5)), model_game(jax.random.key(5)), model_game(
      jax.random.key(6))
  jax.tree.map(np.testing.assert_array_equal, t1, t2)
  assert not np.array_equal(t1.tokens, t3.tokens)


def test_trajectory_records_only_played_tokens_and_rewards_add_up():
  traj = model_game(jax.random.key(1), batch=32)
  played = np.asarray(traj.played)
  owner_two = np.asarray(game_lib.role_mask(traj.owner, 2))
  assert (played <= owner_two).all()  # In arithmetic player two writes everything played.
  assert (np.asarray(traj.logprob)[~played] == 0).all()
  assert (np.asarray(traj.logprob)[played] < 0).all()
  assert (np.asarray(traj.value)[~played] == 0).all()
  np.testing.assert_allclose(traj.reward.sum(1), traj.returns)
  assert (np.asarray(traj.tokens)[np.arange(32), traj.length - 1] != vocab.PAD).all()


def test_recorded_logprobs_and_values_equal_the_full_forward_pass():
  """What play records is what training recomputes: no train-inference mismatch."""
  traj = model_game(jax.random.key(2), batch=8)
  positions = jnp.broadcast_to(jnp.arange(GAME.max_length), traj.tokens.shape)
  logits, values, _ = MODEL.apply(PARAMS, traj.tokens, positions)
  logp = jnp.take_along_axis(objectives.log_policy(logits[:, :-1]), traj.tokens[:, 1:, None], -1)
  played = traj.played[:, 1:]
  np.testing.assert_allclose(jnp.where(played, logp[..., 0], 0), traj.logprob[:, 1:], atol=1e-4)
  np.testing.assert_allclose(jnp.where(played, values[:, :-1], 0), traj.value[:, 1:],
                             atol=1e-4)


def test_greedy_play_is_the_argmax_and_top_k_stays_in_the_top_k():
  greedy = players.model_player(MODEL, GAME, temperature=0.0)
  a = rollout.play(GAME, (ONE, greedy), (None, PARAMS), jax.random.key(3), 8)
  positions = jnp.broadcast_to(jnp.arange(GAME.max_length), a.tokens.shape)
  logits, _, _ = MODEL.apply(PARAMS, a.tokens, positions)
  best = jnp.argmax(objectives.log_policy(logits[:, :-1]), -1)
  np.testing.assert_array_equal(jnp.where(a.played[:, 1:], best, 0),
                                jnp.where(a.played[:, 1:], a.tokens[:, 1:], 0))
  top2 = players.model_player(MODEL, GAME, top_k=2)
  c = rollout.play(GAME, (ONE, top2), (None, PARAMS), jax.random.key(3), 8)
  logits, _, _ = MODEL.apply(PARAMS, c.tokens, positions)
  rank = jnp.sum(objectives.log_policy(logits[:, :-1]) >
                 jnp.take_along_axis(objectives.log_policy(logits[:, :-1]), c.tokens[:, 1:, None], -1),
                 -1)
  assert bool(jnp.all(jnp.where(c.played[:, 1:], rank < 2, True)))


def test_sample_matches_the_policy_distribution():
  logits = jnp.array([0.0, 1.0, 2.0, -1.0])
  legal = jnp.array([True, True, False, True])
  keys = jax.random.split(jax.random.key(0), 20000)
  tokens, logps = jax.vmap(lambda k: players.sample(logits, legal, k))(keys)
  expected = jax.nn.softmax(jnp.where(legal, logits, -jnp.inf))
  freq = jnp.bincount(tokens, length=4) / keys.shape[0]
  np.testing.assert_allclose(freq, expected, atol=0.015)
  np.testing.assert_allclose(logps, jnp.log(expected)[tokens], atol=1e-6)


def test_play_vmaps_over_seeds():
  keys = jax.random.split(jax.random.key(7), 3)
  batched = jax.vmap(lambda k: model_game(k, batch=4))(keys)
  single = model_game(keys[1], batch=4)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x[1], y, atol=1e-5), batched, single)


def test_average_player_errs_at_its_rate():
  average = games.player("arithmetic", 2, "average", GAME, error_rate=0.3)
  traj = rollout.play(GAME, (ONE, average), (None, None), jax.random.key(0), 2000)
  assert abs(float(jnp.mean(traj.returns[:, 1])) - 0.7) < 0.04


def test_game_longer_than_the_model_context_is_named():
  short = models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=2,
                                               d_ff=64, max_length=8))
  with pytest.raises(ValueError, match="max_length=8"):
    players.model_player(short, GAME)
  with pytest.raises(ValueError, match="two players"):
    rollout.play(GAME, (ONE,), (None,), jax.random.key(0), 2)


def test_groups_share_their_opening_and_differ_in_play():
  traj = rollout.play(GAME, (ONE, MODEL_TWO), (None, PARAMS), jax.random.key(8), 12,
                      group_size=4)
  ops = np.asarray(traj.hidden["operands"]).reshape(3, 4, 2)
  assert (ops == ops[:, :1]).all() and not (ops[0, 0] == ops[1, 0]).all()
  replies = np.asarray(traj.tokens).reshape(3, 4, -1)
  assert not (replies[0] == replies[0, :1]).all()
  with pytest.raises(ValueError, match="group_size=5 must divide"):
    rollout.play(GAME, (ONE, EXPERT), (None, None), jax.random.key(0), 12, group_size=5)


def test_a_group_reads_its_shared_opening_once_with_the_same_games():
  """A keyless-init player's prefill runs once per group; the games are those of a prefill
  per game (the same player with ``keyless_init`` off)."""
  per_game = MODEL_TWO._replace(keyless_init=False)
  key = jax.random.key(9)
  shared = rollout.play(GAME, (ONE, MODEL_TWO), (None, PARAMS), key, 12, group_size=4)
  alone = rollout.play(GAME, (ONE, per_game), (None, PARAMS), key, 12, group_size=4)
  np.testing.assert_array_equal(shared.tokens, alone.tokens)
  np.testing.assert_allclose(shared.logprob, alone.logprob, atol=1e-5)
  np.testing.assert_allclose(shared.value, alone.value, atol=1e-5)


def test_players_built_twice_from_equal_settings_compile_once():
  game = games.make("arithmetic", num_digits=1)
  config = models.TransformerConfig(num_layers=1, d_model=16, num_heads=2, d_ff=32,
                                    max_length=game.max_length)
  params = models.make(config).init(jax.random.key(0))

  def seats():  # Everything rebuilt from settings, as a config-driven caller would.
    two = players.mixture([players.model_player(models.make(config), game),
                           games.player("arithmetic", 2, "average", game, error_rate=0.3)],
                          [0.5, 0.5])
    return games.player("arithmetic", 1, "human", game), two

  before = rollout.play._cache_size()
  first = rollout.play(game, seats(), (None, params), jax.random.key(1), 8)
  second = rollout.play(game, seats(), (None, params), jax.random.key(1), 8)
  assert rollout.play._cache_size() == before + 1
  np.testing.assert_array_equal(first.tokens, second.tokens)
  assert players.model_player(models.make(config), game, seat=2) != players.model_player(
      models.make(config), game, seat=1)
