"""The two-player token game G = <N, S, Z, A, P, T, r> that every other part speaks.

A state is the transcript written so far plus the game's hidden information. An action
is one token of the shared vocabulary, written by the player to move; ``step`` appends
it (T), hands the move over on end-of-turn (P), ends the game on end-of-game or a limit
(Z) and pays each player its reward for the step (r). A concrete game is a frozen
dataclass that subclasses ``Game`` and supplies its opening (chance), its payoff and its
limits; everything here is pure, shape-static and works under ``jit``, ``vmap`` and
``lax.scan``. Functions act on one game; ``jax.vmap`` them for a batch.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from twoplayer_jax import vocab

CHANCE, ONE, TWO = 0, 1, 2
FORFEIT = -1.0  # Reward of a player that writes a token no player may write (PAD, BOS).


class GameState(NamedTuple):
  """One game in progress. Shapes are for a single game; a batch adds a leading axis.

  Attributes:
    tokens: ``[T]`` int32 transcript, PAD after ``length``.
    owner: ``[T]`` int32 author of each token: 0 chance, 1 player one, 2 player two.
    length: ``[]`` int32 number of tokens written.
    opening_length: ``[]`` int32 tokens the opening wrote (play starts after them).
    to_move: ``[]`` int32 player to move, 1 or 2.
    turn: ``[]`` int32 number of turns closed by end-of-turn (the opening's included).
    turn_length: ``[]`` int32 tokens written in the current turn.
    done: ``[]`` bool whether the game has ended.
    returns: ``[2]`` float32 rewards summed so far, player one's first.
    hidden: the game's hidden information (a pytree of arrays).
  """
  tokens: jax.Array
  owner: jax.Array
  length: jax.Array
  opening_length: jax.Array
  to_move: jax.Array
  turn: jax.Array
  turn_length: jax.Array
  done: jax.Array
  returns: jax.Array
  hidden: Any


class Trajectory(NamedTuple):
  """A batch of finished games with what the players recorded while playing them.

  Attributes:
    tokens: ``[B, T]`` int32 transcripts.
    owner: ``[B, T]`` int32 author of each token (0 chance, 1 player one, 2 player two).
    logprob: ``[B, T]`` float32 log-probability of each token under its author's
      sampling policy; 0 in the opening.
    value: ``[B, T]`` float32 the author's value estimate of the state in which it wrote
      the token (scalar head of a model player; 0 for scripted players).
    reward: ``[B, T, 2]`` float32 each player's reward for the step writing the token.
    opening_length: ``[B]`` int32 tokens written before play started.
    length: ``[B]`` int32 tokens written in all.
    returns: ``[B, 2]`` float32 total reward of each player.
    hidden: the games' hidden information, with a leading batch axis.
    legal: ``[B, T, V]`` bool the legal mask each token was written under, recorded when
      the game ``restricts_moves`` (else None: every writable token was legal).
  """
  tokens: jax.Array
  owner: jax.Array
  logprob: jax.Array
  value: jax.Array
  reward: jax.Array
  opening_length: jax.Array
  length: jax.Array
  returns: jax.Array
  hidden: Any
  legal: jax.Array | None = None

  @property
  def played(self) -> jax.Array:
    """``[B, T]`` bool: tokens written by the players after the opening."""
    pos = jnp.arange(self.tokens.shape[-1])
    return (pos >= self.opening_length[..., None]) & (pos < self.length[..., None])


class Game:
  """Rules shared by every game. A game is a frozen dataclass of its settings (hashable,
  so a static argument of ``jit``) that subclasses this one and supplies ``opening``,
  ``payoff`` and three limits:

    max_length: transcript capacity T; the game ends when it is full.
    max_turns: the game ends when this many turns have been closed.
    max_opening_length: longest opening ``opening`` writes; model players read the
      opening in one pass of this many tokens.

  ``min_opening_length`` bounds every opening from below (1, its BOS, unless the game
  knows better): the continuations of one opening share that many tokens, and training
  reads them once per group.

  Private information. ``private(hidden, seat)`` is the text only ``seat`` reads (its
  cards, its values): ``private_length`` tokens, fixed by the game (0 by default: no
  private text). A model player of a seat reads its private text, then the shared
  transcript, and never the other seat's private text; the training pass reads the same
  view (``view``). Scripted players see the state through ``seen_by``.

  Restricted moves. A game whose ``legal_mask`` forbids some writable tokens (the
  actions of a card game) sets ``restricts_moves``: play then records each step's mask,
  and training normalises the policy over the same legal tokens that play sampled from.
  """
  max_length: int
  max_turns: int
  max_opening_length: int
  private_length: int = 0
  restricts_moves: bool = False

  @property
  def min_opening_length(self) -> int:
    """Shortest opening ``opening`` writes (a lower bound; at least BOS)."""
    return 1

  def opening(self, key: jax.Array) -> GameState:
    """Chance's move: samples hidden information and writes the opening."""
    raise NotImplementedError

  def payoff(self, state: GameState) -> jax.Array:
    """``[2]`` float32 payoff of a finished game, any transcript whatsoever."""
    raise NotImplementedError

  def reward(self, state: GameState, next_state: GameState) -> jax.Array:
    """``[2]`` reward for the step from ``state`` to ``next_state``: the payoff at the end.

    Games that pay during play (per-turn rewards) override this.
    """
    ended = next_state.done & ~state.done
    return jnp.where(ended, self.payoff(next_state), 0.0)

  def decided(self, state: GameState) -> jax.Array:
    """Whether the game's task is decided before any limit (e.g. a correct guess)."""
    del state
    return jnp.bool_(False)

  def legal_mask(self, state: GameState) -> jax.Array:
    """``[V]`` bool tokens the mover may write.

    Language games forbid no written token: a malformed move is scored by the payoff.
    A game that forbids some sets ``restricts_moves`` (see above).
    """
    del state
    return writable_mask()

  def private(self, hidden: Any, seat: int | jax.Array) -> jax.Array:
    """``[private_length]`` int32 text that only ``seat`` (1 or 2) reads, from the game's
    hidden information; none by default."""
    del hidden, seat
    return jnp.zeros((0,), jnp.int32)


def writable_mask() -> jax.Array:
  """``[V]`` bool: every byte, end-of-turn and end-of-game; never PAD or BOS."""
  return jnp.asarray(vocab.writable())


def view(game: Game, tokens: jax.Array, hidden: Any, seat: int | jax.Array) -> jax.Array:
  """``[..., P + T]`` what a model in ``seat`` reads: its private text (``P`` =
  ``game.private_length`` tokens), then the transcript ``tokens [..., T]``.

  ``hidden`` has the leading axes of ``tokens`` (e.g. ``[B]`` for a batch); transcript
  token t sits at position ``P + t`` of the view.
  """
  if not game.private_length:
    return tokens
  private = game.private
  for _ in range(tokens.ndim - 1):
    private = jax.vmap(private, in_axes=(0, None))
  return jnp.concatenate([private(hidden, seat).astype(jnp.int32), tokens], axis=-1)


def seen_by(state: GameState, seat: int) -> GameState:
  """``state`` as seat ``seat``'s scripted players see it: the other seat's hidden
  information removed. Games keep what only one seat may know under ``hidden["one"]`` or
  ``hidden["two"]``; reading the other seat's key then fails when the player is traced."""
  if not isinstance(state.hidden, dict):
    return state
  other = "two" if seat == ONE else "one"
  return state._replace(hidden={k: v for k, v in state.hidden.items() if k != other})


def new_state(game: Game, tokens: jax.Array, owner: jax.Array, length: jax.Array,
              to_move, turn, hidden: Any) -> GameState:
  """A game state holding an opening; for a game's ``opening``.

  Args:
    game: the game, for its capacity.
    tokens: ``[max_opening_length]`` opening tokens, PAD after ``length``.
    owner: ``[max_opening_length]`` author of each opening token.
    length: ``[]`` opening length.
    to_move: the player to move first.
    turn: turns the opening has closed.
    hidden: the game's hidden information.
  """
  if tokens.shape != (game.max_opening_length,) or owner.shape != tokens.shape:
    raise ValueError(f"opening tokens {tokens.shape} and owner {owner.shape} must both have "
                     f"shape ({game.max_opening_length},) (max_opening_length)")
  pad = game.max_length - game.max_opening_length
  return GameState(
      tokens=jnp.pad(tokens.astype(jnp.int32), (0, pad), constant_values=vocab.PAD),
      owner=jnp.pad(owner.astype(jnp.int32), (0, pad)),
      length=jnp.asarray(length, jnp.int32),
      opening_length=jnp.asarray(length, jnp.int32),
      to_move=jnp.asarray(to_move, jnp.int32),
      turn=jnp.asarray(turn, jnp.int32),
      turn_length=jnp.int32(0),
      done=jnp.bool_(False),
      returns=jnp.zeros(2, jnp.float32),
      hidden=hidden)


def init(game: Game, key: jax.Array) -> GameState:
  """A new game: chance writes the opening."""
  state = game.opening(key)
  if state.tokens.shape != (game.max_length,):
    raise ValueError(f"{type(game).__name__}.opening wrote tokens {state.tokens.shape}, "
                     f"expected ({game.max_length},) (max_length); build it with new_state")
  return state


def step(game: Game, state: GameState, token: jax.Array) -> tuple[GameState, jax.Array]:
  """The mover writes ``token``. A finished game is left as it is.

  Args:
    game: the rules.
    state: a single game.
    token: ``[]`` int token id. PAD, BOS or a token outside the vocabulary forfeits
      the game: it ends and the mover receives ``FORFEIT``.

  Returns:
    The next state and ``[2]`` float32 rewards of this step.
  """
  token = jnp.asarray(token, jnp.int32)
  if token.shape != ():
    raise ValueError(f"step takes one token per game, got shape {token.shape}; vmap for a batch")
  live = ~state.done
  pos = jnp.where(live, state.length, game.max_length)  # Out of bounds: dropped.
  writable = (token >= 0) & (token < vocab.VOCAB_SIZE) & (token != vocab.PAD) & (token != vocab.BOS)
  ends_turn = live & (token == vocab.EOT)
  length = state.length + live
  turn = state.turn + ends_turn
  written = state._replace(
      tokens=state.tokens.at[pos].set(jnp.where(writable, token, vocab.PAD), mode="drop"),
      owner=state.owner.at[pos].set(state.to_move, mode="drop"),
      length=length,
      to_move=jnp.where(ends_turn, 3 - state.to_move, state.to_move),
      turn=turn,
      turn_length=jnp.where(ends_turn, 0, state.turn_length + live))
  done = state.done | (live & (
      (token == vocab.EOG) | ~writable | (turn >= game.max_turns) | (length >= game.max_length)))
  written = written._replace(done=done)
  done = done | (live & game.decided(written))
  next_state = written._replace(done=done)
  forfeit = live & ~writable
  reward = jnp.where(
      forfeit, jnp.where(jnp.arange(2) == state.to_move - 1, FORFEIT, 0.0),
      game.reward(state, next_state)).astype(jnp.float32)
  return next_state._replace(returns=state.returns + reward), reward


def role_mask(owner: jax.Array, role: int | tuple[int, ...]) -> jax.Array:
  """Bool mask of the tokens written by ``role`` (1, 2, or a tuple such as (1, 2))."""
  roles = (role,) if isinstance(role, int) else tuple(role)
  if not roles or any(r not in (ONE, TWO) for r in roles):
    raise ValueError(f"role must be 1, 2 or a tuple of them, got {role!r}")
  return jnp.isin(owner, jnp.array(roles))
