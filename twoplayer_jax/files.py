"""Files the shell writes, written atomically: a reader (or the next run, after a crash or
a full disk mid-write) sees the old file or the new one, never a truncated one. And the
workdir's lock, which keeps two runs from writing into one workdir."""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import tempfile
from typing import Any, Iterator


class WorkdirInUseError(RuntimeError):
  """Another live process holds the workdir's lock."""


def write_json(path: str | os.PathLike, obj: Any, **dump_settings) -> None:
  """Writes ``obj`` as JSON to ``path`` through a temporary file in the same directory
  and a rename; on any error the temporary file is removed and ``path`` is untouched.
  The data and the rename are flushed to disk before it returns."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(obj, f, **dump_settings)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise
  _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
  # The rename itself is durable once the directory's entry is on disk. Some file
  # systems (network, FUSE) cannot sync a directory: the rename is done all the same.
  try:
    fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)
  except OSError:
    pass


@contextlib.contextmanager
def lock(workdir: str | os.PathLike) -> Iterator[None]:
  """Holds an exclusive lock on ``workdir`` (created if missing) for the block.

  The lock is ``flock`` on ``workdir/.lock``, which records the holder's pid, host and
  start time as JSON. The operating system releases it when the holder exits, however
  it dies, so a stale lock never blocks a later run. Take it in one process per run
  (process 0 of a multi-process run): ``flock`` does not reach across hosts on every
  network file system.

  Raises:
    WorkdirInUseError: another process holds it; the message names that process.
  """
  os.makedirs(workdir, exist_ok=True)
  # The file is never deleted: a process waiting on the old file would lock a file
  # another process had already replaced.
  fd = os.open(os.path.join(workdir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise WorkdirInUseError(f"workdir {workdir} is in use by {_holder(fd)}; wait for it "
                              "to finish or use another --workdir") from None
    since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    yield
  finally:
    os.close(fd)  # Releases the lock.


def _holder(fd: int) -> str:
  """The lock's holder as written in the lock file, in words."""
  try:
    holder = json.loads(os.pread(fd, 4096, 0))
    return f"process {holder['pid']} on host {holder['host']} (since {holder['since']})"
  except (ValueError, KeyError, TypeError):  # Taken a moment ago and not written yet.
    return "another process"
