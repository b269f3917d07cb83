"""Twenty questions: its text, its payoff and rewards (shaped too), binary search and the
lopsided search, hidden secret, the secret as seat one's private text."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, models, objectives, players, rollout, train, vocab

NAME = "twenty_questions"
GAME = games.make(NAME, num_secrets=64, max_questions=10, question_cost=0.05)
PER_TURN = games.make(NAME, num_secrets=64, max_questions=10, question_cost=0.05,
                      per_turn_rewards=True)
SHAPED = games.make(NAME, num_secrets=64, max_questions=10, question_cost=0.05,
                    per_turn_rewards=True, shaping=True)
PRIVATE = games.make(NAME, num_secrets=64, secret_in_private=True)
HUMAN = games.player(NAME, 1, "human", GAME)
EXPERT = games.player(NAME, 2, "expert", GAME)
step = jax.jit(game_lib.step, static_argnums=0)


def with_secret(game, secret):
  return game_lib.init(game, jax.random.key(0))._replace(hidden={"one": {"secret": jnp.int32(
      secret)}})


def write(game, state, written):
  """Steps the tokens of ``written``; returns the state and each step's rewards."""
  rewards = []
  for tok in vocab.encode(written):
    state, r = step(game, state, jnp.int32(tok))
    rewards.append(np.asarray(r))
  return state, np.array(rewards)


def test_opening_states_the_range_and_never_the_secret():
  states = jax.vmap(lambda k: game_lib.init(GAME, k))(jax.random.split(jax.random.key(0), 16))
  assert len(set(np.asarray(states.hidden["one"]["secret"]).tolist())) > 1
  np.testing.assert_array_equal(states.tokens, np.broadcast_to(states.tokens[0],
                                                              states.tokens.shape))
  n = int(states.length[0])
  assert vocab.decode(np.asarray(states.tokens[0, :n])) == "⟨bos⟩[0,64)⟨eot⟩\n"
  assert int(states.to_move[0]) == 2 and int(states.turn[0]) == 1


@pytest.mark.parametrize("written, done, paid", [
    ("=37⟨eot⟩", True, 1.0),
    ("<32?⟨eot⟩no⟨eot⟩=37⟨eot⟩", True, 0.95),
    ("=36⟨eot⟩no⟨eot⟩<40?⟨eot⟩yes⟨eot⟩=37⟨eot⟩", True, 0.9),
    ("xyz⟨x9f⟩⟨eot⟩?⟨eot⟩⟨eot⟩?⟨eot⟩=37⟨eot⟩", True, 0.9),   # Garbage and empty turns cost.
    ("=037⟨eot⟩?⟨eot⟩<3a?⟨eot⟩?⟨eot⟩", False, -0.1),      # Too many digits; not a number.
    ("<32?⟨eot⟩no⟨eot⟩=37⟨eog⟩", True, -0.05),             # Unfinished guess: no answer.
    ("=1⟨eot⟩no⟨eot⟩" * 9 + "=2⟨eot⟩", True, -0.5),        # Out of questions.
])
@pytest.mark.parametrize("game", [GAME, PER_TURN], ids=["terminal", "per_turn"])
def test_payoff_on_hand_written_transcripts(game, written, done, paid):
  state, rewards = write(game, with_secret(game, 37), written)
  assert bool(state.done) == done
  if done:
    np.testing.assert_allclose(state.returns, [paid, paid], atol=1e-6)
    np.testing.assert_allclose(game.payoff(state), [paid, paid], atol=1e-6)
  tokens = vocab.encode(written)
  if game.per_turn_rewards:
    # Paid as it falls due: at player two's end-of-turn tokens, nowhere else.
    owner = np.asarray(state.owner[int(GAME.max_opening_length):][:len(tokens)])
    due = (tokens == vocab.EOT) & (owner == 2)
    assert (rewards[~due] == 0).all() and (rewards[due] != 0).all()
    np.testing.assert_allclose(rewards.sum(0), game.payoff(state), atol=1e-6)
  else:
    np.testing.assert_array_equal(rewards[:-1], 0)


def test_human_answers_truthfully_and_malformed_turns_get_a_question_mark():
  state = with_secret(GAME, 37)
  carry = HUMAN.init(None, state, jax.random.key(0))
  act = jax.jit(HUMAN.act)
  answers = []
  for turn in ["<32?", "<40?", "<37?", "<38?", "=36", "xyz", "<99?", "=037"]:
    state, _ = write(GAME, state, turn + "⟨eot⟩")
    answer = []
    while int(state.to_move) == 1:
      move, carry = act(None, carry, state, jax.random.key(1))
      answer.append(int(move.token))
      state, _ = step(GAME, state, move.token)
    answers.append(vocab.decode(np.array(answer)))
  assert answers == [a + "⟨eot⟩\n" for a in ["no", "yes", "no", "yes", "no", "?", "yes", "?"]]


