"""The input pipeline: records of a built dataset as fixed-shape batches, deterministically.

Grain over a ``sources.Source`` (one element per record), or over games held in memory
(``InMemory``: one element per batch, for small datasets read for many epochs). Every
host shuffles all records with the same seed, reshuffled each epoch, and takes its own
share: the hosts' shares are disjoint and together cover each epoch. The iterator's
position is a small JSON-serializable dict, so a resumed run sees exactly the batches it
would have seen::

  ds = pipeline.turns(source, batch_size=32, seq_len=32, seed=0, roles=(2,))
  it = iter(ds)
  batch = next(it)          # a batches.Turns of NumPy arrays [batch_size, seq_len]
  state = it.get_state()    # into the checkpoint; after a restart, on a new iterator:
  it.set_state(state)       # continues at the same next batch
  batch = pipeline.to_global(batch, NamedSharding(mesh, P("data")))

Batches are the types the update steps read (``twoplayer_jax.batches``): ``Turns`` of
games or text, ``Pairs`` of preference pairs. Nothing renames a field on the way.
"""

import functools
import sys
from typing import Any, Sequence

import grain
import jax
import numpy as np

from twoplayer_jax import vocab
from twoplayer_jax.batches import Pairs, Turns
from twoplayer_jax.data import sources


