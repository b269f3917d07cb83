"""The in-context game: its text, payoff, demonstrators and held-out tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, players, rollout, vocab

GAME = games.make("in_context", num_tasks=4, num_examples=3)


def letters(rule, word):
  return "".join(chr(ord("a") + int(rule[int(x)])) for x in word)


def openings(game, n, seed=0):
  return jax.jit(jax.vmap(lambda k: game_lib.init(game, k)))(
      jax.random.split(jax.random.key(seed), n))


def test_opening_is_exactly_the_examples_and_the_query():
  """The opening shows the rule only through its examples: the query's answer is not in it."""
  state = openings(GAME, 32)
  identity = np.arange(GAME.num_letters)
  for i in range(32):
    rule, query = np.asarray(state.hidden["rule"][i]), np.asarray(state.hidden["query"][i])
    n = int(state.length[i])
    text = vocab.decode(np.asarray(state.tokens[i, :n]))
    assert text.startswith("⟨bos⟩") and text.endswith(f"{letters(identity, query)}>⟨eot⟩\n")
    pairs = text.removeprefix("⟨bos⟩").removesuffix("⟨eot⟩\n").split(";")
    assert len(pairs) == GAME.num_examples + 1
    for pair in pairs[:-1]:
      word, out = pair.split(">")
      assert len(word) == GAME.word_length and out == letters(rule, [ord(c) - 97 for c in word])
    assert n == GAME.max_opening_length
    np.testing.assert_array_equal(state.owner[i, :n], [0] + [1] * (n - 1))


def test_rules_are_substitutions_and_split_the_family_into_disjoint_halves():
  game = games.make("in_context")
  half = game.family_size // 2
  tasks = jnp.arange(half)
  train = np.asarray(jax.jit(jax.vmap(game.task_index))(tasks))
  held_out = np.asarray(jax.jit(jax.vmap(lambda t: game.task_index(t, True)))(tasks))
  assert not set(train) & set(held_out)
  assert sorted(np.concatenate([train, held_out])) == list(range(game.family_size))
  rules = np.asarray(jax.jit(jax.vmap(game.rule))(jnp.arange(game.family_size)))
  assert (np.sort(rules, axis=1) == np.arange(game.num_letters)).all()
  assert len(np.unique(rules, axis=0)) == game.family_size
  # Evaluation games draw held-out tasks only; training pools are nested and their size.
  evals = openings(games.make("in_context", split="eval", num_tasks=64), 256)
  assert set(np.asarray(evals.hidden["task"])) <= set(held_out)
  assert len(set(np.asarray(evals.hidden["task"]))) > 200
  for num_tasks in (4, 64):
    drawn = set(np.asarray(openings(games.make("in_context", num_tasks=num_tasks), 512)
                           .hidden["task"]))
    assert drawn == set(train[:num_tasks])
  unlimited = set(np.asarray(openings(game, 256).hidden["task"]))
  assert unlimited <= set(train) and len(unlimited) > 200


def test_expert_answers_every_query_and_average_slips_one_letter():
  one = games.player("in_context", 1, "human", GAME)
  expert = games.player("in_context", 2, "expert", GAME)
  average = games.player("in_context", 2, "average", GAME, error_rate=1.0)
  for player, paid in ((expert, 1.0), (average, 0.0)):
    traj = rollout.play(GAME, (one, player), (None, None), jax.random.key(1), 64)
    np.testing.assert_array_equal(traj.returns, paid)
    for i in range(64):
      rule, query = traj.hidden["rule"][i], traj.hidden["query"][i]
      reply = vocab.decode(np.asarray(traj.tokens[i, traj.opening_length[i]:traj.length[i]]))
      right = letters(rule, query)
      assert reply.endswith("⟨eot⟩\n") and len(reply) == len(right) + len("⟨eot⟩\n")
      differ = sum(x != y for x, y in zip(reply, right))
      assert differ == (0 if paid else 1), (reply, right)
      assert set(reply[:len(right)]) <= set("abcdefgh")


@pytest.mark.parametrize("reply, done, paid", [
    ("{a}⟨eot⟩", True, 1.0),
    ("{a}⟨eog⟩", True, 0.0),
    ("{a}a⟨eot⟩", True, 0.0),
    ("{A}⟨eot⟩", True, 0.0),
    ("{a}", False, 0.0),
    ("⟨eot⟩", True, 0.0),
    ("⟨xff⟩>;⟨eot⟩", True, 0.0),
    ("z" * 30, True, 0.0),           # Cut off by the length limit.
])
def test_payoff_on_hand_written_answers(reply, done, paid):
  state = game_lib.init(GAME, jax.random.key(5))
  answer = letters(state.hidden["rule"], state.hidden["query"])
  step = jax.jit(game_lib.step, static_argnums=0)
  for tok in vocab.encode(reply.format(a=answer, A=answer.upper())):
    state, _ = step(GAME, state, jnp.int32(tok))
  assert bool(state.done) == done
  np.testing.assert_array_equal(state.returns, [paid, paid])


