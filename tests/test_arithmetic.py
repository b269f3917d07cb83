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


@pytest.mark.parametrize("reply, paid", [
    ("{r}⟨eot⟩", 1.0), ("{s}⟨eot⟩", 0.0), ("{r}0⟨eot⟩", 0.0), ("={r}⟨eot⟩", 1.0)])
def test_reversed_answers_are_read_least_significant_digit_first(reply, paid):
  game = games.make("arithmetic", num_digits=3, answer_format="reversed")
  state = game_lib.init(game, jax.random.key(5))
  a, b = (int(x) for x in state.hidden["operands"])
  assert str(a + b) != str(a + b)[::-1]  # The orders differ for this problem.
  step = jax.jit(game_lib.step, static_argnums=0)
  for tok in vocab.encode(reply.format(r=str(a + b)[::-1], s=a + b)):
    state, _ = step(game, state, jnp.int32(tok))
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


def chain(a, b, operation):
  """The documented Q-C-A reply, written out in Python."""
  steps, total = [], 0
  if operation == "add":
    carry = 0
    for i in range(max(len(str(a)), len(str(b)))):
      x, y = a // 10 ** i % 10, b // 10 ** i % 10
      steps.append(f"{x}+{y}+{carry}={x + y + carry};")
      carry = (x + y + carry) // 10
    return "".join(steps) + f"={a + b}"
  for i in range(len(str(b))):
    d = b // 10 ** i % 10 * 10 ** i
    steps.append(f"{a}*{d}={a * d}" + (f"+{total}={total + a * d}" if i else "") + ";")
    total += a * d
  return "".join(steps) + f"={a * b}"


def replies(traj):
  return [vocab.to_bytes(np.asarray(traj.tokens[i, traj.opening_length[i]:traj.length[i]]))
          .decode() for i in range(traj.tokens.shape[0])]


@pytest.mark.parametrize("operation, answer_format, num_digits", [
    ("add", "qa", 3), ("add", "reversed", 3), ("add", "filler", 3), ("add", "qca", 5),
    ("mul", "qa", 2), ("mul", "reversed", 2), ("mul", "filler", 2), ("mul", "qca", 3)])
def test_expert_writes_the_exact_reply_and_is_always_right(operation, answer_format, num_digits):
  game = games.make("arithmetic", num_digits=num_digits, operation=operation,
                    answer_format=answer_format)
  one, expert = (games.player("arithmetic", s, p, game) for s, p in ((1, "human"), (2, "expert")))
  traj = rollout.play(game, (one, expert), (None, None), jax.random.key(7), 64)
  np.testing.assert_array_equal(traj.returns, 1.0)
  sign = {"add": "+", "mul": "*"}[operation]
  for i, reply in enumerate(replies(traj)):
    a, b = (int(x) for x in traj.hidden["operands"][i])
    result = a + b if operation == "add" else a * b
    steps = chain(a, b, operation)
    expected = {"qa": str(result), "reversed": str(result)[::-1], "qca": steps,
                "filler": "." * steps.rindex("=") + f"={result}"}[answer_format]
    assert reply == expected, (a, b, reply)
    if i < 2:
      assert vocab.render(traj.tokens[i], traj.owner[i]) == (
          f"one> {a}{sign}{b}=⟨eot⟩\ntwo> {expected}⟨eot⟩")


