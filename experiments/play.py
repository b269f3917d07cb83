"""Plays matches of a game between scripted and model players and prints the payoffs.

  python -m experiments.play --config configs/play.py
"""

from absl import app
from absl import flags
import jax
import numpy as np
from ml_collections import config_flags

from twoplayer_jax import games, models, players, rollout, vocab

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config module.", lock_config=True)


def main(argv):
  del argv
  c = _CONFIG.value
  print(c)
  game = games.make(c.game, **c.game_settings)
  model = models.make(models.TransformerConfig(
      **c.model, max_length=game.private_length + game.max_length))
  params = model.init(jax.random.key(c.seed))
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
