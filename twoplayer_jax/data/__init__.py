"""Game records as TensorFlow Datasets, and the input pipeline that reads them.

The impure shell's data side (files live here; the pure core never imports it):

  builders.py   TFDS builders game_transcripts and game_preferences (array_record)
  corpus.py     the text_corpus builder: local .txt / .jsonl files as byte tokens
  configs.py    named variants: game + player mix (arithmetic_expert, ..._mixture)
  generate.py   records of games played by scripted players, whole batches per jit
  sources.py    load(): a built split, read by index, with clear errors
  pipeline.py   Grain: shuffling, host shares, padding, packing, resumable iterators
  build.py      python -m twoplayer_jax.data.build --dataset NAME/CONFIG ...
"""

from twoplayer_jax.data import builders, configs, corpus, generate, pipeline, sources
from twoplayer_jax.data.builders import GamePreferences, GameTranscripts
from twoplayer_jax.data.configs import GameConfig, preferences_config, transcripts_config
from twoplayer_jax.data.corpus import TextCorpus
from twoplayer_jax.data.sources import NotBuiltError, RecordError, Source, load
