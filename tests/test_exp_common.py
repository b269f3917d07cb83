"""What the experiments share (experiments.common): in-memory games, intervals, curves."""

import copy
import json
import math

import numpy as np
import pytest

from experiments import common


class Part(list):
  """A data source of game records held in a list."""

  def __getitems__(self, indices):
    return [self[i] for i in indices]


def record(i, length=4):
  """Game ``i``: BOS, player one's token, then player two's ``length - 2`` tokens."""
  return {"tokens": np.full(length, 10 + i, np.int32), "owner": np.array([0, 1] + [2] * (
      length - 2), np.int32), "reward": np.zeros((length, 2), np.float32),
          "opening_length": 2, "example_id": i}


def test_games_serve_every_record_each_epoch_and_resume():
  games = common.Games([Part([record(0), record(1, 5)]), Part(record(i) for i in range(2, 6))],
                    batch_size=3, seq_len=6, seed=0)
  epochs = [np.concatenate([next(games)["tokens"][:, 0] for _ in range(2)]) for _ in range(3)]
  for epoch in epochs:
    assert sorted(epoch) == list(range(10, 16))
  assert any(list(a) != list(b) for a, b in zip(epochs, epochs[1:]))
  state = games.get_state()
  batch = next(games)
  assert batch["tokens"].shape == batch["loss_mask"].shape == (3, 6)
  np.testing.assert_array_equal(batch["loss_mask"][:, :2], False)
  np.testing.assert_array_equal(batch["loss_mask"].sum(1), 2 + (batch["tokens"][:, 0] == 11))
  games.set_state(state)
  np.testing.assert_array_equal(next(games)["tokens"], batch["tokens"])


def test_a_copy_of_games_reads_once_and_serves_the_same_stream_from_its_own_position():
  part = Part(record(i) for i in range(5))
  reads = []
  part.__getitems__ = lambda indices: reads.append(indices) or [part[i] for i in indices]
  games = common.Games([part], batch_size=2, seq_len=6, seed=1)
  first = [next(copy.copy(games))["tokens"] for _ in range(2)]
  again = copy.copy(games)
  stream = [next(again)["tokens"] for _ in range(3)]
  assert len(reads) == 1  # Every copy served from the first read.
  np.testing.assert_array_equal(first[0], first[1])
  np.testing.assert_array_equal(stream[0], first[0])
  assert games.get_state() == {"position": 0} and again.get_state() == {"position": 3}


def test_games_clone_the_roles_asked_and_the_opening_with_opening_loss():
  games = common.Games([Part([record(0, 5)])], batch_size=1, seq_len=6, seed=0, roles=(1, 2),
                       opening_loss=True)
  mask = next(games)["loss_mask"][0]
  # Nothing predicts BOS; the rest of the game carries the loss, the padding does not.
  np.testing.assert_array_equal(mask, [False, True, True, True, True, False])


def test_interval_is_the_t_interval_with_sample_std():
  x = common.interval([1.0, 2.0, 3.0])
  assert x["mean"] == 2.0 and x["std"] == 1.0
  assert math.isclose(x["high"] - x["mean"], 4.303 / math.sqrt(3), rel_tol=1e-9)
  five = common.interval([1.0, 2.0, 3.0, 4.0, 5.0])
  assert math.isclose(five["mean"] - five["low"], 2.776 * math.sqrt(2.5) / math.sqrt(5))
  with pytest.raises(ValueError, match="at least 2 seeds"):
    common.interval([1.0])


def test_welch_difference_of_unpaired_seeds():
  d = common.difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
  # All the variance on one side: Welch's df is that side's, 2.
  assert d["mean"] == 2.0 and d["df"] == pytest.approx(2.0)
  assert d["high"] - d["mean"] == pytest.approx(4.303 * np.sqrt(1 / 3))
  assert all(type(d[k]) is float for k in ("mean", "low", "high", "df"))  # JSON's.
  with pytest.raises(ValueError, match="at least 2 seeds a side"):
    common.difference([1.0], [1.0, 2.0])


def test_band_averages_each_seed_over_its_trailing_window_then_over_seeds():
  seeds = np.array([[0.0, 2.0, 4.0, 6.0], [2.0, 4.0, 6.0, 8.0], [1.0, 3.0, 5.0, 7.0]])
  band = common.band(seeds, window=2)
  # Trailing means per seed: [x0, (x0+x1)/2, (x1+x2)/2, (x2+x3)/2]; the seeds' mean of
  # those is the trailing mean of the seeds' mean, [1, 2, 4, 6].
  np.testing.assert_allclose(band["mean"], [1.0, 2.0, 4.0, 6.0])
  half = np.array(band["high"]) - np.array(band["mean"])
  np.testing.assert_allclose(half, 4.303 / math.sqrt(3), rtol=1e-9)  # Std 1 at every step.
  np.testing.assert_allclose(np.array(band["mean"]) - band["low"], half)
  assert common.band(seeds, window=1)["mean"] == pytest.approx([1.0, 3.0, 5.0, 7.0])


def test_seed_curves_read_each_runs_logged_metric(tmp_path):
  (tmp_path / "stage").mkdir()
  rows = [{"step": 1, "x": 0.5, "x_seed0": 0.0, "x_seed1": 1.0}, {"step": 2, "loss": 3.0},
          {"step": 3, "x": 1.5, "x_seed0": 1.0, "x_seed1": 2.0}]
  (tmp_path / "stage" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert common.seed_curves(str(tmp_path), "stage", "x", 2) == {
      "step": [1, 3], "seeds": [[0.0, 1.0], [1.0, 2.0]]}


def test_error_bars_reach_each_intervals_ends():
  mean, err = common.error_bars([common.interval([1.0, 2.0, 3.0]), common.interval([0.0, 4.0])])
  np.testing.assert_allclose(mean, [2.0, 2.0])
  np.testing.assert_allclose(mean - err[0], [common.interval([1.0, 2.0, 3.0])["low"],
                                             common.interval([0.0, 4.0])["low"]])
  np.testing.assert_allclose(mean + err[1], [common.interval([1.0, 2.0, 3.0])["high"],
                                             common.interval([0.0, 4.0])["high"]])
