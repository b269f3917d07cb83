"""Players: scripted and model players behind one interface, on either side of the game.

A ``Player`` is a pair of pure functions over one game (``play`` vmaps them):

  carry = player.init(params, state, key)
  move, carry = player.act(params, carry, state, key)

``act`` is called at every step of the game, the opponent's included, so that a model
player reads every token as it is written (one decode step into its KV cache); the move
it returns counts only when ``state.to_move`` is its seat. ``params`` is whatever the
player needs (model parameters; ``None`` for scripted players).
"""

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from twoplayer_jax import game as game_lib
from twoplayer_jax.objectives.tokens import widen
from twoplayer_jax.models.interface import Cache, Model


class Move(NamedTuple):
  """A player's move in one game.

  Attributes:
    token: ``[]`` int32 token to write.
    logprob: ``[]`` float32 log-probability of ``token`` under the player's policy.
    value: ``[]`` float32 the player's value estimate of the current state (0 if none).
  """
  token: jax.Array
  logprob: jax.Array
  value: jax.Array


class Player(NamedTuple):
  """``init(params, state, key) -> carry``; ``act(params, carry, state, key) -> (Move, carry)``.

  ``keyless_init``: ``init`` ignores its key, so games that share an opening share one
  carry (``play`` then reads each shared opening once, e.g. one prefill per group).
  """
  init: Callable[[Any, game_lib.GameState, jax.Array], Any]
  act: Callable[[Any, Any, game_lib.GameState, jax.Array], tuple[Move, Any]]
  keyless_init: bool = False


def scripted(policy: Callable, init_carry: Callable = lambda state: ()) -> Player:
  """A scripted player from ``policy(carry, state, key) -> (token, logprob, carry)``."""

  def act(params, carry, state, key):
    del params
    token, logprob, carry = policy(carry, state, key)
    return Move(jnp.asarray(token, jnp.int32), jnp.asarray(logprob, jnp.float32),
                jnp.float32(0.0)), carry

  return Player(lambda params, state, key: init_carry(state), act, keyless_init=True)


def mixture(players: Sequence[Player], weights: Sequence[float]) -> Player:
  """A player that is one of ``players``, drawn per game with probability ∝ ``weights``.

  The players share the mixture's ``params`` (scripted players take None). Its carry is
  ``(index, carries)``: ``index []`` int32 is the drawn player. Every
  sub-player acts at every step so that each keeps its carry current; the drawn
  player's move is the one played. Equal players and weights give the same mixture.
  """
  return _mixture(tuple(players), tuple(float(w) for w in weights))


@functools.cache
def _mixture(players: tuple[Player, ...], weights: tuple[float, ...]) -> Player:
  logits = jnp.log(jnp.asarray(weights, jnp.float32))

  def init(params, state, key):
    k_pick, *keys = jax.random.split(key, len(players) + 1)
    index = jax.random.categorical(k_pick, logits).astype(jnp.int32)
    return index, tuple(p.init(params, state, k) for p, k in zip(players, keys))

  def act(params, carry, state, key):
    index, carries = carry
    acted = [p.act(params, c, state, k)
             for p, c, k in zip(players, carries, jax.random.split(key, len(players)))]
    move = jax.tree.map(lambda *m: jnp.stack(m)[index], *[m for m, _ in acted])
    return move, (index, tuple(c for _, c in acted))

  return Player(init, act)


def sample(logits: jax.Array, legal: jax.Array, key: jax.Array, temperature: float = 1.0,
           top_k: int = 0) -> tuple[jax.Array, jax.Array]:
  """Samples one token from ``logits [V]`` restricted to ``legal [V]``.

  Args:
    logits: ``[V]`` float32.
    legal: ``[V]`` bool tokens that may be written.
    key: PRNG key.
    temperature: softmax temperature; 0 plays greedily.
    top_k: if positive, sample among the k most likely legal tokens only.

  Returns:
    ``token []`` int32 and ``logprob []`` float32, the token's log-probability under the
    distribution it was drawn from (under the temperature-1 policy when greedy).
  """
  logits = jnp.where(widen(legal, logits.shape[-1]), logits.astype(jnp.float32), -jnp.inf)
  if top_k:
    kth = jax.lax.top_k(logits, top_k)[0][-1]
    logits = jnp.where(logits >= kth, logits, -jnp.inf)
  if temperature:
    logits = logits / temperature
  logp = jax.nn.log_softmax(logits)
  if temperature:
    # Inverse CDF: one uniform draw per token, where Gumbel-max would draw V of them.
    cdf = jnp.cumsum(jnp.exp(logp))
    token = jnp.sum(cdf <= jax.random.uniform(key) * cdf[-1])
  else:
    token = jnp.argmax(logp)
  return token.astype(jnp.int32), logp[token]


class ModelCarry(NamedTuple):
  cache: Cache  # [1, heads, T, head_dim] per layer (T: the game's), for one game.


@functools.cache
def model_player(model: Model, game: game_lib.Game, temperature: float = 1.0,
                 top_k: int = 0, seat: int | None = None) -> Player:
  """A transformer player of ``game`` in ``seat`` that samples from its logits under the
  game's legal mask.

  The model reads its view (``game_lib.view``): the seat's private text, then the shared
  transcript, never the other seat's private text. ``init`` reads the private text and
  the opening in one pass into the KV cache; every ``act`` writes the newest token into
  the cache and samples from the logits at its position. ``seat`` (1 or 2) is needed
  only by games with private text. The same arguments give the same player, so ``jit``
  reuses what it compiled for it.
  """
  private = game.private_length
  if private and seat not in (game_lib.ONE, game_lib.TWO):
    raise ValueError(f"{type(game).__name__} gives each seat private text: model_player "
                     f"needs seat=1 or 2, got {seat!r}")
  if private + game.max_length > model.config.max_length:
    raise ValueError(f"{type(game).__name__} views hold {private} private + {game.max_length} "
                     f"transcript tokens, more than the model's context "
                     f"max_length={model.config.max_length}")
  if model.config.outputs != game_lib.writable_mask().shape[0]:
    raise ValueError(f"the model's logits cover {model.config.outputs} tokens, the game's "
                     f"vocabulary {game_lib.writable_mask().shape[0]}: a model with a "
                     "vocabulary of its own plays through symbols (models.bridge)")

  def init(params, state, key):
    del key
    tokens = game_lib.view(game, state.tokens[:game.max_opening_length], state.hidden, seat)
    positions = jnp.arange(tokens.shape[0])[None]
    _, _, cache = model.apply(params, tokens[None], positions,
                              model.init_cache(1, private + game.max_length))
    return ModelCarry(cache)

  def act(params, carry, state, key):
    pos = jnp.maximum(state.length - 1, 0)
    logits, scalars, cache = model.apply(
        params, state.tokens[pos][None, None], (private + pos)[None, None], carry.cache)
    token, logprob = sample(logits[0, 0], game.legal_mask(state), key, temperature, top_k)
    value = jnp.float32(0.0) if scalars is None else scalars[0, 0]
    return Move(token, logprob, value), ModelCarry(cache)

  return Player(init, act, keyless_init=True)
