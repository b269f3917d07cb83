"""Play's throughput for an imported Hugging Face model beside the library's own
transformer of the same size: ``python -m benchmarks.pretrained``.

  python -m benchmarks.pretrained [--json PATH] [--rounds N] [--batch B]

The game and opponent are ``benchmarks.rollout``'s (6-digit addition, 16 tokens of
play). The imported model is a Llama of the native model's depth, width and heads
(2 layers, d=128, 4 heads; SwiGLU hidden width 344, so its MLP holds the ReLU MLP's
parameters), written with ``hf.save`` as a Hugging Face checkpoint with the test
suite's byte-level tokenizer and read back with ``models.from_checkpoint``, as a user's
would be: once with that tokenizer's 320 tokens, once with a 32,000-token embedding (the
bridge computes the 260 game symbols' logits only, so the vocabulary's size should
barely matter). Each round times every model (median of ``--repeats`` calls after a
compiling one); the figures are medians over rounds and the ratios are per round.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

import jax

from benchmarks.common import report
from benchmarks.rollout import GAME, SMALL, bench_play
from twoplayer_jax import models
from twoplayer_jax.models import hf

TOKENIZER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "tests", "pretrained", "tokenizer.json")


def checkpoint(directory: str, vocab_size: int) -> models.DecoderConfig:
  """A random Llama of ``SMALL``'s size saved in ``directory`` as Hugging Face files;
  returns its config as ``from_checkpoint`` reads it back."""
  config = models.DecoderConfig(
      family="llama", vocab_size=vocab_size, num_layers=SMALL.num_layers,
      d_model=SMALL.d_model, num_heads=SMALL.num_heads, num_kv_heads=SMALL.num_heads,
      head_dim=SMALL.head_dim, d_ff=344, max_length=GAME.max_length, norm_eps=1e-5)
  hf.save(directory, config, models.make(config).init(jax.random.key(0)))
  shutil.copy(TOKENIZER, directory)
  return models.from_checkpoint(directory, max_length=GAME.max_length)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--json", help="write the figures to this JSON file")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--batch", type=int, default=64)
  args = parser.parse_args()
  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    configs = {"native": SMALL}
    for vocab_size in (320, 32_000):
      configs[f"llama_v{vocab_size}"] = checkpoint(os.path.join(tmp, str(vocab_size)), vocab_size)
    params = {name: (hf.load(c.checkpoint, c) if name != "native" else None)
              for name, c in configs.items()}
    rounds = {name: [] for name in configs}
    for _ in range(args.rounds):
      for name, config in configs.items():
        rounds[name].append(bench_play(config, args.batch, args.repeats,
                                       params=params[name])["tokens_per_s"])
  figures = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
             "batch": args.batch}
  for name, values in rounds.items():
    figures[f"play_{name}_tokens_per_s"] = statistics.median(values)
  for name in configs:
    if name != "native":
      figures[f"{name}_vs_native"] = statistics.median(
          [a / b for a, b in zip(rounds[name], rounds["native"])])
  figures["wall_s"] = time.perf_counter() - t0
  report(figures, args.json)


if __name__ == "__main__":
  main()
