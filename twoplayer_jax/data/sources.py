"""Reading built datasets: TFDS random-access data sources with errors that say what to do.

``load("game_transcripts/arithmetic_expert", "train", data_dir)`` returns a ``Source``:
``len``, ``source[i]`` and ``source.__getitems__(keys)`` give decoded records (dicts of
NumPy arrays), random access without TensorFlow. A dataset never built, or damaged
(its ``dataset_info.json`` missing, a file missing or truncated), raises
``NotBuiltError`` naming the one command that builds it (again, with the settings it
was built with); a record that cannot be read or decoded (a file corrupted inside)
raises ``RecordError`` naming the file, the index and the command that rebuilds it.
"""

import json
import logging
import os
from typing import Any, Sequence

from absl import logging as absl_logging
from array_record.python import array_record_module
import tensorflow_datasets as tfds

# Importing the builders registers their datasets with TFDS.
from twoplayer_jax.data import builders, corpus  # pylint: disable=unused-import

DATASETS = ("game_transcripts", "game_preferences", "text_corpus")


def _quiet_tfds(record: logging.LogRecord) -> bool:
  # TFDS warns "Using custom data configuration" at every load of a config object (the
  # experiments build and load theirs on purpose, on every run), and "Variant folder
  # ... has no dataset_info.json" of a dataset not built yet: ``load`` says what to do.
  return not str(record.msg).startswith(("Using custom data configuration", "Variant folder"))


absl_logging.get_absl_logger().addFilter(_quiet_tfds)


class NotBuiltError(FileNotFoundError):
  """The dataset was never built in the data directory, or is damaged there."""


class RecordError(RuntimeError):
  """A record could not be read or decoded."""


def names() -> list[str]:
  """Every dataset ``load`` and ``build`` know by name: ``name/config``."""
  return [f"{name}/{config}" for name in DATASETS
          for config in tfds.builder_cls(name).builder_configs]


def build_command(dataset: str, data_dir: str | None, settings: dict | None = None,
                  overwrite: bool = False) -> str:
  """The command that builds ``dataset`` into ``data_dir``: with the game builders'
  ``settings`` (as in a built dataset's metadata) when known, placeholders otherwise;
  ``overwrite`` replaces a dataset already there."""
  if dataset.startswith("text_corpus"):
    extra = "--corpus PATH"
  elif settings:
    counts = settings["num_examples"]
    extra = (f"--num_examples {counts['train']} --num_validation {counts.get('validation', 0)} "
             f"--seed {settings['seed']} --batch_size {settings['batch_size']}")
  else:
    extra = "--num_examples N"
  where = f" --data_dir {data_dir}" if data_dir else ""
  return (f"python -m twoplayer_jax.data.build --dataset {dataset} {extra}{where}"
          + (" --overwrite" if overwrite else ""))


def _command(builder: tfds.core.DatasetBuilder, overwrite: bool = False) -> str:
  """The command that builds ``builder``'s dataset again as it was built."""
  settings = None
  try:
    with open(os.path.join(builder.data_dir, "metadata.json")) as f:
      settings = json.load(f)["settings"]
  except (OSError, ValueError, KeyError):
    pass  # Not built, or its metadata is damaged too: placeholders then.
  config, root = builder.builder_config.name, os.fspath(builder.data_dir_root)
  if config in type(builder).builder_configs:
    return build_command(f"{builder.name}/{config}", root, settings, overwrite)
  # A config of one's own is no name the command line knows.
  extra = "overwrite=True, " if overwrite else ""
  return (f"build.build({builder.name!r}, {root!r}, config=<config "
          f"{config!r}>, {extra}...) of twoplayer_jax.data.build (the experiments that read "
          "it call it as they start)")


def damage(builder: tfds.core.DatasetBuilder) -> str | None:
  """What is wrong with ``builder``'s built version directory, or None when it is
  whole or absent: ``dataset_info.json`` missing, or a split's array_record file
  missing or holding another number of records than recorded (a truncated file loses
  its footer). Reads each file's footer, not its records."""
  path = builder.data_dir
  if not os.path.isdir(path):
    return None
  if not os.path.exists(os.path.join(path, "dataset_info.json")):
    return f"{os.path.join(path, 'dataset_info.json')} is missing"
  if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
    return None  # Not one of ours: no footer to read.
  for split in builder.info.splits.values():
    for file, length in zip(split.filepaths, split.shard_lengths):
      file = os.fspath(file)
      if not os.path.exists(file):
        return f"{file} is missing"
      try:
        reader = array_record_module.ArrayRecordReader(file)
        found = reader.num_records()
        reader.close()  # Raises on a damaged file.
      except RuntimeError as e:
        return f"{file} cannot be read ({e})"
      if found != length:
        return f"{file} holds {found} records, not {length}"
  return None


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
    self._rebuild = _command(builder, overwrite=True)
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
                       f"or corrupted; rebuild the dataset with: {self._rebuild}")

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
    NotBuiltError: if it was never built there, or is damaged (the message names the
      command that builds it).
    KeyError: if the dataset or config does not exist, or the split was not built.
  """
  name, config = builder_and_config(dataset, config)
  if name not in DATASETS:
    raise KeyError(f"unknown dataset {dataset!r}; datasets: {list(DATASETS)}")
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  builder = tfds.builder(name, config=config, data_dir=data_dir)
  full_name = f"{builder.name}/{builder.builder_config.name}"
  problem = damage(builder)
  if problem:
    raise NotBuiltError(f"dataset {full_name} in {builder.data_dir_root} is damaged: "
                        f"{problem}; build it again with: {_command(builder)}")
  if not builder.is_prepared():
    parent = os.path.dirname(builder.data_dir)
    others = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
    found = f" (found versions {others}, this code reads {builder.version})" if others else ""
    raise NotBuiltError(f"dataset {full_name} is not built in {builder.data_dir_root}{found}; "
                        f"build it with: {_command(builder)}")
  if split not in builder.info.splits:
    raise KeyError(f"{dataset} has no split {split!r} in {builder.data_dir}; it has "
                   f"{list(builder.info.splits)}")
  return Source(builder, split)
