"""The registry of games: configs name a game and its settings, and scripted players.

  game = games.make("arithmetic", num_digits=3)
  expert = games.player("arithmetic", "expert", game)
"""

from twoplayer_jax.games import arithmetic

# name -> (game class, {player name: factory(game, **settings) -> Player})
REGISTRY = {
    "arithmetic": (arithmetic.Arithmetic, arithmetic.PLAYERS),
}


def _entry(name: str):
  if name not in REGISTRY:
    raise KeyError(f"unknown game {name!r}; registered: {sorted(REGISTRY)}")
  return REGISTRY[name]


def make(name: str, **settings):
  """The game registered as ``name`` with the given settings."""
  return _entry(name)[0](**settings)


def player(name: str, player_name: str, game, **settings):
  """Scripted player ``player_name`` of game ``name``."""
  players = _entry(name)[1]
  if player_name not in players:
    raise KeyError(f"game {name!r} has no scripted player {player_name!r}; it has "
                   f"{sorted(players)}")
  return players[player_name](game, **settings)
