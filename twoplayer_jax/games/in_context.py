"""In-context learning: player one shows examples of a hidden rule, player two applies it.

Text (one line per turn, as ``vocab.render`` shows it), with 3 examples::

  one> cab>hfd;eed>ccg;bad>fhg;ace>⟨eot⟩
  two> hgc⟨eot⟩

The rule is a substitution over the first ``num_letters`` letters of the alphabet (a
permutation: each letter is always written as the same other or same letter). Player
one writes ``num_examples`` pairs ``input>output;`` of uniformly random words of
``word_length`` letters, then a query word and ``>``; player two answers with the
query's substitution. Chance writes player one's examples and query as the opening
(player one is the fixed "human" setting the task), so player two moves first in play;
the game ends when player two ends its turn, writes end-of-game or fills the transcript.

Payoff: (1, 1) when player two's turn is exactly the substituted query followed by
end-of-turn, else (0, 0). Cooperative. Hidden from player two: the rule (it must infer
it from the examples; query letters that no example shows can only be known from the
rules seen in training).

Prompted: with ``prompted``, player one writes the examples and the query itself, as its
first turn (the same text, ending in ``>`` and end-of-turn), and chance writes BOS only.
Player one reads the rule and the query from its private text, ``rule fhbdgace query c``
(the letters that ``a``, ``b``, ... are written as, then the query); seat two's private
text is as long, with ``?`` for every letter, so its view never depends on them. Its
prompt is its strategy: examples that show the query's letters let a player two that
copies answer right. The payoff checks player two's turn, the one after the first
end-of-turn, against the hidden query, whatever player one wrote.

Tasks: the family holds all ``num_letters!`` substitutions. A fixed bijection of the
family (an affine map modulo its size, set by ``task_seed``) splits it in two halves:
training task j is the family's rule ``scramble(2 j)`` and held-out task j is
``scramble(2 j + 1)``, so no evaluation task is ever a training task.
``split="train"`` draws among the first ``num_tasks`` training tasks (all of them when
``num_tasks`` is 0: unlimited), so smaller pools are nested in larger ones;
``split="eval"`` draws among all held-out tasks.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax import vocab
from twoplayer_jax.games import text

LETTER_A = ord("a")
MAX_LETTERS = 8  # 8! squared stays within int32 for the scramble's product.


def _coprime_step(family_size: int, num_letters: int) -> int:
  """A prime near the golden fraction of the family, which spreads consecutive tasks
  across it; primes above ``num_letters`` do not divide ``num_letters!``."""
  p = max(int(0.618 * family_size), num_letters + 1)
  while any(p % q == 0 for q in range(2, math.isqrt(p) + 1)):
    p += 1
  return p


@dataclasses.dataclass(frozen=True)
class InContext(game_lib.Game):
  """Infer a letter substitution from examples.

  Attributes:
    num_tasks: distinct training tasks drawn from (e.g. 4, 64, 4096); 0 for all of the
      training half of the family (unlimited). At most ``num_letters! // 2``.
    split: "train" (training tasks) or "eval" (held-out tasks, disjoint from them).
    num_examples: example pairs k before the query (0 allowed).
    word_length: letters per word.
    num_letters: alphabet size, 2 to 8.
    task_seed: chooses the bijection that orders and splits the family.
    answer_slack: tokens player two may write beyond the answer.
    prompted: player one writes the examples and the query (see the module).
    query_shown: the query is one of the examples' inputs, drawn uniformly among them:
      every game is then a lookup the examples answer (needs ``num_examples >= 1``).
  """
  num_tasks: int = 0
  split: str = "train"
  num_examples: int = 4
  word_length: int = 3
  num_letters: int = 8
  task_seed: int = 0
  answer_slack: int = 2
  prompted: bool = False
  query_shown: bool = False

  def __post_init__(self):
    if not 2 <= self.num_letters <= MAX_LETTERS:
      raise ValueError(f"num_letters must be in [2, {MAX_LETTERS}], got {self.num_letters}")
    if not 0 <= self.num_tasks <= self.family_size // 2:
      raise ValueError(f"num_tasks must be in [0, {self.family_size // 2}] (half of the "
                       f"{self.family_size} substitutions), got {self.num_tasks}")
    if self.split not in ("train", "eval"):
      raise ValueError(f"split must be 'train' or 'eval', got {self.split!r}")
    if self.num_examples < 0 or self.word_length < 1:
      raise ValueError(f"need num_examples >= 0 and word_length >= 1, got "
                       f"{self.num_examples} and {self.word_length}")
    if self.query_shown and not self.num_examples:
      raise ValueError("query_shown needs num_examples >= 1: the query is an example's input")

  @property
  def family_size(self) -> int:
    return math.factorial(self.num_letters)

  @property
  def prompt_length(self) -> int:
    """Tokens of the examples and the query, ``>`` included, end-of-turn not."""
    return self.num_examples * (2 * self.word_length + 2) + self.word_length + 1

  @property
  def max_opening_length(self) -> int:
    return 1 if self.prompted else 1 + self.prompt_length + 1

  @property
  def min_opening_length(self) -> int:
    return self.max_opening_length  # Every opening has the same length.

  @property
  def max_length(self) -> int:
    return 1 + self.prompt_length + 1 + self.word_length + 1 + self.answer_slack

  @property
  def private_length(self) -> int:
    return len("rule  query ") + self.num_letters + self.word_length if self.prompted else 0

  def private(self, hidden, seat) -> jax.Array:
    """Prompted: ``rule <letters> query <word>`` for seat one, with ``?`` for every letter
    for seat two; no text otherwise."""
    if not self.prompted:
      return super().private(hidden, seat)
    letters = LETTER_A + jnp.concatenate([hidden["rule"], hidden["query"]])
    shown = jnp.where(seat == game_lib.ONE, letters, ord("?"))
    m = self.num_letters
    return jnp.concatenate([text.literal("rule ")[0], shown[:m], text.literal(" query ")[0],
                            shown[m:]]).astype(jnp.int32)

  @property
  def max_turns(self) -> int:
    return 2

  def task_index(self, task: jax.Array, held_out: bool | jax.Array = False) -> jax.Array:
    """``[]`` family index of training (or held-out) task number ``task``."""
    f = self.family_size
    step = _coprime_step(f, self.num_letters)
    x = 2 * jnp.asarray(task, jnp.int32) + jnp.asarray(held_out, jnp.int32)
    offset = int(np.random.default_rng(self.task_seed).integers(f))
    return (step * x + offset) % f

  def rule(self, index: jax.Array) -> jax.Array:
    """``[num_letters]`` int32 substitution of family index ``index`` (its Lehmer code):
    letter i is written as letter ``rule[i]``."""
    m, free, out = self.num_letters, jnp.ones(self.num_letters, bool), []
    for i in range(m):
      digit = index // math.factorial(m - 1 - i) % (m - i)
      rank = jnp.cumsum(free) - 1
      choice = jnp.argmax(free & (rank == digit)).astype(jnp.int32)
      free = free.at[choice].set(False)
      out.append(choice)
    return jnp.stack(out)

  def opening(self, key: jax.Array) -> game_lib.GameState:
    k_task, k_words = jax.random.split(key)
    held_out = self.split == "eval"
    pool = self.num_tasks if self.num_tasks and not held_out else self.family_size // 2
    index = self.task_index(jax.random.randint(k_task, (), 0, pool), held_out)
    rule = self.rule(index)
    k, n = self.num_examples, self.word_length
    words = jax.random.randint(k_words, (k + 1, n), 0, self.num_letters, jnp.int32)
    if self.query_shown:  # A key of its own: the natural game's draws are unchanged.
      words = words.at[k].set(words[jax.random.randint(jax.random.fold_in(k_words, 1), (), 0, k)])
    hidden = {"task": index, "rule": rule, "query": words[k]}
    if self.prompted:
      return game_lib.new_state(self, jnp.array([vocab.BOS]), jnp.array([game_lib.CHANCE]),
                                1, to_move=game_lib.ONE, turn=0, hidden=hidden)
    tokens = jnp.concatenate([jnp.array([vocab.BOS]), prompt(rule, words[:k], words[k]),
                              jnp.array([vocab.EOT])]).astype(jnp.int32)
    owner = jnp.where(jnp.arange(tokens.shape[0]) == 0, game_lib.CHANCE, game_lib.ONE)
    length = jnp.int32(tokens.shape[0])
    return game_lib.new_state(self, tokens, owner, length, to_move=game_lib.TWO, turn=1,
                              hidden=hidden)

  def answer(self, hidden) -> tuple[jax.Array, jax.Array]:
    """The substituted query as a piece of text."""
    return LETTER_A + hidden["rule"][hidden["query"]], jnp.int32(self.word_length)

  def payoff(self, state: game_lib.GameState) -> jax.Array:
    start = text.turn_starts(state.tokens, state.length, 1)[1]  # After the prompt's turn.
    answer = text.concat(self.answer(state.hidden), text.token(vocab.EOT))
    correct = text.matches(state.tokens, start, answer) & (state.length >= start + answer[1])
    return jnp.where(correct, 1.0, 0.0) * jnp.ones(2)


def _answer_player(game: InContext, error_rate: float) -> players_lib.Player:
  """Player two that reads the rule from the hidden information (an oracle), and
  answers wrongly with probability ``error_rate``: one uniform letter of the answer
  is replaced by a uniform other letter. The answer is planned at the first token of the
  turn (``text.speaker``); that token's log-probability is the whole answer's."""
  n, m = game.word_length, game.num_letters

  def plan(state, key):
    k_err, k_pos, k_shift = jax.random.split(key, 3)
    wrong = jax.random.bernoulli(k_err, error_rate)
    at, shift = (jax.random.randint(k_pos, (), 0, n),
                 jnp.where(wrong, jax.random.randint(k_shift, (), 1, m), 0))
    letters, length = game.answer(state.hidden)
    letters = letters.at[at].set(LETTER_A + (letters[at] - LETTER_A + shift) % m)
    return letters, length, jnp.log(jnp.where(wrong, error_rate / (n * (m - 1)), 1 - error_rate))

  return text.speaker(game_lib.TWO, plan, n)


def expert(game: InContext) -> players_lib.Player:
  """The oracle demonstrator: player two that always answers with the hidden rule."""
  return _answer_player(game, 0.0)


def average(game: InContext, error_rate: float = 0.2) -> players_lib.Player:
  """Player two that answers wrongly with probability ``error_rate``."""
  return _answer_player(game, error_rate)


def copier(game: InContext) -> players_lib.Player:
  """The ideal in-context learner as player two: it reads the examples, not the rule.
  Each query letter that an example's input shows is written as that example's output
  shows it (the last such example); any other as a uniform letter among those no
  example's output takes (all letters when every one is taken). It reads the prompt at
  the layout ``human`` writes, so a malformed prompt misleads it as it would a model;
  it writes letters only."""
  k, n, m = game.num_examples, game.word_length, game.num_letters
  starts, query_at = positions(k, n)
  starts = starts.reshape(-1)  # [k n]

  def plan(state, key):
    inputs, outputs = state.tokens[starts], state.tokens[starts + n + 1]
    query = state.tokens[query_at]
    letter = lambda x: (x >= LETTER_A) & (x < LETTER_A + m)
    # [n, k n]: where each query letter is an example's input (with a letter for output);
    # the last one counts.
    shown = (inputs[None] == query[:, None]) & letter(query)[:, None] & letter(outputs)[None]
    copied = outputs[(k * n - 1) - jnp.argmax(shown[:, ::-1], axis=1)]
    letters = LETTER_A + jnp.arange(m)
    free = ~jnp.any(outputs[:, None] == letters, axis=0)  # [m] no output takes it
    free = jnp.where(free.any(), free, True)
    logits = jnp.where(free, 0.0, -jnp.inf)
    guesses = LETTER_A + jax.random.categorical(key, logits, shape=(n,))
    known = shown.any(axis=1)
    logp = jnp.sum(jnp.where(known, 0.0, -jnp.log(free.sum())))
    return jnp.where(known, copied, guesses).astype(jnp.int32), jnp.int32(n), logp

  return text.speaker(game_lib.TWO, plan, n)


def noisy(game: InContext) -> players_lib.Player:
  """Player two that writes ``word_length`` uniformly random letters of the alphabet."""
  m = game.num_letters

  def policy(carry, state, key):
    letter = LETTER_A + jax.random.randint(key, (), 0, m)
    ends = state.turn_length >= game.word_length
    return jnp.where(ends, vocab.EOT, letter), jnp.where(ends, 0.0, -jnp.log(m)), carry

  return players_lib.scripted(policy)


def prompt(rule: jax.Array, examples: jax.Array, query: jax.Array) -> jax.Array:
  """``[prompt_length]`` the text ``ab>cd;...;q>``: each of ``examples [k, wl]`` (letter
  indices) with its substitution by ``rule [num_letters]``, then ``query [wl]`` and ``>``."""
  k = examples.shape[0]
  shown = jnp.concatenate([LETTER_A + examples, jnp.full((k, 1), ord(">")),
                           LETTER_A + rule[examples], jnp.full((k, 1), ord(";"))], axis=1)
  return jnp.concatenate([shown.reshape(-1), LETTER_A + query,
                          jnp.array([ord(">")])]).astype(jnp.int32)


def positions(num_examples: int, word_length: int) -> tuple[np.ndarray, np.ndarray]:
  """Where ``prompt``'s text puts each letter, as transcript positions (the prompt
  follows BOS): the examples' inputs ``[k, wl]`` (each output ``wl + 1`` further on) and
  the query's ``[wl]``."""
  stride = 2 * word_length + 2
  inputs = 1 + np.arange(num_examples)[:, None] * stride + np.arange(word_length)
  return inputs, 1 + num_examples * stride + np.arange(word_length)


