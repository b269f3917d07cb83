"""Reading built datasets: TFDS random-access data sources with errors that say what to do.

``load("game_transcripts/arithmetic_expert", "train", data_dir)`` returns a ``Source``:
``len``, ``source[i]`` and ``source.__getitems__(keys)`` give decoded records (dicts of
NumPy arrays), random access without TensorFlow. A dataset never built raises
``NotBuiltError`` naming the build command; a record that cannot be read or decoded
(a truncated or corrupted file) raises ``RecordError`` naming the file and the index.
"""

import os
from typing import Any, Sequence

import tensorflow_datasets as tfds

# Importing the builders registers their datasets with TFDS.
from twoplayer_jax.data import builders, corpus  # pylint: disable=unused-import

DATASETS = ("game_transcripts", "game_preferences", "text_corpus")


class NotBuiltError(FileNotFoundError):
  """The dataset was never built in the data directory."""


class RecordError(RuntimeError):
  """A record could not be read or decoded."""


def build_command(dataset: str, data_dir: str | None) -> str:
  """The command that builds ``dataset`` into ``data_dir``."""
  extra = "--corpus PATH" if dataset.startswith("text_corpus") else "--num_examples N"
  where = f" --data_dir {data_dir}" if data_dir else ""
  return f"python -m twoplayer_jax.data.build --dataset {dataset} {extra}{where}"


class Source:
  """One split of a built dataset, read by index.

  Attributes:
    name: ``dataset/config``.
    split: the split read.
    metadata: the generating settings and software versions the dataset was built with.
    files: ``[(path, first index, number of records)]`` of the split's files.
  """

  def __init__(self, builder: tfds.core.DatasetBuilder, split: str):
    self.name, self.split = f"{builder.name}/{builder.builder_config.name}", split
    self.metadata = dict(builder.info.metadata)
    self._source = builder.as_data_source(split=split)
    self.files, start = [], 0
    for instruction in tfds.core.data_sources.base.file_instructions(builder.info, split):
      self.files.append((os.fspath(instruction.filename), start, instruction.take))
      start += instruction.take

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} records of {self.name}")
    try:
      return self._source[index]
    except Exception as e:  # The reader raises RuntimeError, the decoder several kinds.
      raise self._error(index, e) from e

  def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
    try:
      return list(self._source.__getitems__([int(i) for i in indices]))
    except Exception:  # pylint: disable=broad-except
      # Read one by one to name the first bad record.
      return [self[i] for i in indices]

  def _error(self, index: int, error: Exception) -> RecordError:
    path, offset = next((p, index - s) for p, s, n in self.files if s <= index < s + n)
    return RecordError(f"{self.name} {self.split}: record {offset} of {path} (index {index}) "
                       f"cannot be read: {type(error).__name__}: {error}. The file is truncated "
                       f"or corrupted; rebuild the dataset.")

  def __repr__(self) -> str:
    return f"Source({self.name}, split={self.split!r}, {len(self)} records)"


def builder_and_config(dataset: str, config: Any = None) -> tuple[str, Any]:
  """The builder's name and its config (a name, a ``BuilderConfig`` or None) from
  ``dataset`` as ``name/config`` or ``name`` with ``config`` given as an object."""
  name, _, config_name = dataset.partition("/")
  if config is not None and config_name:
    raise ValueError(f"name the config once: {dataset!r} or config={config.name!r}")
  return name, config or config_name or None


def load(dataset: str, split: str = "train", data_dir: str | None = None,
         config: Any = None) -> Source:
  """One split of a built dataset.

  Args:
    dataset: ``name`` or ``name/config``, e.g. ``game_transcripts/arithmetic_expert``.
    split: ``train`` or ``validation``.
    data_dir: the directory it was built into (TFDS's default when None).
    config: a config object of one's own (``configs.transcripts_config``), with
      ``dataset`` the builder's name alone.

  Raises:
    NotBuiltError: if it was never built there (the message names the build command).
    KeyError: if the dataset or config does not exist, or the split was not built.
  """
  name, config = builder_and_config(dataset, config)
  if name not in DATASETS:
    raise KeyError(f"unknown dataset {dataset!r}; datasets: {list(DATASETS)}")
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  builder = tfds.builder(name, config=config, data_dir=data_dir)
  if not builder.is_prepared():
    parent = os.path.dirname(builder.data_dir)
    others = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
    found = f" (found versions {others}, this code reads {builder.version})" if others else ""
    raise NotBuiltError(f"dataset {builder.name}/{builder.builder_config.name} is not built in "
                        f"{builder.data_dir_root}{found}; build it with: "
                        f"{build_command(dataset, data_dir)}")
  if split not in builder.info.splits:
    raise KeyError(f"{dataset} has no split {split!r} in {builder.data_dir}; it has "
                   f"{list(builder.info.splits)}")
  return Source(builder, split)