def examples(source: sources.Source, *, seed: int, num_epochs: int | None = None,
             shuffle: bool = True, process_index: int | None = None,
             process_count: int | None = None) -> grain.MapDataset:
  """This host's share of the records, in a deterministic order.

  Args:
    source: a loaded split.
    seed: shuffling seed, the same on every host.
    num_epochs: passes over the data; None repeats forever.
    shuffle: whether to shuffle (each epoch in a different order).
    process_index: this host, ``jax.process_index()`` when None.
    process_count: hosts, ``jax.process_count()`` when None.

  Returns:
    Records; with ``num_epochs``, the same number on every host (the stream is cut
    to a multiple of ``process_count``).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
  if not len(source):
    raise ValueError(f"{source!r} holds no records")
  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(num_epochs)
  if num_epochs is not None:
    ds = ds[:len(ds) - len(ds) % process_count]
  return ds[process_index::process_count]


def pad_turns(record: dict[str, Any], seq_len: int, roles: tuple[int, ...],
              opening_loss: bool = False, prefix: str = "") -> dict[str, Any]:
  """One game record padded to ``seq_len`` tokens, with its loss weights.

  Args:
    record: fields ``{prefix}tokens``, ``{prefix}owner``, ``{prefix}reward`` and
      ``opening_length``, as the game builders write them.
    seq_len: length of every sequence; a longer game raises.
    roles: players whose tokens carry the loss, e.g. ``(2,)`` for SFT.
    opening_loss: whether the opening's tokens carry it too.
    prefix: ``""``, ``"chosen_"`` or ``"rejected_"``.

  Returns:
    The record with ``{prefix}tokens`` (PAD after the game) and ``{prefix}owner``
    ``[seq_len]`` int32, ``{prefix}reward [seq_len, 2]``, and new ``{prefix}positions``,
    ``{prefix}segments`` (1 on the game, 0 on padding) ``[seq_len]`` int32 and
    ``{prefix}weights [seq_len]`` bool (``batches.Turns``' fields).
  """
  tokens = record[prefix + "tokens"]
  n = len(tokens)
  if n > seq_len:
    raise ValueError(f"example {record['example_id']} has {n} tokens, more than "
                     f"seq_len={seq_len}; use a seq_len of at least the game's max_length")
  pos = np.arange(seq_len, dtype=np.int32)
  owner = np.pad(record[prefix + "owner"], (0, seq_len - n))
  start = 1 if opening_loss else max(int(record["opening_length"]), 1)
  return {**record,
          prefix + "tokens": np.pad(tokens, (0, seq_len - n), constant_values=vocab.PAD),
          prefix + "owner": owner,
          prefix + "reward": np.pad(record[prefix + "reward"], ((0, seq_len - n), (0, 0))),
          prefix + "positions": pos, prefix + "segments": (pos < n).astype(np.int32),
          prefix + "weights": np.isin(owner, roles) & (pos >= start) & (pos < n)}


def _turns_of(record: dict[str, Any]) -> Turns:
  return Turns(*(record[k] for k in Turns._fields))


def _pairs_of(record: dict[str, Any]) -> Pairs:
  side = lambda k: (record["chosen_" + k], record["rejected_" + k])
  return Pairs(*side("tokens"), *side("length"), *side("weights"))


def _batched(ds: grain.MapDataset, batch_size: int, num_threads: int) -> grain.IterDataset:
  # The threads read whole batches ahead: a few per thread are enough.
  return ds.batch(batch_size, drop_remainder=True).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2 * num_threads, 1)))


def turns(source: sources.Source, *, batch_size: int, seq_len: int, seed: int,
          roles: tuple[int, ...] = (2,), opening_loss: bool = False, num_epochs: int | None = None,
          shuffle: bool = True, process_index: int | None = None,
          process_count: int | None = None, num_threads: int = 4) -> grain.IterDataset:
  """Batches of ``game_transcripts`` records for cloning, one game a row.

  ``roles=(2,)`` clones player two (SFT); ``roles=(1, 2), opening_loss=True`` clones
  both players on the whole transcript (pre-training on games). The other arguments
  are ``examples``' and ``pad_turns``'; ``num_threads`` read in parallel.

  Returns:
    An iterable of ``Turns`` ``[batch_size, seq_len]``: tokens, weights, positions and
    segments as ``pad_turns`` makes them.
  """
  ds = examples(source, seed=seed, num_epochs=num_epochs, shuffle=shuffle,
                process_index=process_index, process_count=process_count)
  ds = ds.map(lambda r: _turns_of(pad_turns(r, seq_len, tuple(roles), opening_loss)))
  return _batched(ds, batch_size, num_threads)


def preferences(source: sources.Source, *, batch_size: int, seq_len: int, seed: int,
                roles: tuple[int, ...] = (2,), opening_loss: bool = False,
                num_epochs: int | None = None, shuffle: bool = True,
                process_index: int | None = None, process_count: int | None = None,
                num_threads: int = 4) -> grain.IterDataset:
  """Batches of ``game_preferences`` records for reward modelling and DPO.

  Returns:
    An iterable of ``Pairs``: ``chosen``, ``rejected`` and their weights (the tokens of
    ``roles``) ``[batch_size, seq_len]``, their lengths ``[batch_size]``.
  """
  ds = examples(source, seed=seed, num_epochs=num_epochs, shuffle=shuffle,
                process_index=process_index, process_count=process_count)

  def pair(record):
    for prefix in ("chosen_", "rejected_"):
      record = pad_turns(record, seq_len, tuple(roles), opening_loss, prefix)
    return _pairs_of(record)

  return _batched(ds.map(pair), batch_size, num_threads)


def pack(rows: Turns, seed: int) -> Turns:
  """One-game rows ``[N, T]`` (``pad_turns``' fields) packed several games to a row.

  The games, in an order drawn from ``seed``, fill rows of the same length ``T`` one
  after another, a game that does not fit starting the next row; each keeps its tokens,
  weights and positions, and its segment is its place in its row (1, 2, ...), so it
  attends only to itself. Fewer rows, the same games: on games much shorter than ``T``
  a step reads several times as many of them.

  Returns:
    ``Turns`` ``[R, T]``, ``R <= N``, PAD (weight 0, segment 0) after each row's games.
  """
  tokens, weights, positions, segments = map(np.asarray, rows)
  n, width = tokens.shape
  lengths = (segments > 0).sum(1)
  row, start, place = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int32)
  r, used, k = 0, 0, 0
  for g in np.random.default_rng(seed).permutation(n):
    if used + lengths[g] > width:
      r, used, k = r + 1, 0, 0
    row[g], start[g], place[g] = r, used, k + 1
    used, k = used + lengths[g], k + 1
  game, col = np.nonzero(segments > 0)
  at = (row[game], start[game] + col)
  out = lambda fill, dtype: np.full((r + 1, width), fill, dtype)
  packed = Turns(out(vocab.PAD, tokens.dtype), out(0, weights.dtype),
                 out(0, positions.dtype), out(0, segments.dtype))
  for dst, src in zip(packed, (tokens[game, col], weights[game, col], positions[game, col],
                               place[game])):
    dst[at] = src
  return packed


class InMemory:
  """The games of ``game_transcripts`` sources held in memory as ``Turns`` rows.

  Read once, at the first use of ``rows`` (so a finished stage that is only restored
  reads nothing, and the stages that share one ``InMemory`` share one read), each game
  padded by ``pad_turns`` (the tokens of ``roles``, and of the opening with
  ``opening_loss``, carry the loss), and with ``packed`` packed several to a row
  (``pack``, from ``seed``). Decoding a record in Python costs more than a small model's
  step spends on it, and a small dataset is read for many epochs: read it once and serve
  it with ``in_memory``.

  Args:
    parts: sources whose games are mixed in proportion to their sizes.
    seq_len: tokens per row.
  """

  def __init__(self, parts: Sequence[sources.Source], seq_len: int,
               roles: tuple[int, ...] = (2,), opening_loss: bool = False,
               packed: bool = False, seed: int = 0):
    self.parts, self.seq_len = list(parts), seq_len
    self.roles, self.opening_loss, self.packed, self.seed = tuple(roles), opening_loss, packed, seed

  @functools.cached_property
  def rows(self) -> Turns:
    """``Turns`` ``[N, seq_len]``, every field set."""
    games = [_turns_of(pad_turns(r, self.seq_len, self.roles, self.opening_loss))
             for part in self.parts for r in part.__getitems__(list(range(len(part))))]
    if not games:
      raise ValueError("no games to train on: the sources are empty")
    rows = Turns(*map(np.stack, zip(*games)))
    return pack(rows, self.seed) if self.packed else rows


def in_memory(games: InMemory, *, batch_size: int, seed: int,
              process_index: int | None = None, process_count: int | None = None,
              num_threads: int = 0) -> grain.IterDataset:
  """Endless batches of ``games``' rows, each epoch in a new order drawn from ``seed``.

  One Grain element is a whole batch (a gather from the rows), not a row: a per-row
  element costs more than a small model's step (measured: 20k batches of 96 a second
  with ``num_threads=0``, 7.5k with a reading thread, against 4-16 with one element a
  row). Each host takes its ``batch_size`` rows of every global batch of ``batch_size *
  process_count`` (``examples``' arguments).

  Returns:
    An iterable of ``Turns`` ``[batch_size, seq_len]``.
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
  per_batch = batch_size * process_count

  @functools.lru_cache(maxsize=2)
  def order(epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(len(games.rows.tokens))

  def batch(index: int) -> Turns:
    rows = games.rows
    first = index * per_batch + process_index * batch_size
    epoch, offset = np.divmod(first + np.arange(batch_size), len(rows.tokens))
    chosen = np.empty(batch_size, np.int64)
    for e in np.unique(epoch):
      chosen[epoch == e] = order(int(e))[offset[epoch == e]]
    return jax.tree.map(lambda x: x[chosen], rows)

  return grain.MapDataset.range(sys.maxsize).map(batch).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads))


def _with_bos(record: dict[str, Any]) -> dict[str, np.ndarray]:
  return {"tokens": np.concatenate([[vocab.BOS], record["tokens"]]).astype(np.int32)}


def _packed(element: dict[str, np.ndarray]) -> Turns:
  segments = element["tokens_segment_ids"].astype(np.int32)
  positions = element["tokens_positions"].astype(np.int32)
  weights = segments > 0
  weights[0] = False  # Nothing before it in the sequence to predict it from.
  return Turns(np.where(segments > 0, element["tokens"], vocab.PAD).astype(np.int32),
               weights & (positions > 0), positions, segments)


def text(source: sources.Source, *, batch_size: int, seq_len: int, seed: int,
         num_epochs: int | None = None, shuffle: bool = True, process_index: int | None = None,
         process_count: int | None = None, num_threads: int = 4) -> grain.IterDataset:
  """Batches of ``text_corpus`` records packed into full sequences, for pre-training.

  Each document starts with BOS; documents are concatenated and cut into sequences of
  ``seq_len`` tokens. A document that does not fit continues in a later sequence, its
  positions there starting again at 0 (a sequence is all the model attends to).

  Returns:
    An iterable of ``Turns`` ``[batch_size, seq_len]``: ``tokens``, ``weights`` (False
    on BOS and padding), ``positions`` (within the document), ``segments`` (1, 2, ...
    per document in the sequence, 0 on padding).
  """
  ds = examples(source, seed=seed, num_epochs=num_epochs, shuffle=shuffle,
                process_index=process_index, process_count=process_count)
  ds = ds.map(_with_bos)
  packed = grain.experimental.ConcatThenSplitIterDataset(
      ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads)),
      length_struct={"tokens": seq_len})
  return packed.map(_packed).batch(batch_size, drop_remainder=True)


def to_global(batch: Any, sharding: jax.sharding.Sharding) -> Any:
  """One global ``jax.Array`` per field from every host's local batch.

  Args:
    batch: this host's batch, a pytree of ``[local_batch, ...]`` arrays.
    sharding: where the global batch lives, e.g. ``NamedSharding(mesh, P("data"))``;
      the global batch is the hosts' local batches stacked in process order.
  """
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