def binary_search_text(secret, n):
  lines, lo, hi = ["one> [0,%d)⟨eot⟩" % n], 0, n
  while hi - lo > 1:
    mid = lo + (hi - lo) // 2
    lines += [f"two> <{mid}?⟨eot⟩", "one> " + ("yes" if secret < mid else "no") + "⟨eot⟩"]
    lo, hi = (lo, mid) if secret < mid else (mid, hi)
  return "\n".join(lines + [f"two> ={lo}⟨eot⟩"])


def test_expert_binary_search_solves_every_game_in_log2_n_questions_and_a_guess():
  traj = rollout.play(GAME, (HUMAN, EXPERT), (None, None), jax.random.key(0), 64)
  np.testing.assert_allclose(traj.returns, 1.0 - 0.05 * 6, atol=1e-6)
  for i in range(4):
    secret = int(traj.hidden["one"]["secret"][i])
    assert vocab.render(traj.tokens[i], traj.owner[i]) == binary_search_text(secret, 64)


def test_expert_within_ceil_log2_n_when_n_is_not_a_power_of_two():
  game = games.make(NAME, num_secrets=100, question_cost=0.1)
  players = (games.player(NAME, 1, "human", game), games.player(NAME, 2, "expert", game))
  traj = rollout.play(game, players, (None, None), jax.random.key(1), 64)
  returns = np.asarray(traj.returns[:, 0])
  assert (returns >= 1.0 - 0.1 * math.ceil(math.log2(100)) - 1e-6).all()
  assert (returns <= 1.0 - 0.1 * math.floor(math.log2(100)) + 1e-6).all()


def test_per_turn_rewards_sum_to_the_terminal_payoff_in_play():
  players = (games.player(NAME, 1, "human", PER_TURN),
             games.player(NAME, 2, "average", PER_TURN, error_rate=0.5))
  traj = rollout.play(PER_TURN, players, (None, None), jax.random.key(2), 64)
  states = game_lib.GameState(traj.tokens, traj.owner, traj.length, traj.opening_length, None,
                              None, None, None, None, traj.hidden)
  np.testing.assert_allclose(traj.reward.sum(1), jax.vmap(PER_TURN.payoff)(states), atol=1e-5)
  paid_turns = (np.asarray(traj.reward[..., 1]) != 0).sum(1)
  assert paid_turns.max() > 1  # Paid during play, not only at the end.
  returns = np.asarray(traj.returns[:, 0])
  assert returns.mean() < 0.7 and returns.max() > 0.7  # Errors cost; lucky guesses pay.


def test_shaping_pays_each_answer_the_bits_it_gave_and_sums_to_zero():
  """Secret 37 of 64: the half split <32? (no) earns its cost back; the lopsided <16?
  (no: 48 left of 64) loses; <40? (yes: 8 of 48 left) gains; the right guess gets its
  reward and hands the bits back, so that the game pays its payoff."""
  cost = 0.05
  state, rewards = write(SHAPED, with_secret(SHAPED, 37),
                         "<32?⟨eot⟩no⟨eot⟩<16?⟨eot⟩no⟨eot⟩<40?⟨eot⟩yes⟨eot⟩=37⟨eot⟩")
  paid = rewards[:, 1][rewards[:, 1] != 0]
  # Each question's cost, then each answer's bits: 64 -> 32 (1), 32 -> 32 (0), 32 -> 8 (2);
  # the guess hands the 3 bits back.
  np.testing.assert_allclose(paid, [-cost, cost, -cost, -cost, 2 * cost, 1.0 - 3 * cost],
                             atol=1e-6)
  np.testing.assert_allclose(rewards.sum(0), SHAPED.payoff(state), atol=1e-6)
  np.testing.assert_allclose(state.returns, [0.85, 0.85], atol=1e-6)
  players = (games.player(NAME, 1, "human", SHAPED),
             games.player(NAME, 2, "lopsided", SHAPED))
  traj = rollout.play(SHAPED, players, (None, None), jax.random.key(7), 64)
  np.testing.assert_allclose(traj.reward.sum(1), traj.returns, atol=1e-5)


