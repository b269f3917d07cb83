"""The input pipeline: records of a built dataset as fixed-shape batches, deterministically.

Grain over a ``sources.Source``. Every host shuffles all records with the same seed,
reshuffled each epoch, and takes every ``process_count``-th of the shuffled stream from
its ``process_index``: the hosts' shares are disjoint and together cover each epoch.
The iterator's position is a small JSON-serializable dict, so a resumed run sees exactly
the batches it would have seen::

  ds = pipeline.turns(source, batch_size=32, seq_len=32, seed=0, roles=(2,))
  it = iter(ds)
  batch = next(it)          # dict of NumPy arrays, [batch_size, seq_len] per token
  state = it.get_state()    # into the checkpoint; after a restart, on a new iterator:
  it.set_state(state)       # continues at the same next batch
  batch = pipeline.to_global(batch, NamedSharding(mesh, P("data")))

Per-token fields (``tokens``, ``owner``, ``positions``, ``segment_ids``,
``loss_mask``) follow one convention: ``loss_mask[t]`` says whether predicting
``tokens[t]`` from the tokens before it counts, so position 0 never does.
"""

import functools
from typing import Any

import grain
import jax
import numpy as np

from twoplayer_jax import vocab
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
  """One game record padded to ``seq_len`` tokens, with its loss mask.

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
    ``{prefix}segment_ids`` (1 on the game, 0 on padding) ``[seq_len]`` int32 and
    ``{prefix}loss_mask [seq_len]`` bool.
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
          prefix + "positions": pos, prefix + "segment_ids": (pos < n).astype(np.int32),
          prefix + "loss_mask": np.isin(owner, roles) & (pos >= start) & (pos < n)}


def _pad_pair(record, seq_len, roles, opening_loss):
  for prefix in ("chosen_", "rejected_"):
    record = pad_turns(record, seq_len, roles, opening_loss, prefix)
  return record


def _batched(ds: grain.MapDataset, batch_size: int, num_threads: int) -> grain.IterDataset:
  # The threads read whole batches ahead: a few per thread are enough.
  return ds.batch(batch_size, drop_remainder=True).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2 * num_threads, 1)))


def turns(source: sources.Source, *, batch_size: int, seq_len: int, seed: int,
          roles: tuple[int, ...] = (2,), opening_loss: bool = False, num_epochs: int | None = None,
          shuffle: bool = True, process_index: int | None = None,
          process_count: int | None = None, num_threads: int = 4) -> grain.IterDataset:
  """Batches of ``game_transcripts`` records for cloning or policy learning.

  ``roles=(2,)`` clones player two (SFT); ``roles=(1, 2), opening_loss=True`` clones
  both players on the whole transcript (pre-training on games). The other arguments
  are ``examples``' and ``pad_turns``'; ``num_threads`` read in parallel.

  Returns:
    An iterable of dicts: ``pad_turns``' fields ``[batch_size, seq_len]`` (``reward``
    ``[batch_size, seq_len, 2]``) and the records' others (``payoff [batch_size, 2]``,
    ``opening_length``, ``length``, ``player_two``, ``example_id``, ``hidden``).
  """
  ds = examples(source, seed=seed, num_epochs=num_epochs, shuffle=shuffle,
                process_index=process_index, process_count=process_count)
  ds = ds.map(functools.partial(pad_turns, seq_len=seq_len, roles=tuple(roles),
                                opening_loss=opening_loss))
  return _batched(ds, batch_size, num_threads)


def preferences(source: sources.Source, *, batch_size: int, seq_len: int, seed: int,
                roles: tuple[int, ...] = (2,), opening_loss: bool = False,
                num_epochs: int | None = None, shuffle: bool = True,
                process_index: int | None = None, process_count: int | None = None,
                num_threads: int = 4) -> grain.IterDataset:
  """Batches of ``game_preferences`` records for reward modelling and DPO.

  Returns:
    An iterable of dicts: ``chosen_*`` and ``rejected_*`` fields as ``turns`` gives
    them, and ``opening_length``, ``example_id``, ``hidden``.
  """
  ds = examples(source, seed=seed, num_epochs=num_epochs, shuffle=shuffle,
                process_index=process_index, process_count=process_count)
  ds = ds.map(functools.partial(_pad_pair, seq_len=seq_len, roles=tuple(roles),
                                opening_loss=opening_loss))
  return _batched(ds, batch_size, num_threads)


def _with_bos(record: dict[str, Any]) -> dict[str, np.ndarray]:
  return {"tokens": np.concatenate([[vocab.BOS], record["tokens"]]).astype(np.int32)}


def _packed(element: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  segment_ids = element["tokens_segment_ids"].astype(np.int32)
  loss_mask = segment_ids > 0
  loss_mask[0] = False  # Nothing before it in the sequence to predict it from.
  return {"tokens": np.where(segment_ids > 0, element["tokens"], vocab.PAD).astype(np.int32),
          "positions": element["tokens_positions"].astype(np.int32),
          "segment_ids": segment_ids, "loss_mask": loss_mask & (element["tokens_positions"] > 0)}


def text(source: sources.Source, *, batch_size: int, seq_len: int, seed: int,
         num_epochs: int | None = None, shuffle: bool = True, process_index: int | None = None,
         process_count: int | None = None, num_threads: int = 4) -> grain.IterDataset:
  """Batches of ``text_corpus`` records packed into full sequences, for pre-training.

  Each document starts with BOS; documents are concatenated and cut into sequences of
  ``seq_len`` tokens. A document that does not fit continues in a later sequence, its
  positions there starting again at 0 (a sequence is all the model attends to).

  Returns:
    An iterable of dicts of ``[batch_size, seq_len]`` arrays: ``tokens``,
    ``positions`` (within the document), ``segment_ids`` (1, 2, ... per document in
    the sequence, 0 on padding), ``loss_mask`` (False on BOS and padding).
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