def test_without_examples_the_opening_is_the_query_alone():
  game = games.make("in_context", num_examples=0, word_length=2, num_letters=4)
  state = game_lib.init(game, jax.random.key(0))
  query = letters(np.arange(4), state.hidden["query"])
  assert vocab.decode(np.asarray(state.tokens[:int(state.length)])) == f"⟨bos⟩{query}>⟨eot⟩\n"


def test_with_query_shown_every_query_is_an_examples_input_and_the_rest_is_unchanged():
  game = games.make("in_context", num_tasks=4, num_examples=3, query_shown=True)
  state, natural = openings(game, 256), openings(GAME, 256)
  k, n = game.num_examples, game.word_length
  pair = 2 * n + 2  # Tokens of "input>output;".
  words = lambda s: np.asarray(s.tokens[:, 1:1 + k * pair]).reshape(-1, k, pair)[..., :n]
  queries = lambda s: np.asarray(s.hidden["query"])[:, None] + ord("a")
  shown = (words(state) == queries(state)).all(-1)
  assert shown.any(-1).all()  # Every query is one of its game's example inputs.
  assert 0.2 < shown[:, 0].mean() < 0.5  # Drawn among them (each 1/3, more with repeats).
  assert (words(natural) == queries(natural)).all(-1).any(-1).mean() < 0.5  # Not so without.
  # The same tasks and examples as the natural game's, only the query drawn from them.
  np.testing.assert_array_equal(state.hidden["rule"], natural.hidden["rule"])
  np.testing.assert_array_equal(words(state), words(natural))
  with pytest.raises(ValueError, match="query_shown needs num_examples >= 1"):
    games.make("in_context", num_examples=0, query_shown=True)


def test_settings_are_checked():
  with pytest.raises(ValueError, match="num_tasks"):
    games.make("in_context", num_letters=4, num_tasks=13)  # 4! / 2 = 12 training tasks.
  with pytest.raises(ValueError, match="split"):
    games.make("in_context", split="test")
  with pytest.raises(ValueError, match="num_letters"):
    games.make("in_context", num_letters=9)


PROMPTED = games.make("in_context", num_examples=3, word_length=2, num_letters=6, prompted=True)


def prompted_games(player_one, player_two, n=64, seed=1):
  one = games.player("in_context", 1, player_one, PROMPTED)
  two = games.player("in_context", 2, player_two, PROMPTED)
  return rollout.play(PROMPTED, (one, two), (None, None), jax.random.key(seed), n)


def test_prompted_player_one_writes_the_examples_and_the_query_as_chance_would():
  traj = prompted_games("human", "expert")
  np.testing.assert_array_equal(traj.opening_length, 1)
  for i in range(8):
    rule, query = np.asarray(traj.hidden["rule"][i]), np.asarray(traj.hidden["query"][i])
    shown = vocab.render(traj.tokens[i], traj.owner[i])
    prompt, reply = shown.removeprefix("one> ").split("⟨eot⟩\ntwo> ")
    pairs = prompt.split(";")
    assert len(pairs) == PROMPTED.num_examples + 1 and pairs[-1] == letters(
        np.arange(6), query) + ">"
    for pair in pairs[:-1]:
      word, out = pair.split(">")
      assert out == letters(rule, [ord(c) - 97 for c in word])
    assert reply == letters(rule, query) + "⟨eot⟩"
  # The prompt is player one's first turn, closed by its end-of-turn.
  one = np.asarray(traj.owner) == game_lib.ONE
  np.testing.assert_array_equal(one.sum(1), PROMPTED.prompt_length + 1)
  np.testing.assert_array_equal(traj.returns, 1.0)  # The oracle expert answers after it.


def test_only_seat_one_reads_the_rule_and_the_query():
  state = game_lib.init(PROMPTED, jax.random.key(3))
  rule, query = np.asarray(state.hidden["rule"]), np.asarray(state.hidden["query"])
  one = vocab.decode(np.asarray(PROMPTED.private(state.hidden, 1)))
  two = vocab.decode(np.asarray(PROMPTED.private(state.hidden, 2)))
  assert one == f"rule {letters(np.arange(6), rule)} query {letters(np.arange(6), query)}"
  assert two == "rule ?????? query ??"
  assert len(one) == len(two) == PROMPTED.private_length


