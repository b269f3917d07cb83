"""The input pipeline: shuffling, host shares, padding, packing, resuming, global arrays."""

import itertools
import json

import jax
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import vocab
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


def ids(ds, count=None) -> list[int]:
  return [int(i) for batch in itertools.islice(ds, count) for i in batch["example_id"]]


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
  shares = [ids(pipeline.turns(source, batch_size=4, seq_len=24, seed=7, num_epochs=1,
                               process_index=h, process_count=process_count, num_threads=1))
            for h in range(process_count)]
  assert len({len(s) for s in shares}) == 1  # Every host runs the same number of steps.
  seen = [i for s in shares for i in s]
  assert len(seen) == len(set(seen))  # Disjoint.
  # Covering: everything but the remainder that does not fill a batch on every host.
  assert len(seen) == 96 - 96 % (4 * process_count) and set(seen) <= set(range(96))
  with pytest.raises(ValueError, match="process_index 3 is not in"):
    pipeline.examples(source, seed=0, process_index=3, process_count=3)


def test_turns_are_padded_with_masks_of_the_learning_player(source):
  batch = next(iter(pipeline.turns(source, batch_size=8, seq_len=24, seed=0, roles=(2,))))
  for key in ("tokens", "owner", "positions", "segment_ids", "loss_mask"):
    assert batch[key].shape == (8, 24)
  assert batch["reward"].shape == (8, 24, 2) and batch["payoff"].shape == (8, 2)
  pos = np.arange(24)
  written = pos < batch["length"][:, None]
  np.testing.assert_array_equal(batch["segment_ids"], written)
  assert (batch["tokens"][~written] == vocab.PAD).all()
  assert (batch["tokens"][written] != vocab.PAD).all()
  played = written & (pos >= batch["opening_length"][:, None])
  np.testing.assert_array_equal(batch["loss_mask"], played & (batch["owner"] == game_lib.TWO))
  both = next(iter(pipeline.turns(source, batch_size=8, seq_len=24, seed=0, roles=(1, 2),
                                  opening_loss=True)))
  np.testing.assert_array_equal(both["loss_mask"], written & (batch["owner"] > 0))
  with pytest.raises(ValueError, match="more than seq_len=8"):
    next(iter(pipeline.turns(source, batch_size=8, seq_len=8, seed=0, num_threads=0)))


def test_preference_batches_pad_both_continuations(data_dir):
  prefs = sources.load("game_preferences/arithmetic_mixture", "train", data_dir)
  batch = next(iter(pipeline.preferences(prefs, batch_size=4, seq_len=24, seed=0)))
  for side in ("chosen_", "rejected_"):
    assert batch[side + "tokens"].shape == batch[side + "loss_mask"].shape == (4, 24)
    assert (batch[side + "owner"][batch[side + "loss_mask"]] == game_lib.TWO).all()
  assert batch["opening_length"].shape == (4,)


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
  for key in ("tokens", "positions", "segment_ids", "loss_mask"):
    assert batch[key].shape == (2, 32)
  bos = batch["tokens"] == vocab.BOS
  np.testing.assert_array_equal(batch["positions"][bos], 0)
  assert not batch["loss_mask"][bos].any() and not batch["loss_mask"][:, 0].any()
  # The documents, read back from the packed stream, are the corpus texts.
  stream = np.concatenate([b["tokens"].reshape(-1) for b in batches])
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
  assert batch["tokens"].shape == local["tokens"].shape and batch["tokens"].sharding == sharding
  np.testing.assert_array_equal(batch["tokens"], local["tokens"])
  np.testing.assert_array_equal(batch["hidden"]["operands"], local["hidden"]["operands"])
