"""A mixture of games is itself a game: chance draws which game each episode is.

  mix = games.make("mixture", components=(("arithmetic", {"num_digits": 2}),
                                          ("facts", {})), weights=(1.0, 1.0))

One player two trained on ``mix`` faces many player ones: the multi-task setting. Chance
draws a component with probability proportional to its weight, and the drawn game writes
its own opening: the transcript names nothing that opening does not, so a player infers
the game from what it reads. The drawn game's payoff, per-step rewards, legal moves,
private text and limits apply. Transcripts have the longest component's capacity (every
limit of the mixture is the largest of its components'); a shorter game ends at its own
limits (``decided``).

Hidden information: ``{"game": [] int32, the drawn component's index; "parts": every
component's hidden information, in order}``. Each component draws its own from the
episode's key, and only the drawn one is ever read. A component's functions see the
state as their own game's (``component_state``), so any registered game mixes.

Scripted players: a player name that every component registers, for a seat, is the
mixture's player of that name (the drawn game's player plays; every component's acts at
every step so that each keeps its carry current, as ``players.mixture`` does). Every
registered game has "human" in seat one and "expert", "average" and "noisy" in seat two.
"""

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab


def _largest(limit: str) -> property:
  """The mixture's ``limit``: the largest of its components'."""
  return property(lambda self: max(getattr(g, limit) for g in self.parts))


def _settings(settings: Any) -> tuple[tuple[str, Any], ...]:
  """A component's settings, a dict or (name, value) pairs, as sorted hashable pairs."""
  return tuple(sorted(dict(settings or {}).items()))


@dataclasses.dataclass(frozen=True)
class Mixture(game_lib.Game):
  """Registered games drawn per episode.

  Attributes:
    components: ``(game name, settings)`` pairs; settings a dict or ``(name, value)``
      pairs of ``games.make``'s keyword arguments.
    weights: each component's weight (probabilities up to a constant); empty: equal.
  """
  components: tuple = (("arithmetic", ()), ("facts", ()), ("in_context", ()))
  weights: tuple = ()
  parts: tuple = dataclasses.field(init=False, compare=False, repr=False)

  def __post_init__(self):
    from twoplayer_jax import games  # pylint: disable=import-outside-toplevel
    components = tuple((name, _settings(s)) for name, s in self.components)
    if not components:
      raise ValueError("a mixture needs at least one component game")
    if any(name == "mixture" for name, _ in components):
      raise ValueError("a mixture's components must be games, not mixtures")
    weights = tuple(float(w) for w in self.weights) or (1.0,) * len(components)
    if len(weights) != len(components) or min(weights) < 0 or not sum(weights) > 0:
      raise ValueError(f"weights must be one non-negative weight per component (of positive "
                       f"sum), got {self.weights} for {len(components)} components")
    object.__setattr__(self, "components", components)
    object.__setattr__(self, "weights", weights)
    object.__setattr__(self, "parts", tuple(games.make(name, **dict(s))
                                            for name, s in components))

  max_length = _largest("max_length")
  max_turns = _largest("max_turns")
  max_opening_length = _largest("max_opening_length")
  private_length = _largest("private_length")

  @property
  def min_opening_length(self) -> int:
    return min(g.min_opening_length for g in self.parts)

  @property
  def restricts_moves(self) -> bool:
    return any(g.restricts_moves for g in self.parts)

  def component_state(self, i: int, state: game_lib.GameState) -> game_lib.GameState:
    """``state`` as component ``i``'s own game sees it: its capacity and hidden part."""
    width = self.parts[i].max_length
    return state._replace(tokens=state.tokens[:width], owner=state.owner[:width],
                          hidden=state.hidden["parts"][i])

  def _switch(self, hidden: Any, fn: Callable, *args) -> Any:
    """``fn(i, game_i, *args)`` of component ``i``, the one ``hidden`` says was drawn."""
    branches = [lambda *a, i=i, g=g: fn(i, g, *a) for i, g in enumerate(self.parts)]
    return jax.lax.switch(hidden["game"], branches, *args)

  def opening(self, key: jax.Array) -> game_lib.GameState:
    k_game, k_parts = jax.random.split(key)
    index = jax.random.categorical(k_game, jnp.log(jnp.asarray(self.weights))).astype(jnp.int32)
    states = [g.opening(k) for g, k in zip(self.parts, jax.random.split(k_parts,
                                                                          len(self.parts)))]
    pad = lambda x, fill: jnp.pad(x, (0, self.max_length - x.shape[0]), constant_values=fill)
    shared = [s._replace(tokens=pad(s.tokens, vocab.PAD), owner=pad(s.owner, 0), hidden=None)
              for s in states]
    drawn = jax.tree.map(lambda *x: jnp.stack(x)[index], *shared)
    return drawn._replace(hidden={"game": index, "parts": tuple(s.hidden for s in states)})

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    return self._switch(state.hidden, lambda i, g, s: g.payoff(self.component_state(i, s)),
                        state)

  def reward(self, state: game_lib.GameState, next_state: game_lib.GameState) -> jax.Array:
    return self._switch(state.hidden, lambda i, g, s, n: g.reward(
        self.component_state(i, s), self.component_state(i, n)), state, next_state)

  def decided(self, state: game_lib.GameState) -> jax.Array:
    def own(i, g, s):
      return (g.decided(self.component_state(i, s)) | (s.length >= g.max_length)
              | (s.turn >= g.max_turns))
    return self._switch(state.hidden, own, state)

  def legal_mask(self, state: game_lib.GameState) -> jax.Array:
    return self._switch(state.hidden,
                        lambda i, g, s: g.legal_mask(self.component_state(i, s)), state)

  def private(self, hidden: Any, seat: int | jax.Array) -> jax.Array:
    """The drawn component's private text, PAD-filled to the longest component's."""
    def own(i, g, h):
      text = g.private(h["parts"][i], seat).astype(jnp.int32)
      return jnp.pad(text, (0, self.private_length - text.shape[0]),
                     constant_values=vocab.PAD)
    return self._switch(hidden, own, hidden)


def dispatch(mix: Mixture, players: tuple[players_lib.Player, ...]) -> players_lib.Player:
  """The player that plays as ``players[i]`` in episodes of component ``i``: one player
  per component, each acting on the state as its own game sees it."""

  def init(params, state, key):
    keys = jax.random.split(key, len(players))
    return tuple(p.init(params, mix.component_state(i, state), k)
                 for i, (p, k) in enumerate(zip(players, keys)))

  def act(params, carry, state, key):
    keys = jax.random.split(key, len(players))
    acted = [p.act(params, c, mix.component_state(i, state), k)
             for i, (p, c, k) in enumerate(zip(players, carry, keys))]
    move = jax.tree.map(lambda *m: jnp.stack(m)[state.hidden["game"]], *[m for m, _ in acted])
    return move, tuple(c for _, c in acted)

  return players_lib.Player(init, act, keyless_init=all(p.keyless_init for p in players))


def _scripted(seat: int, name: str) -> Callable:
  """The factory of the mixture's scripted player ``name`` in ``seat``: every component's
  player of that name, given the same settings."""

  def factory(mix: Mixture, **settings) -> players_lib.Player:
    from twoplayer_jax import games  # pylint: disable=import-outside-toplevel
    return dispatch(mix, tuple(games.player(component, seat, name, g, **settings)
                               for (component, _), g in zip(mix.components, mix.parts)))

  return factory


PLAYER_ONE = {"human": _scripted(game_lib.ONE, "human")}
PLAYER_TWO = {name: _scripted(game_lib.TWO, name) for name in ("expert", "average", "noisy")}