def test_the_teacher_shows_the_query_and_a_prompt_without_it_is_still_judged_on_it():
  taught = prompted_games("teacher", "noisy")
  for i in range(16):
    prompt = vocab.render(taught.tokens[i], taught.owner[i]).split("⟨eot⟩")[0]
    query = letters(np.arange(6), np.asarray(taught.hidden["query"][i]))
    assert prompt.removeprefix("one> ").startswith(query + ">")  # The first example.
  # Player two answering the query player one wrote, when it is not the hidden one, loses.
  state = game_lib.init(PROMPTED, jax.random.key(4))
  rule, query = np.asarray(state.hidden["rule"]), np.asarray(state.hidden["query"])
  other = (query + 1) % 6
  step = jax.jit(game_lib.step, static_argnums=0)
  for text in (letters(np.arange(6), other) + ">⟨eot⟩", letters(rule, other) + "⟨eot⟩"):
    for tok in vocab.encode(text):
      state, _ = step(PROMPTED, state, jnp.int32(tok))
  assert bool(state.done) and float(state.returns[1]) == 0.0
  # In the game whose opening chance writes, the teacher plays as the human.
  plain = games.make("in_context")
  expert = games.player("in_context", 2, "expert", plain)
  played = [rollout.play(plain, (games.player("in_context", 1, one, plain), expert),
                         (None, None), jax.random.key(5), 8).tokens for one in ("teacher", "human")]
  np.testing.assert_array_equal(*played)


def test_a_model_player_one_reads_its_private_rule_and_writes_the_prompt():
  """Both seats as models: each reads its own view (player one's holds the rule)."""
  from twoplayer_jax import models  # pylint: disable=import-outside-toplevel
  model = models.make(models.TransformerConfig(
      num_layers=1, d_model=16, num_heads=2, d_ff=32,
      max_length=PROMPTED.private_length + PROMPTED.max_length))
  params = model.init(jax.random.key(0))
  seats = tuple(players.model_player(model, PROMPTED, seat=s) for s in (1, 2))
  traj = rollout.play(PROMPTED, seats, (params, params), jax.random.key(6), 8)
  assert (np.asarray(traj.owner)[:, 1] == game_lib.ONE).all()  # Player one moves first.
  assert np.isfinite(np.asarray(traj.logprob)).all()
  assert (np.asarray(traj.length) <= PROMPTED.max_length).all()


@pytest.mark.parametrize("prompted", [False, True])
def test_the_copier_is_the_ideal_in_context_learner(prompted):
  """Right exactly when the examples show the query, else right at the rate of a guess
  among the letters no example's output takes; with the teacher's prompts, always."""
  from experiments.in_context import references  # pylint: disable=import-outside-toplevel
  game = games.make("in_context", word_length=1, num_letters=8, num_examples=4,
                    prompted=prompted)
  copier = games.player("in_context", 2, "copier", game)
  traj = rollout.play(game, (games.player("in_context", 1, "human", game), copier),
                      (None, None), jax.random.key(7), 4096)
  tokens, query = np.asarray(traj.tokens), np.asarray(traj.hidden["query"])
  refs = references(tokens, query, 4, 1, 8)
  paid = np.asarray(traj.returns[:, 1])
  shown = (tokens[:, 1:17:4] == ord("a") + query).any(1)
  assert (paid[shown] == 1).all()  # A shown letter is always copied right.
  assert abs(paid.mean() - refs["ideal"]) < 0.03  # 4096 games: ~4 standard errors.
  assert 0.1 < paid[~shown].mean() < 0.4  # Guesses among the 4 to 8 letters left free.
  if prompted:
    taught = rollout.play(game, (games.player("in_context", 1, "teacher", game), copier),
                          (None, None), jax.random.key(8), 256)
    assert float(taught.returns[:, 1].min()) == 1.0


def test_the_copier_writes_letters_whatever_player_one_wrote():
  game = games.make("in_context", word_length=1, num_letters=8, num_examples=4, prompted=True)
  noise = players.scripted(lambda carry, state, key: (
      jnp.where(state.turn_length >= 5, vocab.EOT, jax.random.randint(key, (), 0, 256)),
      0.0, carry))
  traj = rollout.play(game, (noise, games.player("in_context", 2, "copier", game)),
                      (None, None), jax.random.key(9), 256)
  answers = np.asarray(traj.tokens)[np.asarray(traj.owner) == game_lib.TWO]
  assert ((answers == vocab.EOT) | ((answers >= ord("a")) & (answers < ord("i")))).all()
  assert (np.asarray(traj.returns) >= 0).all()  # Nobody forfeits.
