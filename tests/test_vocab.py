"""Tests of the byte vocabulary: exact round trips and readable transcripts."""

import numpy as np
import pytest

from twoplayer_jax import vocab


def test_decode_encode_round_trip_on_random_tokens():
  rng = np.random.default_rng(0)
  for _ in range(200):
    tokens = rng.integers(0, vocab.VOCAB_SIZE, size=rng.integers(0, 40)).astype(np.int32)
    np.testing.assert_array_equal(vocab.encode(vocab.decode(tokens)), tokens)


@pytest.mark.parametrize("text", ["317+45=", "héllo ⟨eot⟩ world", "⟨⟨", "a\nb", "⟨x41⟩", ""])
def test_text_written_by_players_round_trips(text):
  tokens = vocab.from_bytes(text.encode("utf-8"))
  assert vocab.decode(tokens) == text.replace("⟨", "⟨⟨")
  np.testing.assert_array_equal(vocab.encode(vocab.decode(tokens)), tokens)


def test_bytes_round_trip_including_invalid_utf8():
  data = bytes(range(256)) + b"\xff\xfe\xc3"
  assert vocab.to_bytes(vocab.from_bytes(data)) == data
  assert "⟨xff⟩" in vocab.decode(vocab.from_bytes(b"\xff"))


def test_specials_are_shown_and_eot_breaks_the_line():
  tokens = np.concatenate([[vocab.BOS], vocab.from_bytes(b"1+1="), [vocab.EOT],
                           vocab.from_bytes(b"2"), [vocab.EOT, vocab.EOG, vocab.PAD]])
  assert vocab.decode(tokens) == "⟨bos⟩1+1=⟨eot⟩\n2⟨eot⟩\n⟨eog⟩⟨pad⟩"


def test_render_marks_each_turn_with_its_author():
  tokens = np.concatenate([[vocab.BOS], vocab.from_bytes(b"1+1="), [vocab.EOT],
                           vocab.from_bytes(b"2"), [vocab.EOT], [vocab.PAD] * 3])
  owner = np.array([0, 1, 1, 1, 1, 1, 2, 2, 0, 0, 0])
  assert vocab.render(tokens, owner) == "one> 1+1=⟨eot⟩\ntwo> 2⟨eot⟩"


def test_tokens_outside_the_vocabulary_are_named():
  with pytest.raises(ValueError, match="token 260 at position 1"):
    vocab.decode([65, 260])
  with pytest.raises(ValueError, match="1-D integer"):
    vocab.decode(np.zeros((2, 2), np.int32))
