"""Files the shell writes, written atomically: a reader (or the next run, after a crash or
a full disk mid-write) sees the old file or the new one, never a truncated one."""

import json
import os
import tempfile
from typing import Any


def write_json(path: str | os.PathLike, obj: Any, **dump_settings) -> None:
  """Writes ``obj`` as JSON to ``path`` through a temporary file in the same directory
  and a rename; on any error the temporary file is removed and ``path`` is untouched."""
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
