"""Builds a dataset: ``python -m twoplayer_jax.data.build``.

  python -m twoplayer_jax.data.build --dataset game_transcripts/arithmetic_expert \\
      --num_examples 20000 --data_dir DIR
  python -m twoplayer_jax.data.build --dataset game_preferences/arithmetic_mixture \\
      --num_examples 5000 --data_dir DIR
  python -m twoplayer_jax.data.build --dataset text_corpus --corpus texts/ --data_dir DIR

Shows a progress bar, then where the dataset was written and its first records. A
dataset already built with the same settings is reused; one built with other settings
is left alone (an error), unless ``--overwrite`` is given. A damaged one (its
``dataset_info.json`` missing, a file missing or truncated) is deleted and built again.
"""

import functools
import os
import shutil
from typing import Sequence

from absl import app, flags
import tensorflow_datasets as tfds

from twoplayer_jax import vocab
from twoplayer_jax.data import builders, configs, corpus, sources

BUILDERS = {"game_transcripts": builders.GameTranscripts,
            "game_preferences": builders.GamePreferences, "text_corpus": corpus.TextCorpus}


def build(dataset: str, data_dir: str | None = None, *, num_examples: int | None = None,
          num_validation: int = 0, seed: int = 0, batch_size: int = 1024,
          corpus_paths: Sequence[str] = (), overwrite: bool = False,
          progress: bool = False, config: configs.GameConfig | None = None
          ) -> tfds.core.DatasetBuilder:
  """Builds ``dataset`` (``name/config``) into ``data_dir`` and returns its builder.

  Args:
    dataset: e.g. ``game_transcripts/arithmetic_expert``; the name alone takes the
      first config.
    data_dir: root directory of datasets (TFDS's default when None).
    num_examples, num_validation, seed, batch_size: the game builders' settings.
    corpus_paths: text_corpus's files or directories.
    overwrite: replace a dataset built with other settings.
    progress: show a progress bar.
    config: a game variant of one's own (``configs.transcripts_config``), built under
      ``dataset/config.name``; ``dataset`` is then the builder's name alone.

  Raises:
    FileExistsError: if ``data_dir`` holds the dataset built with other settings.
  """
  tfds.disable_progress_bar()  # TFDS's bars count splits and shuffling; ours, examples.
  name, config = sources.builder_and_config(dataset, config)
  if name not in BUILDERS:
    raise KeyError(f"unknown dataset {dataset!r}; datasets: {sorted(BUILDERS)}")
  if name == "text_corpus":
    settings = {"corpus": corpus_paths}
  else:
    settings = {"num_examples": num_examples, "num_validation": num_validation, "seed": seed,
                "batch_size": batch_size}
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  make = functools.partial(BUILDERS[name], data_dir=data_dir, config=config, progress=progress,
                           **settings)
  builder = make()
  problem = sources.damage(builder)
  if problem:
    print(f"repairing {builder.info.full_name} in {builder.data_dir_root}: {problem}; "
          "deleting it and building it again", flush=True)
    shutil.rmtree(builder.data_dir)
    builder = make()  # One that read nothing from the deleted files.
  # TFDS announces "Downloading and preparing dataset Unknown size" and "downloaded and
  # prepared": nothing is downloaded, and the sizes are known only once built.
  # pylint: disable=protected-access
  builder._log_download_bytes = lambda: print(
      f"Building {builder.info.full_name} in {builder.data_dir}", flush=True)
  builder._log_download_done = lambda: None
  # pylint: enable=protected-access
  mode = tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite else None
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      download_mode=mode) if mode else None)
  return builder


def show(source: sources.Source, count: int) -> str:
  """The first ``count`` records of a split as text (games turn by turn)."""
  lines = []
  for i in range(min(count, len(source))):
    record = source[i]
    if "tokens" not in record:  # A preference pair.
      lines.append(f"[{record['example_id']}] chosen, payoff {record['chosen_payoff']}:\n"
                   + vocab.render(record["chosen_tokens"], record["chosen_owner"])
                   + f"\n[{record['example_id']}] rejected, payoff "
                   f"{record['rejected_payoff']}:\n"
                   + vocab.render(record["rejected_tokens"], record["rejected_owner"]))
    elif "owner" in record:
      lines.append(f"[{record['example_id']}] payoff {record['payoff']}:\n"
                   + vocab.render(record["tokens"], record["owner"]))
    else:
      lines.append(f"[{record['example_id']}] {vocab.decode(record['tokens'][:200])}")
  return "\n".join(lines)


FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", None, "name/config, e.g. game_transcripts/arithmetic_expert.")
flags.DEFINE_string("data_dir", None, "Root directory of datasets (TFDS's default if unset).")
flags.DEFINE_integer("num_examples", None, "Train examples (game datasets).")
flags.DEFINE_integer("num_validation", 0, "Validation examples (game datasets).")
flags.DEFINE_integer("seed", 0, "Generation seed (game datasets).")
flags.DEFINE_integer("batch_size", 1024, "Games played per jitted call (game datasets).")
flags.DEFINE_multi_string("corpus", [], ".txt / .jsonl files or directories (text_corpus).")
flags.DEFINE_bool("overwrite", False, "Replace a dataset built with other settings.")
flags.DEFINE_integer("show", 3, "Records to print after building.")


def main(argv):
  del argv
  builder = build(FLAGS.dataset, FLAGS.data_dir, num_examples=FLAGS.num_examples,
                  num_validation=FLAGS.num_validation, seed=FLAGS.seed,
                  batch_size=FLAGS.batch_size, corpus_paths=FLAGS.corpus,
                  overwrite=FLAGS.overwrite, progress=True)
  splits = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
  print(f"{builder.info.full_name} in {builder.data_dir}: {splits}")
  print(show(sources.load(FLAGS.dataset, "train", FLAGS.data_dir), FLAGS.show))


if __name__ == "__main__":
  flags.mark_flag_as_required("dataset")
  app.run(main)
