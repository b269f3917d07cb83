"""Throughput of play(): a model player two against the scripted arithmetic questioner.

  python -m benchmarks.rollout [--json PATH] [--repeats N]

The 6-digit arithmetic game has 16-token openings and room for 16 tokens of play, which
an untrained model fills (it rarely ends its turn). Figures are medians of ``--repeats``
timed calls after the first (compiling) one; tokens are those written in play.
``loop_*`` drives the same games one token per call of a jitted ``advance`` from Python:
the way not to do it, for comparison.
"""

import argparse
import time

import jax
import numpy as np

from benchmarks.common import report, time_call
from twoplayer_jax import games, models, players, rollout

GAME = games.make("arithmetic", num_digits=6, answer_slack=8)
SMALL = models.TransformerConfig(num_layers=2, d_model=128, num_heads=4, d_ff=512,
                                 max_length=GAME.max_length)
LARGE = models.TransformerConfig(num_layers=6, d_model=512, num_heads=8, d_ff=2048,
                                 max_length=GAME.max_length)


def setup(config, params=None):
  """The scripted questioner and a model player two of ``config`` (``params``, or fresh
  ones)."""
  model = models.make(config)
  params = model.init(jax.random.key(0)) if params is None else params
  pair = (games.player("arithmetic", 1, "human", GAME), players.model_player(model, GAME))
  return pair, (None, params)


def bench_play(config, batch, repeats, params=None):
  pair, params = setup(config, params)
  fn = lambda key: rollout.play(GAME, pair, params, key, batch)
  first, median = time_call(fn, jax.random.key(1), repeats=repeats)
  traj = fn(jax.random.key(1))
  tokens = int(np.sum(traj.length - traj.opening_length))
  return {"games_per_s": batch / median, "tokens_per_s": tokens / median,
          "compile_s": first - median}


def bench_loop(config, batch, repeats):
  pair, params = setup(config)
  start = jax.jit(rollout.start, static_argnums=(0, 1, 4))

  @jax.jit
  def advance(params, table, key):
    return rollout.advance(GAME, pair, params, table, jax.random.split(key, (batch, 2)))

  def run(key):
    table = start(GAME, pair, params, key, batch)
    while not bool(table.state.done.all()):
      key, sub = jax.random.split(key)
      table = advance(params, table, sub)
    return table

  _, median = time_call(run, jax.random.key(1), repeats=repeats)
  table = run(jax.random.key(1))
  tokens = int(np.sum(table.state.length - table.state.opening_length))
  return {"games_per_s": batch / median, "tokens_per_s": tokens / median}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--json", help="write the figures to this JSON file")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  figures = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind)}
  t0 = time.perf_counter()
  for batch in (1, 64, 512):
    for name, value in bench_play(SMALL, batch, args.repeats).items():
      figures[f"play_small_b{batch}_{name}"] = value
  for name, value in bench_play(LARGE, 64, args.repeats).items():
    figures[f"play_large_b64_{name}"] = value
  for name, value in bench_loop(SMALL, 64, args.repeats).items():
    figures[f"loop_small_b64_{name}"] = value
  figures["compile_s"] = figures["play_small_b64_compile_s"]
  figures["speedup_b64"] = (figures["play_small_b64_tokens_per_s"]
                            / figures["loop_small_b64_tokens_per_s"])
  figures["wall_s"] = time.perf_counter() - t0
  report(figures, args.json)


if __name__ == "__main__":
  main()
