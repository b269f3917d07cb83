"""The metrics writer: JSONL rows, TensorBoard events read back, NaN stops, process 0 only."""

import glob
import json
import math
import os
import struct
import time

import jax.numpy as jnp
import numpy as np
import pytest
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c

from twoplayer_jax import metrics


def read_rows(workdir):
  with open(workdir / "metrics.jsonl", encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def read_events(workdir):
  """Every event in the event files, read as TensorBoard does: TFRecords of Event protos.

  TensorBoard itself is not installed here, so the records are parsed by hand,
  their CRCs checked.
  """
  events = []
  for name in sorted(glob.glob(str(workdir / "events.out.tfevents.*"))):
    data = open(name, "rb").read()
    at = 0
    while at < len(data):
      header = data[at:at + 8]
      (length,) = struct.unpack("<Q", header)
      assert struct.unpack("<I", data[at + 8:at + 12])[0] == masked_crc32c(header)
      body = data[at + 12:at + 12 + length]
      assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == masked_crc32c(body)
      events.append(event_pb2.Event.FromString(body))
      at += 16 + length
  return events


def scalars_of(events):
  """``{(tag, step): value}`` of the scalar summaries."""
  return {(v.tag, e.step): v.simple_value for e in events if e.HasField("summary")
          for v in e.summary.value}


def run(writer, steps, nan_at=None):
  for step in steps:
    loss = jnp.float32(np.nan if step == nan_at else 1.0 / step)
    writer.write(step, {"loss": loss, "accuracy": np.float32(step / 10)}, tokens=jnp.int32(128),
                 force=step == steps[-1])


def test_jsonl_rows_every_n_steps_with_wall_clock_and_tokens_per_s(tmp_path):
  before = time.time()
  writer = metrics.MetricsWriter(tmp_path, every=2, progress=False)
  run(writer, list(range(1, 6)))
  writer.close()
  rows = read_rows(tmp_path)
  assert [r["step"] for r in rows] == [2, 4, 5]
  for row in rows:
    assert set(row) == {"step", "time", "elapsed_s", "steps_per_s", "tokens_per_s", "loss",
                        "accuracy"}
    assert row["loss"] == pytest.approx(1 / row["step"])
    assert before <= row["time"] <= time.time()
    # Both rates are over the same seconds, and each step trained on 128 tokens.
    assert row["tokens_per_s"] == pytest.approx(128 * row["steps_per_s"])
  assert rows[0]["elapsed_s"] <= rows[1]["elapsed_s"] <= rows[2]["elapsed_s"]


def test_tensorboard_events_hold_the_same_scalars(tmp_path):
  writer = metrics.MetricsWriter(tmp_path, every=2, progress=False)
  run(writer, list(range(1, 7)))
  writer.close()
  got = scalars_of(read_events(tmp_path))
  for row in read_rows(tmp_path):
    for key in ("loss", "accuracy", "elapsed_s", "steps_per_s", "tokens_per_s"):
      assert got[key, row["step"]] == pytest.approx(row[key], rel=1e-6)
  assert {step for _, step in got} == {2, 4, 6}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_loss_raises_naming_the_step_and_writes_nothing_for_it(tmp_path, bad):
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False)
  writer.write(1, {"loss": jnp.float32(0.5)})
  with pytest.raises(FloatingPointError, match="step 2: loss is"):
    writer.write(2, {"loss": jnp.float32(bad)})
  writer.close()
  assert [r["step"] for r in read_rows(tmp_path)] == [1]
  assert {step for _, step in scalars_of(read_events(tmp_path))} == {1}


def test_chosen_keys_are_checked_and_others_are_not(tmp_path):
  writer = metrics.MetricsWriter(tmp_path, progress=False, finite_keys=("loss", "kl"))
  assert math.isinf(writer.write(1, {"loss": 1.0, "grad_norm": np.inf})["grad_norm"])
  with pytest.raises(FloatingPointError, match="step 2: kl"):
    writer.write(2, {"loss": 1.0, "kl": np.inf})
  writer.close()


def test_inactive_writer_writes_nothing_but_still_stops_on_nan(tmp_path):
  workdir = tmp_path / "run"
  writer = metrics.MetricsWriter(workdir, every=1, active=False)
  assert writer.write(1, {"loss": 1.0}, tokens=10) is None
  # Every process must stop at the same step, or the others wait for it forever.
  with pytest.raises(FloatingPointError, match="step 2"):
    writer.write(2, {"loss": np.nan})
  writer.close()
  assert not workdir.exists()


def test_resumed_run_replaces_the_steps_after_its_checkpoint(tmp_path):
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False)
  run(writer, list(range(1, 7)))
  writer.close()
  # The run was killed after step 6 and resumes from its checkpoint of step 4.
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False, start_step=4)
  run(writer, [5, 6, 7])
  writer.close()
  assert [r["step"] for r in read_rows(tmp_path)] == [1, 2, 3, 4, 5, 6, 7]
  # TensorBoard drops events of steps from the START session log's step on: each run's
  # file is kept (even one started in the same second), the resumed one's starts at 5.
  events = read_events(tmp_path)
  starts = [e.step for e in events
            if e.HasField("session_log") and e.session_log.status == e.session_log.START]
  assert starts == [1, 5]
  assert {step for _, step in scalars_of(events)} == set(range(1, 8))


def test_resumed_run_truncates_in_place_keeping_earlier_rows_byte_identical(tmp_path):
  path = tmp_path / "metrics.jsonl"
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False)
  run(writer, list(range(1, 7)))
  writer.close()
  rows = path.read_bytes().splitlines(keepends=True)
  kept = b"".join(rows[:4])
  with open(path, "a", encoding="utf-8") as f:
    f.write('{"step": 7, "loss": 0.1')  # Killed mid-write: a torn last line.
  inode = os.stat(path).st_ino
  # The run resumes from its checkpoint of step 4.
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False, start_step=4)
  assert path.read_bytes() == kept and os.stat(path).st_ino == inode
  run(writer, [5, 6, 7])
  writer.close()
  assert path.read_bytes().startswith(kept) and os.stat(path).st_ino == inode
  assert [r["step"] for r in read_rows(tmp_path)] == [1, 2, 3, 4, 5, 6, 7]


def test_a_torn_last_line_is_dropped_even_when_no_row_is(tmp_path):
  path = tmp_path / "metrics.jsonl"
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False)
  run(writer, [1, 2])
  writer.close()
  whole = path.read_bytes()
  with open(path, "ab") as f:
    f.write(b'{"step": 3, "lo')
  metrics.MetricsWriter(tmp_path, every=1, progress=False, start_step=2).close()
  assert path.read_bytes() == whole


def test_run_restarted_before_its_first_checkpoint_replaces_every_row(tmp_path):
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False)
  run(writer, [1, 2, 3])
  writer.close()
  writer = metrics.MetricsWriter(tmp_path, every=1, progress=False, start_step=0)
  run(writer, [1, 2])
  writer.close()
  assert [r["step"] for r in read_rows(tmp_path)] == [1, 2]


def test_progress_bar_shows_rate_eta_and_chosen_metrics(tmp_path, capsys):
  writer = metrics.MetricsWriter(tmp_path, every=2, total_steps=6,
                                 progress_keys=("loss", "accuracy"))
  run(writer, list(range(1, 7)))
  writer.close()
  bar = capsys.readouterr().err.split("\r")[-1]
  assert "6/6" in bar and "step/s" in bar and "<00:00" in bar
  assert "loss=0.1667" in bar and "accuracy=0.6" in bar
