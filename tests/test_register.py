"""A game written in a user's own file, registered with ``games.register``, keeps the
contract every packaged game keeps, without a line of the package changed."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

import test_games_contract as contract
from twoplayer_jax import game as game_lib
from twoplayer_jax import games, players, rollout, vocab

LETTERS = jnp.arange(ord("a"), ord("e"))


@dataclasses.dataclass(frozen=True)
class Echo(game_lib.Game):
  """Chance writes a letter; player two scores 1 for writing it back, then end-of-turn.
  Each seat's private text is a letter of its own that the other never sees."""
  max_length: int = 8
  max_turns: int = 2
  max_opening_length: int = 3
  private_length: int = 1

  @property
  def min_opening_length(self) -> int:
    return 3

  def opening(self, key):
    said, one, two = jax.random.choice(key, LETTERS, (3,))
    tokens = jnp.array([vocab.BOS, said, vocab.EOT])
    return game_lib.new_state(self, tokens, jnp.zeros(3, jnp.int32), 3, to_move=game_lib.TWO,
                              turn=1, hidden={"one": {"kept": one}, "two": {"kept": two}})

  def private(self, hidden, seat):
    return jnp.where(seat == game_lib.ONE, hidden["one"]["kept"], hidden["two"]["kept"])[None]

  def payoff(self, state):
    echoed = (state.tokens[3] == state.tokens[1]) & (state.tokens[4] == vocab.EOT)
    return jnp.where(echoed, jnp.array([0.0, 1.0]), jnp.zeros(2))


def reply(error_rate: float):
  def policy(carry, state, key):
    wrong = jax.random.bernoulli(key, error_rate)
    letter = jnp.where(wrong, jax.random.choice(key, LETTERS), state.tokens[1])
    token = jnp.where(state.turn_length == 0, letter, vocab.EOT)
    return token, jnp.float32(0.0), carry
  return players.scripted(policy)


PLAYER_ONE = {"human": lambda game: players.scripted(
    lambda carry, state, key: (jnp.int32(vocab.EOT), jnp.float32(0.0), carry))}
PLAYER_TWO = {"expert": lambda game: reply(0.0), "noisy": lambda game: reply(1.0),
              "average": lambda game, error_rate=0.5: reply(error_rate)}


@pytest.fixture(scope="module")
def echo():
  games.register("echo", Echo, PLAYER_ONE, PLAYER_TWO)
  yield "echo", games.make("echo")
  del games.REGISTRY["echo"]


@pytest.mark.parametrize("check", [
    contract.test_opening_is_consistent_and_jits,
    contract.test_any_players_end_within_limits_with_finite_payoffs,
    contract.test_mover_and_legal_mask_agree_with_the_transcript,
    contract.test_transcripts_decode_and_re_encode_exactly,
    contract.test_registers_a_human_and_the_three_demonstrators,
    contract.test_model_players_play_it_and_training_reads_what_they_read,
    contract.test_a_model_never_reads_the_other_seats_private_text,
], ids=lambda check: check.__name__)
def test_a_registered_game_of_ones_own_keeps_the_contract(echo, check):
  check(echo)


def test_the_expert_echoes_and_registering_twice_or_without_players_fails(echo):
  g = echo[1]
  seats = (games.player("echo", 1, "human", g), games.player("echo", 2, "expert", g))
  traj = rollout.play(g, seats, (None, None), jax.random.key(0), 32)
  assert float(jnp.mean(traj.returns[:, 1])) == 1.0
  with pytest.raises(ValueError, match="already registered"):
    games.register("echo", Echo, PLAYER_ONE, PLAYER_TWO)
  with pytest.raises(ValueError, match=r"needs scripted players \['average', 'noisy'\]"):
    games.register("echo2", Echo, PLAYER_ONE, {"expert": PLAYER_TWO["expert"]})
