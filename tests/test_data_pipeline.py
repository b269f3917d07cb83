"""The input pipeline: shuffling, host shares, padding, packing, resuming, global arrays."""

import itertools
import json

import jax
import numpy as np
import pytest

from twoplayer_jax import batches, vocab
from twoplayer_jax import game as game_lib
from twoplayer_jax.data import build, corpus, pipeline, sources

NAME = "game_transcripts/arithmetic_mixture"
TEXTS = [b"first document, long enough to be split over two sequences \xff\xfe.",
         b"second", b"third \xc3\xa9 text", b"fourth: a fourth one"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("data")
  build.build(NAME, str(root), num_examples=96, seed=3, batch_size=64)
  build.build("game_preferences/arithmetic_mixture", str(root), num_examples=16, batch_size=64)
  texts = root / "texts"
  texts.mkdir()
  for i, text in enumerate(TEXTS):
    (texts / f"{i}.txt").write_bytes(text)
  corpus.TextCorpus(data_dir=str(root), corpus=[str(texts)]).download_and_prepare()
  return str(root)


@pytest.fixture(scope="module")
def source(data_dir):
  return sources.load(NAME, "train", data_dir)


def test_shuffling_is_deterministic_per_seed_and_differs_per_epoch(source):
  order = [int(r["example_id"]) for r in pipeline.examples(source, seed=1, num_epochs=2,
                                                           process_index=0, process_count=1)]
  again = [int(r["example_id"]) for r in pipeline.examples(source, seed=1, num_epochs=2,
                                                           process_index=0, process_count=1)]
  other = [int(r["example_id"]) for r in pipeline.examples(source, seed=2, num_epochs=1,
                                                           process_index=0, process_count=1)]
  assert order == again and order[:96] != other
  assert sorted(order[:96]) == sorted(order[96:]) == list(range(96))
  assert order[:96] != order[96:]


@pytest.mark.parametrize("process_count", [2, 3, 5])
def test_host_shares_are_disjoint_and_cover_each_epoch(source, process_count):
  shares = [[int(r["example_id"]) for r in pipeline.examples(
      source, seed=7, num_epochs=1, process_index=h, process_count=process_count)]
      for h in range(process_count)]
  assert len({len(s) for s in shares}) == 1  # Every host runs the same number of steps.
  seen = [i for s in shares for i in s]
  assert len(seen) == len(set(seen))  # Disjoint.
  # Covering: everything but the remainder that does not fill a row on every host.
  assert len(seen) == 96 - 96 % process_count and set(seen) <= set(range(96))
  batches = [list(pipeline.turns(source, batch_size=4, seq_len=24, seed=7, num_epochs=1,
                                 process_index=h, process_count=process_count, num_threads=1))
             for h in range(process_count)]
  assert len({len(b) for b in batches}) == 1
  with pytest.raises(ValueError, match="process_index 3 is not in"):
    pipeline.examples(source, seed=0, process_index=3, process_count=3)


def test_turns_are_padded_with_the_weights_of_the_learning_player(source):
  records = list(pipeline.examples(source, seed=0, shuffle=False, num_epochs=1))[:8]
  batch = next(iter(pipeline.turns(source, batch_size=8, seq_len=24, seed=0, roles=(2,),
                                   shuffle=False)))
  assert isinstance(batch, batches.Turns)
  for field in batch:
    assert field.shape == (8, 24)
  length = np.array([r["length"] for r in records])[:, None]
  owner = np.stack([np.pad(r["owner"], (0, 24 - len(r["owner"]))) for r in records])
  opening = np.array([r["opening_length"] for r in records])[:, None]
  pos = np.arange(24)
  written = pos < length
  np.testing.assert_array_equal(batch.segments, written)
  np.testing.assert_array_equal(batch.positions, np.broadcast_to(pos, (8, 24)))
  assert (batch.tokens[~written] == vocab.PAD).all()
  assert (batch.tokens[written] != vocab.PAD).all()
  played = written & (pos >= opening)
  np.testing.assert_array_equal(batch.weights, played & (owner == game_lib.TWO))
  both = next(iter(pipeline.turns(source, batch_size=8, seq_len=24, seed=0, roles=(1, 2),
                                  opening_loss=True, shuffle=False)))
  np.testing.assert_array_equal(both.weights, written & (owner > 0) & (pos > 0))
  with pytest.raises(ValueError, match="more than seq_len=8"):
    next(iter(pipeline.turns(source, batch_size=8, seq_len=8, seed=0, num_threads=0)))


def test_preference_batches_pad_both_continuations(data_dir):
  prefs = sources.load("game_preferences/arithmetic_mixture", "train", data_dir)
  records = list(pipeline.examples(prefs, seed=0, shuffle=False, num_epochs=1))[:4]
  batch = next(iter(pipeline.preferences(prefs, batch_size=4, seq_len=24, seed=0,
                                         shuffle=False)))
  assert isinstance(batch, batches.Pairs) and batch.ref_chosen is None
  for side in ("chosen", "rejected"):
    tokens, weights = getattr(batch, side), getattr(batch, side + "_weights")
    assert tokens.shape == weights.shape == (4, 24)
    np.testing.assert_array_equal(getattr(batch, side + "_length"),
                                  [r[side + "_length"] for r in records])
    owner = np.stack([np.pad(r[side + "_owner"], (0, 24 - len(r[side + "_owner"])))
                      for r in records])
    assert weights.any() and (owner[weights] == game_lib.TWO).all()


def test_iterator_resumes_at_the_same_batch_across_epochs(source):
  make = lambda: pipeline.turns(source, batch_size=16, seq_len=24, seed=5, num_threads=2)
  it = iter(make())
  for _ in range(5):  # Into the second epoch (6 batches per epoch).
    next(it)
  state = json.loads(json.dumps(it.get_state()))  # As a checkpoint stores it.
  expected = [next(it) for _ in range(4)]
  resumed = iter(make())
  resumed.set_state(state)
  for want, got in zip(expected, [next(resumed) for _ in range(4)]):
    jax.tree.map(np.testing.assert_array_equal, want, got)


def test_text_is_packed_into_full_sequences_and_resumes(data_dir):
  text = sources.load("text_corpus", "train", data_dir)
  make = lambda: pipeline.text(text, batch_size=2, seq_len=32, seed=0, num_threads=1)
  it = iter(make())
  batches = [next(it) for _ in range(3)]
  batch = batches[0]
  for field in batch:
    assert field.shape == (2, 32)
  bos = batch.tokens == vocab.BOS
  np.testing.assert_array_equal(batch.positions[bos], 0)
  assert not batch.weights[bos].any() and not batch.weights[:, 0].any()
  # The documents, read back from the packed stream, are the corpus texts.
  stream = np.concatenate([b.tokens.reshape(-1) for b in batches])
  docs = [vocab.to_bytes(d) for d in np.split(stream, np.flatnonzero(stream == vocab.BOS))[1:]]
  assert set(docs[:4]) == set(TEXTS)
  state = json.loads(json.dumps(it.get_state()))
  expected = [next(it) for _ in range(3)]
  resumed = iter(make())
  resumed.set_state(state)
  for want, got in zip(expected, [next(resumed) for _ in range(3)]):
    jax.tree.map(np.testing.assert_array_equal, want, got)


def test_global_batch_is_placed_on_the_mesh(source):
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  local = next(iter(pipeline.turns(source, batch_size=8 * jax.device_count(), seq_len=24, seed=0)))
  batch = pipeline.to_global(local, sharding)
  assert batch.tokens.shape == local.tokens.shape and batch.tokens.sharding == sharding
  jax.tree.map(np.testing.assert_array_equal, batch, local)


class Part(list):
  """A data source of game records held in a list."""

  def __getitems__(self, indices):
    return [self[i] for i in indices]


def record(i, length=4):
  """Game ``i``: BOS, player one's token, then player two's ``length - 2`` tokens."""
  return {"tokens": np.full(length, 10 + i, np.int32), "owner": np.array([0, 1] + [2] * (
      length - 2), np.int32), "reward": np.zeros((length, 2), np.float32),
          "opening_length": 2, "example_id": i}


def test_games_in_memory_serve_every_record_each_epoch_and_resume():
  games = pipeline.InMemory([Part([record(0), record(1, 5)]), Part(record(i) for i in range(2, 6))],
                            seq_len=6)
  it = iter(pipeline.in_memory(games, batch_size=3, seed=0))
  epochs = [np.concatenate([next(it).tokens[:, 0] for _ in range(2)]) for _ in range(3)]
  for epoch in epochs:
    assert sorted(epoch) == list(range(10, 16))
  assert any(list(a) != list(b) for a, b in zip(epochs, epochs[1:]))
  state = json.loads(json.dumps(it.get_state()))
  batch = next(it)
  assert isinstance(batch, batches.Turns) and batch.tokens.shape == batch.weights.shape == (3, 6)
  np.testing.assert_array_equal(batch.weights[:, :2], False)
  np.testing.assert_array_equal(batch.weights.sum(1), 2 + (batch.tokens[:, 0] == 11))
  resumed = iter(pipeline.in_memory(games, batch_size=3, seed=0))
  resumed.set_state(state)
  jax.tree.map(np.testing.assert_array_equal, next(resumed), batch)


def test_games_in_memory_are_read_once_and_only_when_served():
  part = Part(record(i) for i in range(5))
  reads = []
  part.__getitems__ = lambda indices: reads.append(indices) or [part[i] for i in indices]
  games = pipeline.InMemory([part], seq_len=6)
  first, second = (iter(pipeline.in_memory(games, batch_size=2, seed=1)) for _ in range(2))
  assert not reads  # A stage that is only restored reads nothing.
  a, b = next(first), next(second)
  assert len(reads) == 1  # Both streams served from one read, each from its own position.
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert first.get_state() == second.get_state()


@pytest.mark.parametrize("process_count", [2, 3])
def test_hosts_take_disjoint_rows_of_each_global_batch_in_memory(process_count):
  games = pipeline.InMemory([Part(record(i) for i in range(12))], seq_len=6)
  ids = lambda h: np.concatenate([b.tokens[:, 0] for b in itertools.islice(
      pipeline.in_memory(games, batch_size=2, seed=3, process_index=h,
                         process_count=process_count), 12 // (2 * process_count))])
  shares = [ids(h) for h in range(process_count)]
  seen = np.concatenate(shares)
  assert sorted(seen) == list(range(10, 22))  # One epoch, disjoint and covering.
  one = next(iter(pipeline.in_memory(games, batch_size=2 * process_count, seed=3,
                                     process_index=0, process_count=1)))
  np.testing.assert_array_equal(np.concatenate([s[:2] for s in shares]), one.tokens[:, 0])


def test_games_clone_the_roles_asked_and_the_opening_with_opening_loss():
  games = pipeline.InMemory([Part([record(0, 5)])], seq_len=6, roles=(1, 2), opening_loss=True)
  weights = next(iter(pipeline.in_memory(games, batch_size=1, seed=0))).weights[0]
  # Nothing predicts BOS; the rest of the game carries the loss, the padding does not.
  np.testing.assert_array_equal(weights, [False, True, True, True, True, False])


def test_packing_keeps_every_game_whole_and_fills_rows():
  lengths = [5, 3, 7, 2, 4, 6, 3]
  parts = [Part(record(i, n) for i, n in enumerate(lengths))]
  rows = pipeline.InMemory(parts, seq_len=8).rows
  packed = pipeline.InMemory(parts, seq_len=8, packed=True, seed=4).rows
  assert packed.tokens.shape[1] == 8 and len(packed.tokens) < len(lengths)
  assert (packed.segments > 0).sum() == sum(lengths)
  games = []
  for r in range(len(packed.tokens)):
    for k in range(1, packed.segments[r].max() + 1):
      game = packed.segments[r] == k
      first = np.argmax(game)
      assert np.flatnonzero(game).tolist() == list(range(first, first + game.sum()))
      i = packed.tokens[r][game][0] - 10
      np.testing.assert_array_equal(packed.tokens[r][game], rows.tokens[i][:lengths[i]])
      np.testing.assert_array_equal(packed.weights[r][game], rows.weights[i][:lengths[i]])
      np.testing.assert_array_equal(packed.positions[r][game], np.arange(lengths[i]))
      games.append(i)
    # After its games, a row is padding.
    assert packed.tokens[r][packed.segments[r] == 0].tolist() == [vocab.PAD] * (
        8 - (packed.segments[r] > 0).sum())
  assert sorted(games) == list(range(len(lengths)))
  assert not packed.weights[packed.segments == 0].any()
