"""Step semantics of the two-player token game on a small game defined here."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text

A, B, EOT, EOG = ord("a"), ord("b"), vocab.EOT, vocab.EOG


@dataclasses.dataclass(frozen=True)
class Chat(game_lib.Game):
  """Opening BOS; player one moves first. Player one is paid 1 per "a" in the
  transcript, player two 1 per "b", at the end. Decided when "!" is written."""
  max_length: int = 12
  max_turns: int = 4
  max_opening_length: int = 1

  def opening(self, key):
    del key
    return game_lib.new_state(self, jnp.array([vocab.BOS]), jnp.array([0]), 1, to_move=1,
                              turn=0, hidden={"secret": jnp.int32(7)})

  def payoff(self, state):
    return jnp.stack([jnp.sum(state.tokens == A), jnp.sum(state.tokens == B)]).astype(jnp.float32)

  def decided(self, state):
    return jnp.any(state.tokens == ord("!"))


GAME = Chat()


def play_tokens(tokens, game=GAME, step=game_lib.step):
  state = game_lib.init(game, jax.random.key(0))
  rewards = []
  for tok in tokens:
    state, r = step(game, state, jnp.int32(tok))
    rewards.append(np.asarray(r))
  return state, np.array(rewards)


def test_turns_switch_on_end_of_turn_and_owners_follow_the_mover():
  state, _ = play_tokens([A, A, EOT, B, EOT, A])
  assert int(state.length) == 7 and int(state.turn) == 2 and int(state.to_move) == 1
  np.testing.assert_array_equal(state.owner[:7], [0, 1, 1, 1, 2, 2, 1])
  assert int(state.turn_length) == 1 and not bool(state.done)
  np.testing.assert_array_equal(state.tokens[7:], vocab.PAD)


@pytest.mark.parametrize("tokens, length, reason", [
    ([A, EOG, A], 3, "end of game"),
    ([A, EOT, B, EOT, A, EOT, B, EOT, A], 9, "turn limit"),
    ([A] * 20, 12, "length limit"),
    ([A, ord("!"), A], 3, "decided"),
])
def test_game_ends_on_each_terminal_condition(tokens, length, reason):
  state, rewards = play_tokens(tokens)
  assert bool(state.done), reason
  assert int(state.length) == length, reason
  # Steps after the end change nothing and pay nothing.
  np.testing.assert_array_equal(rewards[length - 1:], 0)
  np.testing.assert_allclose(rewards.sum(0), state.returns)


def test_payoff_is_paid_once_at_the_end_and_returns_add_up():
  state, rewards = play_tokens([A, A, EOT, B, EOT, A, EOG, B, B])
  np.testing.assert_array_equal(rewards[:-3], 0)
  np.testing.assert_array_equal(rewards[6], [3, 1])
  np.testing.assert_array_equal(rewards[7:], 0)
  np.testing.assert_array_equal(state.returns, [3, 1])


@pytest.mark.parametrize("bad", [vocab.PAD, vocab.BOS, -1, vocab.VOCAB_SIZE])
def test_unwritable_token_forfeits_for_the_mover(bad):
  state, rewards = play_tokens([A, EOT, bad, B])
  assert bool(state.done) and int(state.length) == 4
  np.testing.assert_array_equal(state.returns, [0, game_lib.FORFEIT])
  assert int(state.tokens[3]) == vocab.PAD


def test_jit_vmap_and_scan_match_eager_steps():
  rng = np.random.default_rng(1)
  choices = np.array([A, B, EOT, EOG, ord("!"), vocab.PAD, 0, 255])
  seqs = rng.choice(choices, size=(16, 14), p=[.3, .3, .2, .02, .02, .02, .07, .07])
  eager = [play_tokens(seq) for seq in seqs]

  def run(tokens):
    state = game_lib.init(GAME, jax.random.key(0))
    return jax.lax.scan(lambda s, t: game_lib.step(GAME, s, t), state, tokens)

  states, rewards = jax.jit(jax.vmap(run))(jnp.asarray(seqs))
  for i, (state, reward) in enumerate(eager):
    for field in ("tokens", "owner", "length", "to_move", "turn", "done", "returns"):
      np.testing.assert_array_equal(getattr(states, field)[i], getattr(state, field), field)
    np.testing.assert_array_equal(rewards[i], reward)


def test_random_play_always_ends_within_the_limits():
  seqs = jax.random.randint(jax.random.key(3), (64, GAME.max_length), 0, vocab.VOCAB_SIZE)

  def run(tokens):
    state = game_lib.init(GAME, jax.random.key(0))
    return jax.lax.scan(lambda s, t: game_lib.step(GAME, s, t), state, tokens)[0]

  states = jax.jit(jax.vmap(run))(seqs)
  assert bool(jnp.all(states.done))
  assert bool(jnp.all(states.length <= GAME.max_length))
  assert bool(jnp.all(jnp.isfinite(states.returns)))


def test_legal_mask_allows_every_byte_and_turn_marker_never_pad_or_bos():
  mask = np.asarray(GAME.legal_mask(game_lib.init(GAME, jax.random.key(0))))
  assert mask.shape == (vocab.VOCAB_SIZE,)
  assert mask[:256].all() and mask[vocab.EOT] and mask[vocab.EOG]
  assert not mask[vocab.PAD] and not mask[vocab.BOS]


def test_role_mask_and_played_mask():
  owner = jnp.array([0, 1, 1, 2, 2, 1, 0])
  np.testing.assert_array_equal(game_lib.role_mask(owner, 2), [0, 0, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(game_lib.role_mask(owner, (1, 2)), [0, 1, 1, 1, 1, 1, 0])
  with pytest.raises(ValueError, match="role"):
    game_lib.role_mask(owner, 0)
  traj = game_lib.Trajectory(*(jnp.zeros((1, 7)),) * 5, jnp.array([2]), jnp.array([5]),
                             None, None)
  np.testing.assert_array_equal(traj.played[0], [0, 0, 1, 1, 1, 0, 0])


def test_opening_of_the_wrong_size_is_named():
  with pytest.raises(ValueError, match="max_opening_length"):
    game_lib.new_state(GAME, jnp.zeros(3, jnp.int32), jnp.zeros(3, jnp.int32), 1, 1, 0, None)
  with pytest.raises(ValueError, match="one token per game"):
    game_lib.step(GAME, game_lib.init(GAME, jax.random.key(0)), jnp.array([A, B]))


def test_text_pieces_concatenate_and_match():
  tokens, length = text.concat(text.literal("ab"), text.number(jnp.int32(305), 4),
                               text.token(vocab.EOT))
  assert int(length) == 6
  np.testing.assert_array_equal(tokens[:6], list(b"ab305") + [vocab.EOT])
  np.testing.assert_array_equal(tokens[6:], vocab.PAD)
  for x in (0, 7, 10, 99999999):
    digits, n = text.number(jnp.int32(x), 9)
    assert vocab.to_bytes(np.asarray(digits[:n])) == str(x).encode()
  assert bool(text.matches(tokens, 2, text.literal("305")))
  assert not bool(text.matches(tokens, 2, text.literal("306")))
  assert not bool(text.matches(tokens, 9, text.literal("3")))
