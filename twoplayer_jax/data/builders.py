"""TFDS builders of game records: ``game_transcripts`` and ``game_preferences``.

Both write ``array_record`` files that are read back through TFDS data sources, with no
TensorFlow installed. The generating settings (config, number of examples, seed, batch
size) go into the dataset's metadata (``metadata.json``); building into a directory
that already holds the same dataset version with other settings raises instead of
reusing it silently (TFDS would), and other versions live in their own directories.
TFDS shuffles records when it writes them: each record carries its ``example_id``.
"""

import abc
import dataclasses
import inspect
import json
import os
from typing import Any

from etils import epath
import jax
import numpy as np
import tensorflow_datasets as tfds
import tqdm

import twoplayer_jax
from twoplayer_jax.data import configs, generate

T = tfds.features.Tensor
SPLITS = ("train", "validation")  # Split s is generated from fold_in(key(seed), s).


def check_settings(builder: tfds.core.DatasetBuilder, settings: dict) -> bool:
  """Whether ``builder``'s data is already built with ``settings`` (then it is reused).

  Raises:
    FileExistsError: if the data directory holds this version built with other settings.
  """
  if not os.path.exists(os.path.join(builder.data_dir, "dataset_info.json")):
    return False
  path = os.path.join(builder.data_dir, "metadata.json")
  stored = None
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f).get("settings")
  settings = json.loads(json.dumps(settings))  # Tuples as lists, as they were stored.
  if stored is not None:
    stored = json.loads(json.dumps(builder.upgrade(stored)))
  if stored == settings:
    return True
  if isinstance(stored, dict):
    diff = {k: (stored.get(k), settings.get(k)) for k in sorted(set(stored) | set(settings))
            if stored.get(k) != settings.get(k)}
  else:
    diff = {"settings": (stored, settings)}
  raise FileExistsError(
      f"{builder.data_dir} already holds {builder.info.full_name} built with other settings "
      f"(stored, requested): {diff}. Build into another --data_dir, or pass --overwrite "
      f"to replace it.")


class RecordBuilder(tfds.core.GeneratorBasedBuilder):
  """What the builders share: generating settings in the metadata, array_record files,
  no silent reuse of data built with other settings, a progress bar.

  Subclasses define ``settings()``, ``_features()``, ``_splits()`` and
  ``_generate_examples(split, num_examples)``; while one is missing the class is
  abstract, and TFDS registers no dataset for it.
  """
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS's own lookup for a builder inside a package imports importlib_resources,
    # which TFDS does not install.
    return epath.Path(inspect.getfile(cls))

  def __init__(self, *, progress: bool = False, **kwargs):
    """A builder that can show its progress.

    Args:
      progress: whether to show a progress bar while generating.
      **kwargs: TFDS's ``data_dir``, ``config`` and ``version``.
    """
    self._progress, self._bar = progress, None
    super().__init__(**kwargs)

  @abc.abstractmethod
  def settings(self) -> dict:
    """The generating settings, written into the metadata and compared on rebuilding."""

  def upgrade(self, stored: Any) -> Any:
    """Stored settings as this code would write them for the same data (e.g. with fields
    added since at the defaults that generate as before); as they are by default."""
    return stored

  @abc.abstractmethod
  def _features(self) -> dict:
    """The record's features."""

  @abc.abstractmethod
  def _splits(self) -> dict[str, int | None]:
    """Examples to generate per split (None: unknown in advance); raises if unbuildable."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.__doc__, features=tfds.features.FeaturesDict(
            self._features()),
        metadata=tfds.core.MetadataDict(
            settings=self.settings(), software={"twoplayer_jax": twoplayer_jax.__version__,
                                                "jax": jax.__version__,
                                                "tensorflow_datasets": tfds.__version__}))

  def download_and_prepare(self, *, download_config=None, **kwargs):
    """Builds the dataset in array_record files, unless built already with these settings."""
    counts = self._splits()
    mode = download_config.download_mode if download_config else None
    if not (mode and mode.overwrite_dataset) and check_settings(self, self.settings()):
      return
    total = None if None in counts.values() else sum(counts.values())
    with tqdm.tqdm(total=total, disable=not self._progress, unit=" examples",
                   desc=self.info.full_name) as self._bar:
      # A builder that found data (being overwritten) already reads its format from it.
      file_format = (None if self.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
                     else tfds.core.FileFormat.ARRAY_RECORD)
      super().download_and_prepare(download_config=download_config, file_format=file_format,
                                   **kwargs)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {s: self._progressed(s, n) for s, n in self._splits().items()}

  def _progressed(self, split: str, num_examples: int | None):
    for example_id, record in self._generate_examples(split, num_examples):
      if self._bar is not None:
        self._bar.update()
      yield example_id, record


class GameRecordBuilder(RecordBuilder):
  """Records of games played by a config's scripted players (abstract)."""
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "1.1.0": "``hidden`` no longer repeats ``opening_length`` (a field of its "
                            "own)."}

  def __init__(self, *, num_examples: int | None = None, num_validation: int = 0, seed: int = 0,
               batch_size: int = 1024, **kwargs):
    """A builder of a config's games.

    Args:
      num_examples: train examples to generate; only needed to build.
      num_validation: validation examples (a split is written only if positive).
      seed: generation seed.
      batch_size: games played per jitted call (part of the settings: batch b of a
        split is played from its own key).
      **kwargs: ``RecordBuilder``'s.
    """
    self._num = {"train": num_examples, "validation": num_validation}
    self._seed, self._batch_size = seed, batch_size
    super().__init__(**kwargs)

  def settings(self) -> dict:
    game, _ = generate.setup(self.builder_config)
    # The game as played, defaults and limits included: changed code defaults show.
    played = {"class": type(game).__name__, **dataclasses.asdict(game),
              **{k: getattr(game, k) for k in ("max_length", "max_opening_length", "max_turns")}}
    return {"dataset": f"{self.name}/{self.builder_config.name}",
            "config": self.builder_config.settings(), "game": played,
            "num_examples": {s: n for s, n in self._num.items() if n},
            "seed": self._seed, "batch_size": self._batch_size}

  def upgrade(self, stored: Any) -> Any:
    """A game field missing from the stored settings (added to the game after the data
    was built) at its default: a game gains a field only with a default that plays as
    before. A stored value is never replaced."""
    if not (isinstance(stored, dict) and isinstance(stored.get("game"), dict)):
      return stored
    game, _ = generate.setup(self.builder_config)
    added = {f.name: f.default for f in dataclasses.fields(game)
             if f.name not in stored["game"] and f.default is not dataclasses.MISSING}
    return {**stored, "game": {**stored["game"], **added}}

  def _splits(self) -> dict[str, int | None]:
    if not self._num["train"] or self._num["train"] < 0 or self._num["validation"] < 0:
      raise ValueError(f"building {self.name}/{self.builder_config.name} needs num_examples "
                       f"> 0 and num_validation >= 0, got {self._num}")
    return {s: n for s, n in self._num.items() if n}


