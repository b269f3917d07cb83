"""Play a batch of games of any registered game (arithmetic by default): scripted player
one against an untrained model and against scripted player-two demonstrators, printing
transcripts and payoffs. The variant names the game, ``smoke`` or both.

  python -m experiments.play --config configs/play.py
  python -m experiments.play --config configs/play.py:leduc_poker
  python -m experiments.play --config configs/play.py:kuhn_poker,smoke --config.num_games=4
"""

import ml_collections

from twoplayer_jax import games


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = [a for a in (arg or "").split(",") if a]
  smoke = "smoke" in variant
  named = [a for a in variant if a != "smoke"]
  unknown = [a for a in named if a not in games.REGISTRY]
  if unknown or len(named) > 1:
    raise ValueError(f"unknown variant {arg!r} of configs/play.py; use '', 'smoke', a "
                     f"registered game ({', '.join(sorted(games.REGISTRY))}) or 'GAME,smoke'")
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed for the model's parameters and for play.
  c.game = named[0] if named else "arithmetic"  # Registered game (games.REGISTRY).
  # The game's settings (its defaults, but 3-digit sums for arithmetic).
  c.game_settings = ml_collections.ConfigDict({"num_digits": 3} if c.game == "arithmetic" else {})
  c.player_one = "human"  # Scripted player one.
  c.demonstrators = ["expert", "average", "noisy"]  # Scripted player-two opponents to compare with.
  c.num_games = 256  # Games per match.
  c.num_shown = 3  # Transcripts printed per match.
  c.temperature = 1.0  # Sampling temperature of the model player (0 = greedy).
  c.model = ml_collections.ConfigDict(dict(  # The untrained transformer player two (or a
      # Hugging Face checkpoint's model); its context (max_length) is the game's view.
      num_layers=2, d_model=128, num_heads=4, d_ff=512, dtype="float32",
      param_dtype="float32", checkpoint=""))
  if smoke:
    c.num_games = 8
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
  return c
