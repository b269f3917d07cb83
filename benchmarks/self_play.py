"""Cost of a self-play iteration against a one-learner iteration on the same games.

  python -m benchmarks.self_play [--json PATH] [--repeats N] [--rounds R]

Both iterations play the same games between two model players of one architecture (so
play costs the same) and differ in who learns: one seat against a fixed model opponent
(``play="opponent"``), or one policy from both seats' tokens (``play="self_play"``).
``red_team`` has no private text, so both seats of one policy read the same view and a
self-play update reads each transcript once; ``bargaining`` gives each seat its own
values as private text, so the update reads each transcript once per view. Each round
times both iterations one after the other; the figures are medians over rounds.
"""

import argparse
import statistics

import jax

from benchmarks.common import report, time_call
from twoplayer_jax import games, models, players, train

PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--json", help="write the figures to this JSON file")
PARSER.add_argument("--repeats", type=int, default=10)
PARSER.add_argument("--rounds", type=int, default=3)
SETTINGS = dict(algorithm="grpo", num_openings=8, group_size=8)


def iterations(name: str):
  """The jitted one-learner and self-play iterations of game ``name``, and their inputs."""
  game = games.make(name)
  model = models.make(models.TransformerConfig(
      num_layers=2, d_model=128, num_heads=4, d_ff=512,
      max_length=game.private_length + game.max_length))
  params = model.init(jax.random.key(0))
  tx = train.optimizer(1e-4, 1000)
  state = train.create(params, tx, jax.random.key(1))
  one = train.make_iteration(game, model, tx, players.model_player(model, game, seat=1),
                             train.RLSettings(play="opponent", role=2, **SETTINGS))
  both = train.make_iteration(game, model, tx, None,
                              train.RLSettings(play="self_play", **SETTINGS))
  return jax.jit(one), jax.jit(both), state, train.Frozen(opponent=params)


def main():
  args = PARSER.parse_args()
  figures = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind)}
  for name in ("red_team", "bargaining"):
    one, both, state, fixed = iterations(name)
    ratios, one_s, both_s = [], [], []
    for _ in range(args.rounds):
      one_s.append(time_call(one, state, fixed, repeats=args.repeats)[1])
      both_s.append(time_call(both, state, train.Frozen(), repeats=args.repeats)[1])
      ratios.append(both_s[-1] / one_s[-1])
    figures.update({
        f"{name}_one_learner_s": statistics.median(one_s),
        f"{name}_self_play_s": statistics.median(both_s),
        f"self_play_vs_one_learner_{name}": statistics.median(ratios),
        f"{name}_ratio_per_round": [round(r, 3) for r in ratios],
    })
  report(figures, args.json)


if __name__ == "__main__":
  main()