def test_lopsided_player_asks_at_a_quarter_and_finishes_worse_than_binary_search():
  always = games.player(NAME, 2, "lopsided", GAME, rate=1.0)
  traj = rollout.play(GAME, (HUMAN, always), (None, None), jax.random.key(8), 4)
  for i in range(4):
    lines = vocab.render(traj.tokens[i], traj.owner[i]).split("\n")
    assert lines[1] == "two> <16?⟨eot⟩"  # A quarter of [0, 64).
  game = games.make(NAME, num_secrets=64, max_questions=15, question_cost=0.05)
  players = (games.player(NAME, 1, "human", game), games.player(NAME, 2, "lopsided", game))
  traj = rollout.play(game, players, (None, None), jax.random.key(9), 256)
  returns = np.asarray(traj.returns[:, 1])
  assert (returns >= 1 - 0.05 * 14 - 1e-6).all()  # Solved, in at most 14 questions.
  assert 0.6 < returns.mean() < 0.7 - 0.03  # The expert's is 0.7 (six questions).
  # The recorded log-probabilities: log 0.8 or log 0.2 a question, 0 for a split both
  # ways alike (an interval of 2 or 3) and for the guess.
  logp = np.asarray(traj.logprob)[np.asarray((traj.owner == 2) & traj.played)]
  allowed = np.log([1.0, 0.8, 0.2])
  assert np.abs(logp[:, None] - allowed).min(1).max() < 1e-5
  assert np.isclose(logp, np.log(0.2)).any() and np.isclose(logp, np.log(0.8)).any()


def test_noisy_player_does_worse_than_the_expert():
  noisy = games.player(NAME, 2, "noisy", GAME)
  traj = rollout.play(GAME, (HUMAN, noisy), (None, None), jax.random.key(3), 64)
  assert float(traj.returns[:, 0].mean()) < 0.7 - 0.2


@pytest.mark.parametrize("name", ["expert", "average", "lopsided", "noisy"])
def test_player_two_moves_without_the_secret(name):
  """Player two's scripted players see a state with player one's hidden part removed."""
  two = games.player(NAME, 2, name, GAME)
  state, _ = write(GAME, with_secret(GAME, 37), "<32?⟨eot⟩no⟨eot⟩")
  blind = state._replace(hidden={})
  act = jax.jit(two.act)
  carry = two.init(None, state, jax.random.key(0))
  for key in jax.random.split(jax.random.key(4), 3):
    seen, _ = act(None, carry, state, key)
    unseen, _ = act(None, carry, blind, key)
    assert int(seen.token) == int(unseen.token)


def test_secret_in_private_text_for_seat_one_and_question_marks_for_seat_two():
  """Seat one reads the secret in two places (N = 64 has two digits), seat two the same
  text whatever the secret; without the setting neither has private text."""
  secrets = {"one": {"secret": jnp.arange(64, dtype=jnp.int32)}}
  private = jax.jit(jax.vmap(PRIVATE.private, (0, None)))
  one, two = (np.asarray(private(secrets, jnp.int32(seat))) for seat in (1, 2))
  assert one.shape == two.shape == (64, PRIVATE.private_length)
  assert [vocab.decode(t) for t in one] == [f"secret {s:02d}" for s in range(64)]
  assert {vocab.decode(t) for t in two} == {"secret ??"}
  state = with_secret(PRIVATE, 5)
  view = game_lib.view(PRIVATE, state.tokens[:int(state.length)], state.hidden, 1)
  assert vocab.decode(np.asarray(view)) == "secret 05⟨bos⟩[0,64)⟨eot⟩\n"
  wide = games.make(NAME, num_secrets=100, secret_in_private=True)
  assert vocab.decode(np.asarray(wide.private({"one": {"secret": jnp.int32(7)}}, 1))) == (
      "secret 007")
  plain = with_secret(GAME, 5)
  assert GAME.private_length == 0
  np.testing.assert_array_equal(game_lib.view(GAME, plain.tokens, plain.hidden, 1), plain.tokens)


def test_a_model_plays_player_one_and_training_reads_the_view_it_read():
  """A model in seat one answers the expert; the training pass, reading the same view
  (the secret, then the transcript), gives the log-probabilities that play recorded."""
  game = games.make(NAME, num_secrets=8, max_questions=3, secret_in_private=True)
  model = models.make(models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                               max_length=game.private_length + game.max_length))
  params = jax.jit(model.init)(jax.random.key(1))
  seats = (players.model_player(model, game, seat=1), games.player(NAME, 2, "expert", game))
  traj = rollout.play(game, seats, (params, None), jax.random.key(6), 8)
  mine = np.asarray((traj.owner == 1) & traj.played)
  assert mine.any() and bool(jnp.all(jnp.isfinite(traj.returns)))
  logits, _ = jax.jit(train.seat_forward, static_argnums=(0, 2, 5))(model, params, game,
                                                                   traj.tokens, traj.hidden, 1)
  logp = objectives.token_logprobs(logits, traj.tokens)
  np.testing.assert_allclose(np.asarray(logp)[mine], np.asarray(traj.logprob)[mine], atol=1e-4)
