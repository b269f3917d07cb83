"""Builder configs: one named variant per game and player mix.

A game variant is named ``<game>_<mix>`` (``arithmetic_expert``, ``arithmetic_mixture``)
and holds plain settings only: the registered game's name and settings, player one's
scripted player, and player two's mix of scripted players as (name, weight) pairs. Every
game in ``games.REGISTRY`` gets the standard mixes below, because every game registers
the demonstrators "expert", "average" and "noisy"; a game registered after import, or a
variant with other settings, is one ``transcripts_config`` / ``preferences_config`` call
passed to the builder as its ``config``.
"""

import dataclasses
from typing import Any

import tensorflow_datasets as tfds

from twoplayer_jax import games

# Player two's standard mixes: scripted player name -> weight.
MIXES = {
    "expert": {"expert": 1.0},
    "average": {"average": 1.0},
    "noisy": {"noisy": 1.0},
    "mixture": {"expert": 0.4, "average": 0.4, "noisy": 0.2},
}
# Mixes whose two continuations can differ in payoff: an expert never loses to itself.
PREFERENCE_MIXES = ("average", "noisy", "mixture")
PREFERENCE_TEMPERATURE = 0.25  # A payoff margin of 1 is preferred with probability 0.98.


def _frozen(settings: dict | None) -> tuple[tuple[str, Any], ...]:
  """Settings as sorted (name, value) pairs: a config stays hashable and prints stably."""
  return tuple(sorted((settings or {}).items()))


@dataclasses.dataclass(eq=False)
class GameConfig(tfds.core.BuilderConfig):
  """A variant of game records: which game is played by which scripted players.

  Attributes:
    game: name in ``games.REGISTRY``.
    game_settings: (name, value) pairs passed to ``games.make``.
    player_one: player one's scripted player.
    player_two: (name, weight) pairs: each game's player two is drawn from these
      scripted players with probability proportional to the weight.
    player_settings: (player name, ((setting, value), ...)) pairs passed to
      ``games.player`` for that player, e.g. an "average" player's ``error_rate``.
    temperature: Bradley-Terry temperature of player one's preference between two
      continuations (preferences only); 0 always prefers the higher payoff.
  """
  game: str = ""
  game_settings: tuple[tuple[str, Any], ...] = ()
  player_one: str = "human"
  player_two: tuple[tuple[str, float], ...] = (("expert", 1.0),)
  player_settings: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
  temperature: float = 0.0

  def __post_init__(self):
    if not self.player_two or any(w < 0 for _, w in self.player_two) or not sum(
        w for _, w in self.player_two) > 0:
      raise ValueError(f"config {self.name!r}: player_two needs (name, weight) pairs with "
                       f"non-negative weights of positive sum, got {self.player_two!r}")
    if self.temperature < 0:
      raise ValueError(f"config {self.name!r}: temperature must be >= 0, got "
                       f"{self.temperature}")

  @property
  def player_names(self) -> list[str]:
    """Player two's scripted players, in the order records index them."""
    return [name for name, _ in self.player_two]

  def settings(self) -> dict:
    """The config as plain JSON values, for the dataset's metadata."""
    return {"game": self.game, "game_settings": dict(self.game_settings),
            "player_one": self.player_one, "player_two": [list(p) for p in self.player_two],
            "player_settings": {n: dict(s) for n, s in self.player_settings},
            "temperature": self.temperature}


def transcripts_config(game: str, mix: dict[str, float], name: str | None = None,
                       game_settings: dict | None = None, player_one: str = "human",
                       player_settings: dict[str, dict] | None = None,
                       temperature: float = 0.0) -> GameConfig:
  """A variant of ``game`` with player two drawn from ``mix`` (player name -> weight).

  ``name`` defaults to ``<game>_<player>`` for a single player. The other arguments
  are ``GameConfig``'s, as dicts.
  """
  if name is None:
    if len(mix) != 1:
      raise ValueError(f"a mix of {sorted(mix)} needs a name")
    name = f"{game}_{next(iter(mix))}"
  return GameConfig(
      name=name, game=game, game_settings=_frozen(game_settings), player_one=player_one,
      player_two=tuple((p, float(w)) for p, w in mix.items()),
      player_settings=tuple((p, _frozen(s)) for p, s in sorted((player_settings or {}).items())),
      temperature=temperature,
      description=f"{game}: player one {player_one}, player two {dict(mix)}")


def preferences_config(game: str, mix: dict[str, float], name: str | None = None,
                       temperature: float = PREFERENCE_TEMPERATURE, **kwargs) -> GameConfig:
  """A preference variant: ``transcripts_config`` with a Bradley-Terry temperature."""
  return transcripts_config(game, mix, name, temperature=temperature, **kwargs)


def standard_transcripts() -> list[GameConfig]:
  """``<game>_<mix>`` for every registered game and every mix in ``MIXES``."""
  return [transcripts_config(game, mix, f"{game}_{mix_name}")
          for game in games.REGISTRY for mix_name, mix in MIXES.items()]


def standard_preferences() -> list[GameConfig]:
  """``<game>_<mix>`` for every registered game and every mix in ``PREFERENCE_MIXES``."""
  return [preferences_config(game, MIXES[mix_name], f"{game}_{mix_name}")
          for game in games.REGISTRY for mix_name in PREFERENCE_MIXES]
