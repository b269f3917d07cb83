"""The contract every registered game keeps; a new game is covered once registered.

Each game is played with its registered default settings by random players that write
any writable token (garbage included), and by its own scripted players.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, models, objectives, players, rollout, train, vocab

NAMES = sorted(games.REGISTRY)


def random_player(game):
  """Writes any writable token, with end-of-turn and end-of-game a little more often."""
  def policy(carry, state, key):
    logits = jnp.zeros(vocab.VOCAB_SIZE).at[vocab.EOT].set(3.0).at[vocab.EOG].set(-1.0)
    token, logp = players.sample(logits, game.legal_mask(state), key)
    return token, logp, carry
  return players.scripted(policy)


@pytest.fixture(scope="module", params=NAMES)
def game(request):
  return request.param, games.make(request.param)


def test_opening_is_consistent_and_jits(game):
  name, g = game
  state = jax.jit(lambda k: game_lib.init(g, k))(jax.random.key(0))
  assert state.tokens.shape == (g.max_length,) and state.owner.shape == (g.max_length,)
  n = int(state.length)
  assert 1 <= n <= g.max_opening_length
  assert int(state.tokens[0]) == vocab.BOS
  assert (np.asarray(state.tokens[n:]) == vocab.PAD).all()
  assert int(state.to_move) in (1, 2) and not bool(state.done)
  assert int(state.turn) < g.max_turns
  batch = jax.vmap(lambda k: game_lib.init(g, k))(jax.random.split(jax.random.key(1), 512))
  assert batch.tokens.shape == (512, g.max_length)
  # Training reads the first min_opening_length tokens once per group: never a move.
  assert 1 <= g.min_opening_length <= int(batch.length.min()) <= g.max_opening_length


def test_any_players_end_within_limits_with_finite_payoffs(game):
  """Random against random, and every scripted player in either seat against random.

  The scripted players sit in one ``players.mixture`` per seat, one drawn per game: one
  compile per seat, however many scripted players the game has.
  """
  name, g = game
  rand = random_player(g)
  entry = games.REGISTRY[name]
  scripted = [games.player(name, seat, p, g)
              for seat, names in ((1, entry.player_one), (2, entry.player_two)) for p in names]
  anyone = players.mixture(scripted, [1.0] * len(scripted))
  for seat, seats in ((0, (rand, rand)), (1, (anyone, rand)), (2, (rand, anyone))):
    in_play = rollout.play_out(g, seats, (None, None), jax.random.key(2), 96)
    traj = rollout.finish(in_play)
    if seat:
      drawn = np.unique(np.asarray(in_play.carries[seat - 1][0]))
      np.testing.assert_array_equal(drawn, np.arange(len(scripted)))
    assert traj.returns.shape == (96, 2)
    assert bool(jnp.all(jnp.isfinite(traj.returns)))
    assert bool(jnp.all(traj.length <= g.max_length))
    np.testing.assert_allclose(traj.reward.sum(1), traj.returns, atol=1e-5)


def test_mover_and_legal_mask_agree_with_the_transcript(game):
  name, g = game
  rand = random_player(g)
  traj = rollout.play(g, (rand, rand), (None, None), jax.random.key(3), 16)
  for i in range(16):
    length, start = int(traj.length[i]), int(traj.opening_length[i])
    tokens, owner = np.asarray(traj.tokens[i]), np.asarray(traj.owner[i])
    # Each played token's author is the player whose turn it was: turns switch on EOT only.
    for t in range(start + 1, length):
      expected = 3 - owner[t - 1] if tokens[t - 1] == vocab.EOT else owner[t - 1]
      if owner[t - 1] != 0:
        assert owner[t] == expected, (name, i, t)
    state = game_lib.init(g, jax.random.key(0))
    legal = np.asarray(g.legal_mask(state))
    # A game that restricts moves (a card game's actions) need not allow end-of-turn first.
    assert g.restricts_moves or legal[vocab.EOT]
    assert legal[vocab.writable()].any()
    assert not legal[vocab.PAD] and not legal[vocab.BOS]


def test_transcripts_decode_and_re_encode_exactly(game):
  name, g = game
  rand = random_player(g)
  traj = rollout.play(g, (rand, rand), (None, None), jax.random.key(4), 16)
  for i in range(16):
    tokens = np.asarray(traj.tokens[i, :int(traj.length[i])])
    np.testing.assert_array_equal(vocab.encode(vocab.decode(tokens)), tokens)
    assert isinstance(vocab.render(traj.tokens[i], traj.owner[i]), str)


def test_registers_a_human_and_the_three_demonstrators(game):
  name, g = game
  entry = games.REGISTRY[name]
  assert "human" in entry.player_one
  assert {"expert", "average", "noisy"} <= set(entry.player_two)
  games.player(name, 2, "average", g, error_rate=0.5)
  with pytest.raises(KeyError, match="no scripted player"):
    games.player(name, 2, "nobody", g)


def tiny_model(g):
  return models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                              max_length=g.private_length + g.max_length))


def test_model_players_play_it_and_training_reads_what_they_read(game):
  """Two models, one per seat, each reading its own view: the games end with finite
  payoffs, and the log-probabilities the training pass computes equal the ones play
  recorded, under the same legal masks."""
  name, g = game
  model = tiny_model(g)
  params = (model.init(jax.random.key(1)), model.init(jax.random.key(2)))
  seats = (players.model_player(model, g, seat=1), players.model_player(model, g, seat=2))
  traj = rollout.play(g, seats, params, jax.random.key(6), 16, group_size=2)
  assert bool(jnp.all(jnp.isfinite(traj.returns)))
  assert (traj.legal is not None) == g.restricts_moves
  # A forced token (the only legal one) has probability 1, any other less.
  choices = (np.asarray(traj.legal).sum(-1) if g.restricts_moves
             else np.full(traj.tokens.shape, 2))
  assert np.asarray(traj.played).any(), name
  for seat in (1, 2):
    mine = np.asarray((traj.owner == seat) & traj.played)
    recorded = np.asarray(traj.logprob)[mine]
    assert (recorded[choices[mine] > 1] < 0).all() and (recorded[choices[mine] == 1] == 0).all()
    logits, _ = train.seat_forward(model, params[seat - 1], g, traj.tokens, traj.hidden, seat,
                                   group_size=2)
    logp = objectives.token_logprobs(logits, traj.tokens, traj.legal)
    np.testing.assert_allclose(np.asarray(logp)[mine], recorded, atol=1e-4, err_msg=name)


def test_a_model_never_reads_the_other_seats_private_text(game):
  """Two deals whose private texts agree for one seat and differ for the other: that
  seat's model player moves alike in both."""
  name, g = game
  if not g.private_length:
    return
  states = jax.vmap(lambda k: game_lib.init(g, k))(jax.random.split(jax.random.key(7), 256))
  private = {seat: np.asarray(jax.vmap(g.private, (0, None))(states.hidden, seat))
             for seat in (1, 2)}
  model = tiny_model(g)
  params = model.init(jax.random.key(3))
  for seat, other in ((1, 2), (2, 1)):
    pairs = [(i, j) for i in range(64) for j in range(256)
             if (private[seat][i] == private[seat][j]).all()
             and (private[other][i] != private[other][j]).any()]
    assert pairs, f"{name}: no two deals differ only in seat {other}'s private text"
    i, j = pairs[0]
    state = jax.tree.map(lambda x: x[i], states)
    swapped = state._replace(hidden=jax.tree.map(lambda x: x[j], states.hidden))
    player = players.model_player(model, g, seat=seat)

    def first_move(s):
      carry = player.init(params, s, jax.random.key(0))
      return player.act(params, carry, s._replace(to_move=seat), jax.random.key(1))[0]

    np.testing.assert_array_equal(first_move(state).logprob, first_move(swapped).logprob)
