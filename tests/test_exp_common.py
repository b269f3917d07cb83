"""What the experiments share (experiments.common): intervals, curves."""

import json
import math

import numpy as np
import pytest

from experiments import common


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


def test_first_reaching_takes_each_rows_first_step_at_the_threshold():
  values = [[0.1, 0.5, 0.9], [0.2, 0.3, 0.4], [0.7, 0.1, 0.2]]
  assert common.first_reaching(values, [10, 20, 30], 0.5, 99) == [20, 99, 10]


def test_first_holding_takes_each_rows_first_step_at_the_threshold_to_its_end():
  values = [[0.1, 0.5, 0.9], [0.2, 0.3, 0.4], [0.7, 0.1, 0.2], [0.6, 0.4, 0.5], [0.5, 0.6, 0.7]]
  assert common.first_holding(values, [10, 20, 30], 0.5, 99) == [20, 99, 99, 30, 10]
