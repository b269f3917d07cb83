"""The registry of games: configs name a game, its settings and its scripted players.

  game = games.make("arithmetic", num_digits=3)
  human = games.player("arithmetic", 1, "human", game)
  expert = games.player("arithmetic", 2, "expert", game)

Every game registers scripted players for both seats: player one's include "human" (the
default player one), player two's include the demonstrators "expert", "average" (taking
``error_rate``) and "noisy". "mixture" (``games.mixture``) draws one of several registered
games per episode.
"""

import functools
from typing import Callable, NamedTuple

from twoplayer_jax.games import arithmetic
from twoplayer_jax.games import bargaining
from twoplayer_jax.games import facts
from twoplayer_jax.games import in_context
from twoplayer_jax.games import kuhn_poker
from twoplayer_jax.games import leduc_poker
from twoplayer_jax.games import mixture
from twoplayer_jax.games import red_team
from twoplayer_jax.games import twenty_questions


class Entry(NamedTuple):
  """A registered game: its class and its scripted players, ``factory(game, **settings)``."""
  game: type
  player_one: dict[str, Callable]
  player_two: dict[str, Callable]


REGISTRY = {
    "arithmetic": Entry(arithmetic.Arithmetic, arithmetic.PLAYER_ONE, arithmetic.PLAYER_TWO),
    "facts": Entry(facts.Facts, facts.PLAYER_ONE, facts.PLAYER_TWO),
    "in_context": Entry(in_context.InContext, in_context.PLAYER_ONE, in_context.PLAYER_TWO),
    "bargaining": Entry(bargaining.Bargaining, bargaining.PLAYER_ONE, bargaining.PLAYER_TWO),
    "red_team": Entry(red_team.RedTeam, red_team.PLAYER_ONE, red_team.PLAYER_TWO),
    "twenty_questions": Entry(twenty_questions.TwentyQuestions, twenty_questions.PLAYER_ONE,
                              twenty_questions.PLAYER_TWO),
    "kuhn_poker": Entry(kuhn_poker.KuhnPoker, kuhn_poker.PLAYER_ONE, kuhn_poker.PLAYER_TWO),
    "leduc_poker": Entry(leduc_poker.LeducPoker, leduc_poker.PLAYER_ONE, leduc_poker.PLAYER_TWO),
    "mixture": Entry(mixture.Mixture, mixture.PLAYER_ONE, mixture.PLAYER_TWO),
}


def register(name: str, game: type, player_one: dict[str, Callable],
             player_two: dict[str, Callable]) -> None:
  """Registers a game defined anywhere (e.g. in one's own file) under ``name``.

  Args:
    name: the name configs use; must be new.
    game: the game's class (a frozen dataclass subclassing ``game.Game``).
    player_one, player_two: scripted players by name, ``factory(game, **settings) ->
      Player``; player one's must include "human", player two's "expert", "average"
      (taking ``error_rate``) and "noisy", the players every stage may ask for.
  """
  if name in REGISTRY:
    raise ValueError(f"a game named {name!r} is already registered ({REGISTRY[name].game})")
  missing = ({"human"} - set(player_one)) | ({"expert", "average", "noisy"} - set(player_two))
  if missing:
    raise ValueError(f"game {name!r} needs scripted players {sorted(missing)}")
  REGISTRY[name] = Entry(game, dict(player_one), dict(player_two))


def _entry(name: str) -> Entry:
  if name not in REGISTRY:
    raise KeyError(f"unknown game {name!r}; registered: {sorted(REGISTRY)}")
  return REGISTRY[name]


def make(name: str, **settings):
  """The game registered as ``name`` with the given settings."""
  return _entry(name).game(**settings)


@functools.cache
def player(name: str, seat: int, player_name: str, game, **settings):
  """Scripted player ``player_name`` of game ``name`` for ``seat`` (1 or 2). The same
  arguments give the same player, so ``jit`` reuses what it compiled for it."""
  if seat not in (1, 2):
    raise ValueError(f"seat must be 1 or 2, got {seat!r}")
  players = _entry(name).player_one if seat == 1 else _entry(name).player_two
  if player_name not in players:
    raise KeyError(f"game {name!r} has no scripted player {player_name!r} for seat {seat}; "
                   f"it has {sorted(players)}")
  return players[player_name](game, **settings)
