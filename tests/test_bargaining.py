"""Bargaining: its text, payoffs of deals and of malformed moves, private values, measures
of deals."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, rollout, vocab
from twoplayer_jax.games import bargaining

NAME = "bargaining"
GAME = games.make(NAME, num_types=3, max_count=3, max_rounds=6)
HUMAN = games.player(NAME, 1, "human", GAME)
EXPERT = games.player(NAME, 2, "expert", GAME)
step = jax.jit(game_lib.step, static_argnums=0)
COUNTS, ONE_VALUES, TWO_VALUES = [2, 1, 3], [1, 2, 0], [0, 1, 3]


def dealt(game=GAME):
  """A game with counts 2,1,3; player one values 1,2,0 (total 4), two 0,1,3 (total 10)."""
  state = game_lib.init(game, jax.random.key(0))
  tokens = np.array(state.tokens)
  tokens[7:12] = vocab.encode("2,1,3")  # After "⟨bos⟩items ".
  hidden = {"counts": jnp.array(COUNTS), "one": {"values": jnp.array(ONE_VALUES)},
            "two": {"values": jnp.array(TWO_VALUES)}}
  return state._replace(tokens=jnp.asarray(tokens), hidden=hidden)


def write(state, written, game=GAME):
  for tok in vocab.encode(written):
    state, _ = step(game, state, jnp.int32(tok))
  return state


def test_opening_states_the_counts_and_no_values():
  states = jax.vmap(lambda k: game_lib.init(GAME, k))(jax.random.split(jax.random.key(0), 8))
  for i in range(8):
    counts = ",".join(str(c) for c in np.asarray(states.hidden["counts"][i]))
    n = int(states.length[i])
    assert vocab.decode(np.asarray(states.tokens[i, :n])) == f"⟨bos⟩items {counts}⟨eot⟩\n"
    assert (np.asarray(states.owner[i, :n]) == 0).all()
  assert int(states.to_move[0]) == 1


def test_each_seat_reads_its_own_values_and_only_them():
  game = games.make(NAME)
  state = game_lib.init(game, jax.random.key(3))
  counts = ",".join(str(x) for x in np.asarray(state.hidden["counts"]))
  for seat, key in ((1, "one"), (2, "two")):
    values = ",".join(str(x) for x in np.asarray(state.hidden[key]["values"]))
    view = game_lib.view(game, state.tokens[:int(state.length)], state.hidden, seat)
    assert vocab.decode(np.asarray(view)) == f"values {values}⟨bos⟩items {counts}⟨eot⟩\n"
    traced = jax.jit(game.private)(state.hidden, jnp.int32(seat))
    np.testing.assert_array_equal(traced, view[:game.private_length])


def test_transcript_text_of_a_deal():
  state = write(dealt(), "offer:2,0,1⟨eot⟩offer:1,1,3⟨eot⟩accept⟨eot⟩")
  assert vocab.render(state.tokens, state.owner) == (
      "chance> items 2,1,3⟨eot⟩\none> offer:2,0,1⟨eot⟩\ntwo> offer:1,1,3⟨eot⟩\n"
      "one> accept⟨eot⟩")


@pytest.mark.parametrize("written, done, paid", [
    ("offer:2,0,1⟨eot⟩accept⟨eot⟩", True, [0.5, 0.7]),
    ("offer:2,0,1⟨eot⟩offer:0,1,3⟨eot⟩accept⟨eot⟩", True, [0.5, 1.0]),
    ("offer:0,0,0⟨eot⟩accept⟨eot⟩", True, [0.0, 1.0]),
    ("accept⟨eot⟩accept⟨eot⟩", False, [0, 0]),                 # Nothing to accept.
    ("offer:3,0,1⟨eot⟩accept⟨eot⟩", False, [0, 0]),            # More items than there are.
    ("offer:2,0⟨eot⟩accept⟨eot⟩", False, [0, 0]),
    ("offer:2,0,1 ⟨eot⟩accept⟨eot⟩", False, [0, 0]),
    ("⟨x9f⟩zz⟨eot⟩accept⟨eot⟩", False, [0, 0]),
    ("offer:2,0,1⟨eot⟩accepted⟨eot⟩", False, [0, 0]),
    ("offer:2,0,1⟨eot⟩accept⟨eog⟩", True, [0, 0]),            # Accept never closed.
    ("offer:2,0,1⟨eot⟩offer:0,1,3⟨eot⟩" * 3, True, [0, 0]),   # Out of turns.
    ("offer:2,0,1⟨eot⟩offer:0,1,3⟨eot⟩" * 2 + "offer:1,1,1⟨eot⟩accept⟨eot⟩", True,
     [0.75, 0.6]),                                            # Accepted at the last turn.
])
def test_payoff_on_hand_written_transcripts(written, done, paid):
  state = write(dealt(), written)
  assert bool(state.done) == done
  np.testing.assert_allclose(state.returns, paid if done else [0, 0], atol=1e-6)
  np.testing.assert_allclose(GAME.payoff(state), paid, atol=1e-6)


def offers(traj, i, seat):
  """What ``seat`` kept in each of its offers in game i."""
  out, start = [], int(traj.opening_length[i])
  tokens, owner = np.asarray(traj.tokens[i]), np.asarray(traj.owner[i])
  for end in np.flatnonzero(tokens[:int(traj.length[i])] == vocab.EOT):
    if end >= start and owner[end] == seat:
      turn = vocab.decode(tokens[start:end])
      if turn.startswith("offer:"):
        out.append([int(x) for x in turn[6:].split(",")])
    start = end + 1
  return out


def test_expert_and_human_always_deal_and_never_keep_what_they_do_not_value():
  traj = rollout.play(GAME, (HUMAN, EXPERT), (None, None), jax.random.key(0), 64)
  returns = np.asarray(traj.returns)
  assert (returns > 0).all() and (returns <= 1).all()
  for i in range(64):
    for seat, key in ((1, "one"), (2, "two")):
      worthless = np.asarray(traj.hidden[key]["values"][i]) == 0
      for keep in offers(traj, i, seat):
        assert not np.any(np.array(keep)[worthless]), (i, seat, keep)
  # Player two's payoff ranks its demonstrators.
  means = {"expert": returns[:, 1].mean()}
  for name in ("average", "noisy"):
    two = games.player(NAME, 2, name, GAME)
    means[name] = float(rollout.play(GAME, (HUMAN, two), (None, None), jax.random.key(0),
                                     64).returns[:, 1].mean())
  assert means["expert"] > means["average"] > means["noisy"], means


@pytest.mark.parametrize("seat, name", [(1, "human"), (2, "expert"), (2, "average"),
                                        (2, "noisy")])
def test_scripted_players_move_without_the_other_seats_values(seat, name):
  player = games.player(NAME, seat, name, GAME)
  state = write(dealt(), "offer:2,0,1⟨eot⟩" if seat == 2 else "")
  other = "one" if seat == 2 else "two"
  blind = state._replace(hidden={k: v for k, v in state.hidden.items() if k != other})
  act = jax.jit(player.act)
  carry = player.init(None, state, jax.random.key(0))
  for key in jax.random.split(jax.random.key(4), 3):
    assert int(act(None, carry, state, key)[0].token) == int(act(None, carry, blind, key)[0].token)


@pytest.mark.parametrize("written, pareto_optimal, welfare, nash_product", [
    # Splits pay (a + 2b) / 4 and (1 - b + 3 (3 - c)) / 10 when player one gets a, b, c;
    # at most 1.9 together (one gets 2,1,0: 1 and 0.9) and 0.9 as a product (the same).
    ("offer:2,1,0⟨eot⟩accept⟨eot⟩", True, 1.0, 1.0),
    ("offer:2,0,1⟨eot⟩offer:0,1,3⟨eot⟩accept⟨eot⟩", True, 1.5 / 1.9, 0.5 / 0.9),  # Pays 0.5, 1.
    ("offer:2,0,1⟨eot⟩accept⟨eot⟩", False, 1.2 / 1.9, 0.35 / 0.9),  # 0.5, 0.7; 2,1,0: 1, 0.9.
    ("offer:0,0,0⟨eot⟩accept⟨eot⟩", False, 1.0 / 1.9, 0.0),         # 0, 1; 1,0,0: 0.25, 1.
    ("offer:2,0,1⟨eot⟩offer:0,1,3⟨eot⟩" * 3, False, 0.0, 0.0),       # No deal: 0, 0.
])
def test_deal_measures_of_hand_written_deals(written, pareto_optimal, welfare, nash_product):
  """Splits of more items than there are (``_splits`` lists up to max_count, 3, of each)
  are not counted: player one getting 3,1,0 would be paid 1.25 and 0.9."""
  state = write(dealt(), written)
  measures = jax.jit(bargaining.deal_measures, static_argnums=0)(GAME, state.hidden,
                                                                 state.returns)
  assert bool(measures["pareto_optimal"]) == pareto_optimal
  np.testing.assert_allclose(measures["welfare"], welfare, rtol=1e-6)
  np.testing.assert_allclose(measures["nash_product"], nash_product, rtol=1e-6)


def test_deal_measures_where_every_split_leaves_a_player_nothing():
  """One item both value, two neither does: the best product is 0, and any outcome
  attains it."""
  game = games.make(NAME, num_types=3, max_count=1)
  hidden = {"counts": jnp.array([1, 1, 1]), "one": {"values": jnp.array([4, 0, 0])},
            "two": {"values": jnp.array([2, 0, 0])}}
  for paid, pareto_optimal, welfare in (([1.0, 0.0], True, 1.0), ([0.0, 1.0], True, 1.0),
                                        ([0.0, 0.0], False, 0.0)):
    measures = bargaining.deal_measures(game, hidden, jnp.array(paid))
    assert bool(measures["pareto_optimal"]) == pareto_optimal
    np.testing.assert_allclose(measures["welfare"], welfare)
    np.testing.assert_allclose(measures["nash_product"], 1.0)


def measures_by_hand(counts, one, two, paid):
  """``deal_measures`` in numpy over the splits that fit ``counts``, enumerated directly."""
  shares = np.array(list(itertools.product(*(range(c + 1) for c in counts))))
  worth = np.stack([shares @ one / (counts @ one), (counts - shares) @ two / (counts @ two)])
  dominates = np.all(worth >= paid[:, None] - 1e-6, 0) & np.any(worth > paid[:, None] + 1e-6, 0)
  product = np.max(worth[0] * worth[1])
  return (not dominates.any(), paid.sum() / np.max(worth.sum(0)),
          paid.prod() / product if product > 0 else 1.0)


@pytest.mark.parametrize("two", ["expert", "average"])
def test_deal_measures_of_played_games(two):
  traj = rollout.play(GAME, (HUMAN, games.player(NAME, 2, two, GAME)), (None, None),
                      jax.random.key(0), 64)
  measures = jax.vmap(functools.partial(bargaining.deal_measures, GAME))(traj.hidden,
                                                                         traj.returns)
  hidden, returns = jax.device_get((traj.hidden, traj.returns))
  pareto, welfare, nash = (np.asarray(measures[k])
                           for k in ("pareto_optimal", "welfare", "nash_product"))
  assert pareto.shape == welfare.shape == nash.shape == (64,)
  for i in range(64):
    expected = measures_by_hand(hidden["counts"][i], hidden["one"]["values"][i],
                                hidden["two"]["values"][i], returns[i])
    assert pareto[i] == expected[0], i
    np.testing.assert_allclose([welfare[i], nash[i]], expected[1:], rtol=1e-5, err_msg=str(i))
  assert ((welfare >= 0) & (welfare <= 1 + 1e-6) & (nash >= 0) & (nash <= 1 + 1e-6)).all()
  # A deal of the most welfare is Pareto optimal: one that paid both more would pay more.
  assert pareto[welfare > 1 - 1e-6].all()
  if two == "expert":  # Every game ends in a deal (above): both are paid something.
    assert (welfare > 0).all() and (nash > 0).all()
