"""Speed of one GRPO iteration on the arithmetic game, and of seeds trained side by side.

  python -m benchmarks.rl_iteration [--json PATH] [--repeats N]

8 openings x 8 continuations = 64 games per iteration, answers of up to 8 tokens (an
untrained learner fills them), a 2-layer d=128 learner with one gradient step per
iteration: play, score, group advantages and the update, all in one jitted function.
``benchmarks.versus_trl`` times it against TRL's GRPOTrainer on the same work.
``seeds_speedup``: 8 seeds trained by ``vmap`` inside one jit, against the same 8
iterations run one after another. With ``--devices N`` (N fake CPU devices, set before JAX
starts) the vmapped seeds are split over the devices, as a TPU user would shard them.
"""

import argparse
import os

PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--json", help="write the figures to this JSON file")
PARSER.add_argument("--repeats", type=int, default=20)
PARSER.add_argument("--devices", type=int, default=1, help="fake CPU devices for the seeds")
ARGS = PARSER.parse_args() if __name__ == "__main__" else None
if ARGS and ARGS.devices > 1:
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + f" --xla_force_host_platform_device_count={ARGS.devices}")

import jax  # noqa: E402  (after the device count is set)

from benchmarks.common import report, time_call  # noqa: E402
from twoplayer_jax import games, models, sharding, train  # noqa: E402

GAME = games.make("arithmetic", num_digits=3, answer_slack=3)  # Replies of up to 8 tokens.
MODEL = models.make(models.TransformerConfig(num_layers=2, d_model=128, num_heads=4, d_ff=512,
                                             max_length=GAME.max_length))
SETTINGS = train.RLSettings(algorithm="grpo", num_openings=8, group_size=8)
GAMES = SETTINGS.num_openings * SETTINGS.group_size  # Per iteration.
SEEDS = 8


def learner():
  """The optimiser, the (unjitted) iteration and a fresh state of the learner."""
  tx = train.optimizer(1e-4, 1000)
  iteration = train.make_iteration(GAME, MODEL, tx, games.player("arithmetic", 1, "human", GAME),
                                   SETTINGS)
  return tx, iteration, train.create(MODEL.init(jax.random.key(0)), tx, jax.random.key(1))


def main():
  args = ARGS
  tx, iteration, state = learner()
  fixed = train.Frozen()
  step = jax.jit(iteration)  # Not donated: the benchmark calls it on one state repeatedly.
  first, median = time_call(step, state, fixed, repeats=args.repeats)
  _, metrics = step(state, fixed)
  tokens = float(metrics["game_length"]) * GAMES

  states = jax.vmap(lambda k: train.create(MODEL.init(k), tx, k))(
      jax.random.split(jax.random.key(2), SEEDS))
  one_by_one = lambda states: [step(jax.tree.map(lambda x: x[i], states), fixed)
                               for i in range(SEEDS)]
  _, sequential = time_call(one_by_one, states, repeats=args.repeats)
  # The seed axis split over the devices (all of them on the mesh's data axis).
  states = jax.device_put(states, sharding.batch_sharding(sharding.make_mesh()))
  _, vmapped = time_call(jax.jit(jax.vmap(iteration, in_axes=(0, None))), states, fixed,
                         repeats=args.repeats)
  report({
      "backend": jax.default_backend(),
      "devices": jax.device_count(),
      "device": str(jax.devices()[0].device_kind),
      "games_per_s": GAMES / median,
      "tokens_per_s": tokens / median,
      "s_per_iteration": median,
      "compile_s": first - median,
      "seeds": SEEDS,
      "seeds_vmapped_s": vmapped,
      "seeds_sequential_s": sequential,
      "seeds_speedup": sequential / vmapped,
  }, args.json)


if __name__ == "__main__":
  main()
