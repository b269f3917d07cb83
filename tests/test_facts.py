"""The facts game: its knowledge base, text, payoff and the demonstrators' habits."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, rollout, vocab
from twoplayer_jax.games import facts

GAME = games.make("facts", num_entities=64, num_seen=32, wrong_cost=2.5)


def name_of(game, entity):
  names, _ = facts.knowledge_base(game.seed, game.num_entities, game.num_values)
  return vocab.to_bytes(names[entity]).decode()


def test_knowledge_base_is_deterministic_with_distinct_names():
  names = [name_of(GAME, e) for e in range(GAME.num_entities)]
  assert len(set(names)) == GAME.num_entities
  assert all(re.fullmatch("[bdfghjklmnprstvz][aeiou][bdfghjklmnprstvz][aeiou]", n) for n in names)
  other = games.make("facts", num_entities=64, seed=1)
  assert names != [name_of(other, e) for e in range(64)]
  _, colours = facts.knowledge_base(0, 64, 8)
  assert len(set(colours)) > 4 and np.array_equal(colours, facts.knowledge_base(0, 64, 8)[1])


def test_opening_is_the_question_alone_and_fact_text_states_the_colour():
  """The colour is hidden: the opening is exactly the question about the entity's name."""
  states = jax.vmap(lambda k: game_lib.init(GAME, k))(jax.random.split(jax.random.key(0), 16))
  statement = jax.jit(lambda e: facts.fact_text(GAME, e))
  for i in range(16):
    entity, colour = int(states.hidden["entity"][i]), int(states.hidden["colour"][i])
    n = int(states.length[i])
    name = name_of(GAME, entity)
    assert vocab.decode(np.asarray(states.tokens[i, :n])) == f"⟨bos⟩colour of {name}?⟨eot⟩\n"
    assert bool(states.hidden["seen"][i]) == (entity < GAME.num_seen)
    tokens, length = statement(entity)
    assert vocab.decode(np.asarray(tokens[:int(length)])) == f"{name} is {facts.COLOURS[colour]}."


@pytest.mark.parametrize("ask, low, high", [("seen", 0, 32), ("unseen", 32, 64)])
def test_questions_are_drawn_from_the_asked_entities(ask, low, high):
  game = games.make("facts", num_entities=64, num_seen=32, ask=ask)
  entity = np.asarray(jax.vmap(lambda k: game.opening(k).hidden["entity"])(
      jax.random.split(jax.random.key(1), 256)))
  assert entity.min() >= low and entity.max() < high and len(set(entity)) > 24


@pytest.mark.parametrize("reply, done, paid", [
    ("{c}⟨eot⟩", True, 1.0),
    ("idk⟨eot⟩", True, 0.0),
    ("{w}⟨eot⟩", True, -2.5),            # A confident wrong answer.
    ("{c}⟨eog⟩", True, -2.5),            # No end of turn: not an answer.
    ("idk⟨eog⟩", True, -2.5),
    ("{c} ⟨eot⟩", True, -2.5),
    ("IDK⟨eot⟩", True, -2.5),
    ("⟨eot⟩", True, -2.5),
    ("⟨x80⟩⟨xff⟩q⟨eot⟩", True, -2.5),   # Garbage.
    ("q" * 30, True, -2.5),              # Cut off by the length limit.
    ("{c}", False, 0.0),                 # Still in its turn: nothing paid yet.
])
def test_payoff_on_hand_written_answers(reply, done, paid):
  state = game_lib.init(GAME, jax.random.key(3))
  colour = int(state.hidden["colour"])
  wrong = facts.COLOURS[(colour + 1) % GAME.num_values]
  step = jax.jit(game_lib.step, static_argnums=0)
  for tok in vocab.encode(reply.format(c=facts.COLOURS[colour], w=wrong)):
    state, _ = step(GAME, state, jnp.int32(tok))
  assert bool(state.done) == done
  np.testing.assert_array_equal(state.returns, [paid, paid])


def test_expert_is_never_wrong_and_the_always_answering_player_hallucinates():
  one = games.player("facts", 1, "human", GAME)
  expert = games.player("facts", 2, "expert", GAME)
  always = games.player("facts", 2, "average", GAME, error_rate=0.0)
  key = jax.random.key(2)
  traj = rollout.play(GAME, (one, expert), (None, None), key, 64)
  seen = np.asarray(traj.hidden["seen"])
  assert 10 < seen.sum() < 54
  np.testing.assert_array_equal(traj.returns[:, 0], np.where(seen, 1.0, 0.0))
  np.testing.assert_array_equal(traj.returns[:, 0], traj.returns[:, 1])
  traj = rollout.play(GAME, (one, always), (None, None), key, 64)
  returns = np.asarray(traj.returns[:, 0])
  np.testing.assert_array_equal(returns[seen], 1.0)
  assert set(returns[~seen]) <= {1.0, -2.5} and (returns[~seen] == -2.5).mean() > 0.6
  for i in range(64):
    reply = vocab.to_bytes(np.asarray(traj.tokens[i, traj.opening_length[i]:traj.length[i]]))
    assert reply.decode() in facts.COLOURS  # It never abstains.


def test_settings_are_checked():
  with pytest.raises(ValueError, match="none to ask"):
    games.make("facts", num_entities=8, num_seen=8, ask="unseen")
  with pytest.raises(ValueError, match="ask"):
    games.make("facts", ask="some")
  with pytest.raises(ValueError, match="num_entities"):
    games.make("facts", num_entities=facts.NUM_NAMES + 1)