def check_one_slip(a, b, operation, reply):
  """The chain slips at exactly one step and the rest follows from it, to a wrong answer."""
  *steps, answer = reply.split(";")
  answer = int(answer.removeprefix("="))
  slips, carry, total = 0, 0, 0
  for i, step in enumerate(steps):
    if operation == "add":
      lhs, s = step.split("=")
      x, y, c = (int(v) for v in lhs.split("+"))
      assert (x, y, c) == (a // 10 ** i % 10, b // 10 ** i % 10, carry)
      slips += int(s) != x + y + c
      total, carry = total + int(s) % 10 * 10 ** i, int(s) // 10
    else:
      product, *running = step.split("=")
      x, d = (int(v) for v in product.split("*"))
      assert (x, d) == (a, b // 10 ** i % 10 * 10 ** i)
      partial = int(running[0].split("+")[0])
      slips += partial != a * d
      if i:
        assert running[0] == f"{partial}+{total}" and int(running[1]) == total + partial
      total += partial
  assert slips == 1, reply
  assert answer == total + carry * 10 ** len(steps)
  assert answer != (a + b if operation == "add" else a * b)


@pytest.mark.parametrize("operation", ["add", "mul"])
def test_average_chain_slips_once_and_the_slip_reaches_the_answer(operation):
  game = games.make("arithmetic", num_digits=2, operation=operation, answer_format="qca")
  one = games.player("arithmetic", 1, "human", game)
  average = games.player("arithmetic", 2, "average", game, error_rate=1.0)
  traj = rollout.play(game, (one, average), (None, None), jax.random.key(8), 64)
  np.testing.assert_array_equal(traj.returns, 0.0)
  for i, reply in enumerate(replies(traj)):
    a, b = (int(x) for x in traj.hidden["operands"][i])
    check_one_slip(a, b, operation, reply)


def carryless_chain(a, b):
  """The Q-C-A addition reply of a player who forgets every carry, in Python."""
  places = range(max(len(str(a)), len(str(b))))
  sums = [(a // 10 ** i % 10, b // 10 ** i % 10) for i in places]
  answer = sum((x + y) % 10 * 10 ** i for i, (x, y) in enumerate(sums))
  return "".join(f"{x}+{y}+0={x + y};" for x, y in sums) + f"={answer}"


@pytest.mark.parametrize("answer_format", ["qa", "reversed", "filler", "qca"])
def test_careless_forgets_every_carry_and_is_right_without_one(answer_format):
  game = games.make("arithmetic", num_digits=2, answer_format=answer_format)
  one = games.player("arithmetic", 1, "human", game)
  careless = games.player("arithmetic", 2, "careless", game, forget_rate=1.0)
  traj = rollout.play(game, (one, careless), (None, None), jax.random.key(9), 256)
  operands = np.asarray(traj.hidden["operands"])
  carries = ((operands % 10).sum(1) >= 10) | ((operands // 10).sum(1) >= 10)
  assert 0 < carries.sum() < 256
  np.testing.assert_array_equal(np.asarray(jax.vmap(game.carries)(operands)), carries)
  np.testing.assert_array_equal(traj.returns[:, 1], np.where(carries, 0.0, 1.0))
  for (a, b), reply in zip(operands.tolist(), replies(traj)):
    expected = carryless_chain(a, b)
    answer = expected.split("=")[-1]
    assert reply == {"qa": answer, "reversed": answer[::-1], "qca": expected,
                     "filler": "." * expected.rindex("=") + "=" + answer}[answer_format]


def test_careless_forgets_at_its_rate_and_its_logprob_counts_only_carrying_problems():
  game = games.make("arithmetic", num_digits=2)
  one = games.player("arithmetic", 1, "human", game)
  careless = games.player("arithmetic", 2, "careless", game, forget_rate=0.75)
  traj = rollout.play(game, (one, careless), (None, None), jax.random.key(10), 4096)
  carries = np.asarray(jax.vmap(game.carries)(traj.hidden["operands"]))
  right = np.asarray(traj.returns[:, 1]) == 1
  assert right[~carries].all()
  assert abs(right[carries].mean() - 0.25) < 0.03  # 4-sigma margin over ~2900 games.
  logp = np.asarray(traj.logprob.sum(1))
  np.testing.assert_allclose(logp[~carries], 0.0, atol=1e-6)
  np.testing.assert_allclose(logp[carries], np.where(right[carries], np.log(0.25),
                                                     np.log(0.75)), rtol=1e-5)
  with pytest.raises(ValueError, match="addition"):
    games.player("arithmetic", 2, "careless", games.make("arithmetic", operation="mul"))
  with pytest.raises(ValueError, match="forget_rate"):
    games.player("arithmetic", 2, "careless", game, forget_rate=1.5)


@pytest.mark.parametrize("operation, reply, paid", [
    ("add", "{chain}⟨eot⟩", 1.0),
    ("add", "{r}⟨eot⟩", 1.0),                      # Q-A reply in a Q-C-A game: same payoff.
    ("add", "1+1+0=99;junk={r}⟨eot⟩", 1.0),        # Only the answer is scored.
    ("add", "{chain}1⟨eot⟩", 0.0),
    ("add", "{chain}=⟨eot⟩", 0.0),                 # Nothing after the last "=".
    ("add", "{chain}⟨eog⟩", 0.0),
    ("add", "{r}=⟨eot⟩", 0.0),
    ("add", "==;;⟨x9f⟩+⟨eot⟩", 0.0),
    ("mul", "{chain}⟨eot⟩", 1.0),
    ("mul", "{r}⟨eot⟩", 1.0),
    ("mul", "{chain}0⟨eot⟩", 0.0),
])
def test_payoff_reads_only_the_answer_after_the_last_equals(operation, reply, paid):
  game = games.make("arithmetic", num_digits=3, operation=operation, answer_format="qca")
  state = game_lib.init(game, jax.random.key(3))
  a, b = (int(x) for x in state.hidden["operands"])
  step = jax.jit(game_lib.step, static_argnums=0)
  r = a + b if operation == "add" else a * b
  for tok in vocab.encode(reply.format(chain=chain(a, b, operation), r=r)):
    state, _ = step(game, state, jnp.int32(tok))
  assert bool(state.done)
  np.testing.assert_array_equal(state.returns, [paid, paid])


@pytest.mark.parametrize("operation, answer_format, num_digits", [
    ("add", "qa", 1), ("add", "reversed", 2), ("add", "qca", 1), ("add", "qca", 5),
    ("add", "filler", 3), ("mul", "qa", 4), ("mul", "qca", 1), ("mul", "filler", 2),
    ("mul", "qca", 4)])
def test_longest_reply_is_the_all_nines_one_and_fits(operation, answer_format, num_digits):
  game = games.make("arithmetic", num_digits=num_digits, operation=operation,
                    answer_format=answer_format, answer_slack=0)
  nines = 10 ** num_digits - 1
  reply = jax.jit(game.reply)(jnp.array([nines, nines]), jnp.int32(0), jnp.int32(0))
  expected = chain(nines, nines, operation) if answer_format in ("qca", "filler") else str(
      2 * nines if operation == "add" else nines * nines)
  expected = expected[::-1] if answer_format == "reversed" else expected
  if answer_format == "filler":  # The chain's characters as dots.
    expected = "." * expected.rindex("=") + expected[expected.rindex("="):]
  assert vocab.decode(np.asarray(reply[0][:int(reply[1])])) == expected
  assert game.max_reply_length == len(expected)
  assert game.max_length == game.max_opening_length + len(expected) + 1


def test_settings_are_checked():
  with pytest.raises(ValueError, match="num_digits"):
    games.make("arithmetic", operation="mul", num_digits=5)
  with pytest.raises(ValueError, match="operation"):
    games.make("arithmetic", operation="sub")
  with pytest.raises(ValueError, match="answer_format"):
    games.make("arithmetic", answer_format="cot")


def test_num_carries_counts_every_carry_out_carries_in_included():
  game = games.make("arithmetic", num_digits=4)
  count = jax.jit(jax.vmap(game.num_carries))
  by_hand = {(0, 0): 0, (5, 5): 1, (95, 5): 2, (9999, 1): 4, (4545, 5454): 0, (4546, 5454): 4,
             (1919, 1191): 3, (500, 500): 1}
  np.testing.assert_array_equal(count(jnp.array(list(by_hand), jnp.int32)),
                                list(by_hand.values()))

  def long_addition(a, b):  # Digit by digit, as the chain writes it.
    carry = carries = 0
    for _ in range(4):
      carry = int(a % 10 + b % 10 + carry >= 10)
      carries, a, b = carries + carry, a // 10, b // 10
    return carries

  operands = np.random.default_rng(0).integers(0, 10 ** 4, (2000, 2))
  np.testing.assert_array_equal(count(jnp.asarray(operands, jnp.int32)),
                                [long_addition(a, b) for a, b in operands.tolist()])
