"""The arithmetic game: its text, its payoff on hand-written transcripts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, rollout, vocab

GAME = games.make("arithmetic", num_digits=3)


def answer(state, text_tokens):
  for tok in text_tokens:
    state, _ = game_lib.step(GAME, state, jnp.int32(tok))
  return state


def test_opening_is_the_question_written_by_player_one():
  state = game_lib.init(GAME, jax.random.key(4))
  a, b = np.asarray(state.hidden["operands"])
  n = int(state.length)
  assert vocab.decode(np.asarray(state.tokens[:n])) == f"⟨bos⟩{a}+{b}=⟨eot⟩\n"
  np.testing.assert_array_equal(state.owner[:n], [0] + [1] * (n - 1))
  assert int(state.to_move) == 2 and int(state.turn) == 1


@pytest.mark.parametrize("reply, done, paid", [
    ("{s}⟨eot⟩", True, 1.0),
    ("{s}⟨eog⟩", True, 0.0),          # No end of turn: not an answer.
    ("0{s}⟨eot⟩", True, 0.0),         # Leading zero.
    ("{s}1⟨eot⟩", True, 0.0),
    ("{s} ⟨eot⟩", True, 0.0),
    ("⟨eot⟩", True, 0.0),
    ("xyz⟨x9f⟩⟨eot⟩", True, 0.0),      # Garbage.
    ("{s}", False, 0.0),              # Still in its turn: nothing paid yet.
])
def test_payoff_on_hand_written_answers(reply, done, paid):
  state = game_lib.init(GAME, jax.random.key(1))
  a, b = (int(x) for x in state.hidden["operands"])
  state = answer(state, vocab.encode(reply.format(s=a + b)))
  assert bool(state.done) == done
  np.testing.assert_array_equal(state.returns, [paid, paid])


def test_answer_cut_off_by_the_length_limit_is_wrong():
  state = game_lib.init(GAME, jax.random.key(1))
  state = answer(state, vocab.encode("1" * 30))
  assert bool(state.done) and int(state.length) == GAME.max_length
  np.testing.assert_array_equal(state.returns, [0, 0])


def test_limits_fit_the_longest_question_and_answer():
  game = games.make("arithmetic", num_digits=4, answer_slack=0)
  state = game_lib.init(game, jax.random.key(0))
  assert game.max_opening_length == len("?9999+9999=?")
  assert game.max_length == game.max_opening_length + len("19998?")
  assert state.tokens.shape == (game.max_length,)
  with pytest.raises(ValueError, match="num_digits"):
    games.make("arithmetic", num_digits=9)
  with pytest.raises(KeyError, match="unknown game"):
    games.make("chess")


def test_noisy_player_writes_one_to_n_plus_one_digits_then_ends_its_turn():
  one = games.player("arithmetic", 1, "human", GAME)
  noisy = games.player("arithmetic", 2, "noisy", GAME)
  traj = rollout.play(GAME, (one, noisy), (None, None), jax.random.key(0), 256)
  lengths = []
  for i in range(256):
    reply = vocab.to_bytes(np.asarray(traj.tokens[i, traj.opening_length[i]:traj.length[i]]))
    assert reply.isdigit() and int(traj.tokens[i, traj.length[i] - 1]) == vocab.EOT
    lengths.append(len(reply))
  assert min(lengths) == 1 and max(lengths) == GAME.num_digits + 1
