"""The ``text_corpus`` builder: pre-training text from local .txt and .jsonl files.

Text is tokenized by the byte vocabulary (``vocab.from_bytes``), one token per byte, so
any file round-trips exactly, invalid UTF-8 included: a .txt file's records,
concatenated in ``part`` order, are its bytes. A .jsonl file holds one document per
line, a JSON object whose ``text_key`` field is the text (a lone surrogate
``\\udcXX`` in it stands for the invalid byte XX, as Python's surrogateescape writes
it). Documents longer than ``chunk_bytes`` are split into parts.

The files, their sizes and SHA-256 hashes are the generating settings: building again
over changed files into the same directory raises. Files that cannot be opened are
skipped with a warning and listed in the metadata; a corpus with no file or no text
is an error.
"""

import dataclasses
import hashlib
import json
import os
from typing import Iterator, Sequence

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from twoplayer_jax import vocab
from twoplayer_jax.data import builders

SUFFIXES = (".txt", ".jsonl")


def corpus_files(paths: Sequence[str]) -> list[str]:
  """The .txt and .jsonl files named by ``paths`` (files, or directories searched
  recursively), absolute and sorted.

  Raises:
    FileNotFoundError: if a path does not exist.
    ValueError: if no .txt or .jsonl file is found.
  """
  found = set()
  for path in paths:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
      for root, _, names in os.walk(path):
        found.update(os.path.join(root, n) for n in names if n.endswith(SUFFIXES))
    elif os.path.lexists(path):
      if not path.endswith(SUFFIXES):
        raise ValueError(f"corpus file {path} is neither .txt nor .jsonl")
      found.add(path)
    else:
      raise FileNotFoundError(f"corpus path {path} does not exist")
  if not found:
    raise ValueError(f"empty corpus: no .txt or .jsonl files in {list(paths)}")
  return sorted(found)


def describe(files: Sequence[str]) -> tuple[list[dict], list[dict]]:
  """Size and SHA-256 of each readable file, and the files that could not be read.

  Raises:
    ValueError: if no file can be read, or the readable files are all empty.
  """
  readable, skipped = [], []
  for path in files:
    try:
      digest, size = hashlib.sha256(), 0
      with open(path, "rb") as f:
        while block := f.read(1 << 20):
          digest.update(block)
          size += len(block)
      readable.append({"path": path, "bytes": size, "sha256": digest.hexdigest()})
    except OSError as e:
      logging.warning("skipping unreadable corpus file %s: %s", path, e)
      skipped.append({"path": path, "error": str(e)})
  if not readable:
    raise ValueError("corpus has no readable files: " + "; ".join(
        f"{s['path']}: {s['error']}" for s in skipped))
  if not any(f["bytes"] for f in readable):
    raise ValueError(f"corpus has no text: its {len(readable)} readable files are all empty")
  return readable, skipped


def documents(path: str, text_key: str) -> Iterator[tuple[int, bytes]]:
  """(line, bytes) of each document of a file: the whole .txt file as line 0, or each
  non-blank line of a .jsonl file.

  Raises:
    ValueError: naming the file and line of a malformed .jsonl line.
  """
  with open(path, "rb") as f:
    if path.endswith(".txt"):
      yield 0, f.read()
      return
    for line, raw in enumerate(f, start=1):
      if not raw.strip():
        continue
      try:
        text = json.loads(raw)[text_key]
        if not isinstance(text, str):
          raise TypeError(f"field {text_key!r} is {type(text).__name__}, not a string")
        yield line, text.encode("utf-8", errors="surrogateescape")
      except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}:{line}: not a JSON object with a text field {text_key!r} "
                         f"({type(e).__name__}: {e})") from e


@dataclasses.dataclass(eq=False)
class CorpusConfig(tfds.core.BuilderConfig):
  """How text files become records.

  Attributes:
    chunk_bytes: longest record; longer documents are split into parts.
    text_key: field of a .jsonl line that holds the text.
  """
  chunk_bytes: int = 1 << 16
  text_key: str = "text"

  def settings(self) -> dict:
    return {"chunk_bytes": self.chunk_bytes, "text_key": self.text_key}


class TextCorpus(builders.RecordBuilder):
  """Pre-training text from local files, as byte tokens.

  Fields: ``tokens [n]`` int32 (bytes), ``file`` (index into the metadata's
  ``settings["files"]``), ``line`` (1-based .jsonl line, 0 for .txt), ``part`` (chunk
  of the document), ``example_id``.
  """
  BUILDER_CONFIGS = [CorpusConfig(name="bytes", description="One token per byte.")]

  def __init__(self, *, corpus: Sequence[str] = (), **kwargs):
    """``corpus``: .txt / .jsonl files or directories; only needed to build."""
    self._files, self._skipped = describe(corpus_files(corpus)) if corpus else ([], [])
    super().__init__(**kwargs)

  def settings(self) -> dict:
    return {"dataset": f"{self.name}/{self.builder_config.name}",
            "config": self.builder_config.settings(), "files": self._files,
            "skipped": self._skipped}

  def _features(self) -> dict:
    t = tfds.features.Tensor
    return {"tokens": t(shape=(None,), dtype=np.int32), "file": t(shape=(), dtype=np.int32),
            "line": t(shape=(), dtype=np.int32), "part": t(shape=(), dtype=np.int32),
            "example_id": t(shape=(), dtype=np.int64)}

  def _splits(self) -> dict[str, int | None]:
    if not self._files:
      raise ValueError("building text_corpus needs a corpus: .txt / .jsonl files or "
                       "directories (--corpus PATH)")
    return {"train": None}

  def _generate_examples(self, split: str, num_examples: None):
    del split, num_examples
    example_id, size = 0, self.builder_config.chunk_bytes
    for index, f in enumerate(self._files):
      for line, data in documents(f["path"], self.builder_config.text_key):
        for part, start in enumerate(range(0, len(data), size)):
          yield example_id, {"tokens": vocab.from_bytes(data[start:start + size]), "file": index,
                             "line": line, "part": part, "example_id": example_id}
          example_id += 1
    if not example_id:
      raise ValueError("corpus has no text: every document is empty")
