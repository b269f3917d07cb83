"""Plays matches of a game between scripted and model players and prints the payoffs.

  python -m experiments.play --config configs/play.py
  python -m experiments.play --config configs/play.py --config.model.checkpoint=Qwen2-0.5B
"""

from absl import app
from absl import flags
import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, players, rollout, vocab
from twoplayer_jax.train import stages

def main(argv):
  del argv
  c = launch.CONFIG.value
  print(c)
  game = games.make(c.game, **c.game_settings)
  model = common.model(c.model, max_length=game.private_length + game.max_length)
  start = stages.pretrained_start(model, 1)  # A checkpoint's parameters, or fresh ones.
  params = model.init(jax.random.key(c.seed)) if start is None else jax.tree.map(
      lambda x: x[0], start)
  one = games.player(c.game, 1, c.player_one, game)
  opponents = {"untrained model": (players.model_player(model, game, c.temperature, seat=2),
                                   params)}
  opponents.update({name: (games.player(c.game, 2, name, game), None) for name in c.demonstrators})
  key = jax.random.key(c.seed + 1)
  print(f"{'player two':<18} {'payoff one':>10} {'payoff two':>10} {'tokens':>7}")
  for name, (two, two_params) in opponents.items():
    traj = jax.device_get(rollout.play(game, (one, two), (None, two_params), key, c.num_games))
    payoff = np.mean(traj.returns, axis=0)
    tokens = np.mean(traj.length - traj.opening_length)
    print(f"{name:<18} {payoff[0]:>10.3f} {payoff[1]:>10.3f} {tokens:>7.1f}")
    for i in range(c.num_shown):
      print("  " + vocab.render(traj.tokens[i], traj.owner[i]).replace("\n", "\n  "))


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