def _game_features(game) -> dict:
  return {k: T(shape=s.shape, dtype=s.dtype) for k, s in generate.hidden_spec(game).items()}


def _turn_features() -> dict:
  return {"tokens": T(shape=(None,), dtype=np.int32), "owner": T(shape=(None,), dtype=np.int32),
          "reward": T(shape=(None, 2), dtype=np.float32), "payoff": T(shape=(2,), dtype=np.float32),
          "length": T(shape=(), dtype=np.int32), "player_two": T(shape=(), dtype=np.int32)}


class GameTranscripts(GameRecordBuilder):
  """Games played by scripted players: one record per game.

  Fields: ``tokens``, ``owner`` (0 chance, 1 player one, 2 player two) and ``reward``
  (per token, ``[length, 2]``), ``payoff [2]``, ``opening_length``, ``length``,
  ``hidden`` (the game's hidden information, flattened), ``player_two`` (index into the
  config's player-two names), ``example_id``.
  """
  BUILDER_CONFIGS = configs.standard_transcripts()

  def _features(self) -> dict:
    game, _ = generate.setup(self.builder_config)
    return {**_turn_features(), "opening_length": T(shape=(), dtype=np.int32),
            "hidden": _game_features(game), "example_id": T(shape=(), dtype=np.int64)}

  def _generate_examples(self, split: str, num_examples: int):
    for record in generate.transcripts(self.builder_config, num_examples, self._seed,
                                       SPLITS.index(split), self._batch_size):
      yield record["example_id"], record


class GamePreferences(GameRecordBuilder):
  """Pairs of player-two continuations of one opening, labelled by player one.

  Player one prefers the continuation with its higher payoff, with Bradley-Terry noise
  at the config's temperature; ties are dropped. Fields: ``chosen_*`` and
  ``rejected_*`` (``tokens``, ``owner``, ``reward``, ``payoff``, ``length``,
  ``player_two``), the shared ``opening_length`` and ``hidden``, ``example_id``.
  """
  BUILDER_CONFIGS = configs.standard_preferences()

  def _features(self) -> dict:
    game, _ = generate.setup(self.builder_config)
    pairs = {f"{p}_{k}": f for p in ("chosen", "rejected") for k, f in _turn_features().items()}
    return {**pairs, "opening_length": T(shape=(), dtype=np.int32),
            "hidden": _game_features(game), "example_id": T(shape=(), dtype=np.int64)}

  def _generate_examples(self, split: str, num_examples: int):
    for record in generate.preferences(self.builder_config, num_examples, self._seed,
                                       SPLITS.index(split), self._batch_size):
      yield record["example_id"], record
