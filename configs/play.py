"""Play a batch of arithmetic games: scripted player one against an untrained model and
against scripted player-two demonstrators, printing transcripts and payoffs.

  python -m experiments.play --config configs/play.py
  python -m experiments.play --config configs/play.py:smoke --config.num_games=4
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed for the model's parameters and for play.
  c.game = "arithmetic"  # Registered game name (twoplayer_jax.games.REGISTRY).
  c.game_settings = ml_collections.ConfigDict({"num_digits": 3})  # The game's settings.
  c.player_one = "human"  # Scripted player one.
  c.demonstrators = ["expert", "average", "noisy"]  # Scripted player-two opponents to compare with.
  c.num_games = 256  # Games per match.
  c.num_shown = 3  # Transcripts printed per match.
  c.temperature = 1.0  # Sampling temperature of the model player (0 = greedy).
  c.model = ml_collections.ConfigDict(dict(  # The untrained transformer player two.
      num_layers=2, d_model=128, num_heads=4, d_ff=512, max_length=64, dtype="float32"))
  if arg == "smoke":
    c.num_games = 8
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/play.py; use '' or 'smoke'")
  return c