def _prompter(game: InContext, shows_query: bool) -> players_lib.Player:
  """Player one of the prompted game: uniformly random example words, the first of them
  the query itself when ``shows_query``; log-probability of the random words."""
  k, n, m = game.num_examples, game.word_length, game.num_letters

  def plan(state, key):
    words = jax.random.randint(key, (k, n), 0, m, jnp.int32)
    if shows_query and k:
      words = words.at[0].set(state.hidden["query"])
    drawn = k - (1 if shows_query and k else 0)
    return (prompt(state.hidden["rule"], words, state.hidden["query"]),
            jnp.int32(game.prompt_length), jnp.float32(-drawn * n * math.log(m)))

  return text.speaker(game_lib.ONE, plan, game.prompt_length)


def human(game: InContext) -> players_lib.Player:
  """Player one. Its examples and query are the opening (given the move again, it ends
  the game); in the prompted game it writes them, examples drawn as chance draws them."""
  if game.prompted:
    return _prompter(game, shows_query=False)
  return players_lib.scripted(lambda carry, state, key: (vocab.EOG, 0.0, carry))


def teacher(game: InContext) -> players_lib.Player:
  """Player one of the prompted game whose first example is the query itself (with its
  substitution): a player two that copies from the examples is then always right. In
  the game whose opening chance writes, it plays as ``human``."""
  return _prompter(game, shows_query=True) if game.prompted else human(game)


PLAYER_ONE = {"human": human, "teacher": teacher}
PLAYER_TWO = {"expert": expert, "average": average, "noisy": noisy, "copier": copier}
