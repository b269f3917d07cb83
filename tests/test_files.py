"""Atomic writes: a failed write leaves the file as it was and no temporary behind. The
workdir lock: one holder at a time, released however the holder ends."""

import json
import os
import signal
import subprocess
import sys

import pytest

from twoplayer_jax import files


def test_write_json_replaces_the_whole_file(tmp_path):
  path = tmp_path / "config.json"
  files.write_json(path, {"a": 1})
  files.write_json(path, {"b": [1, 2]}, indent=1)
  assert json.loads(path.read_text()) == {"b": [1, 2]}
  assert os.listdir(tmp_path) == ["config.json"]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
  path = tmp_path / "config.json"
  files.write_json(path, {"kept": True})
  with pytest.raises(TypeError):
    files.write_json(path, {"bad": object()})  # Fails halfway through the dump.
  assert json.loads(path.read_text()) == {"kept": True}
  assert os.listdir(tmp_path) == ["config.json"]


@pytest.mark.subprocess
def test_a_file_size_limit_mid_write_leaves_the_old_file_whole(tmp_path):
  """The fault a user hit: writing under a file-size limit (EFBIG) used to leave
  config.json empty, and every later run then failed to read it."""
  path = tmp_path / "config.json"
  files.write_json(path, {"kept": True})
  script = ("import resource, sys\n"
            "from twoplayer_jax import files\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
            "files.write_json(sys.argv[1], {'x': 'y' * 1000})\n")
  # With SIGXFSZ ignored, the write past the limit fails with EFBIG instead of killing.
  proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                        text=True,
                        preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))
  assert proc.returncode != 0 and "File too large" in proc.stderr
  assert json.loads(path.read_text()) == {"kept": True}
  assert os.listdir(tmp_path) == ["config.json"]


def test_lock_is_exclusive_records_its_holder_and_is_released_on_exit(tmp_path):
  workdir = tmp_path / "run"
  with files.lock(workdir):
    holder = json.loads((workdir / ".lock").read_text())
    assert holder["pid"] == os.getpid() and set(holder) == {"pid", "host", "since"}
    # A second open of the lock file is a second holder, even in this process.
    with pytest.raises(files.WorkdirInUseError, match=(
        rf"^workdir {workdir} is in use by process {os.getpid()} on host ")):
      with files.lock(workdir):
        pass
  with files.lock(workdir):  # Released on leaving the block, and after an error in it.
    with pytest.raises(KeyError):
      with files.lock(tmp_path / "other"):
        raise KeyError("boom")
    with files.lock(tmp_path / "other"):
      pass
  assert sorted(os.listdir(workdir)) == [".lock"]
