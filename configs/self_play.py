"""Both seats learn: naive, fictitious and regularised self-play on three language games.

  python -m experiments.self_play --config configs/self_play.py --workdir workdirs/self_play
  python -m experiments.self_play --config configs/self_play.py:smoke --workdir /tmp/self_play
"""

import ml_collections

# The rule the run is judged by, fixed before it (experiments.self_play.verdict).
RULE = ("Cycling: in the zero-sum game (red_team), regularised self-play (mmd) cycles less "
        "than naive self-play: confirmed when the upper end of mmd's 95% t-interval over "
        "seeds of the cycling index is below the lower end of self_play's. Drift: in every "
        "game, naive self-play drifts further from the clone than mmd: confirmed when the "
        "lower end of self_play's interval of the KL from the clone (nats per game, both "
        "seats) is above the upper end of mmd's. Each is inconclusive unless cloning worked "
        "in distribution: in every game the clone's self-play payoff of each seat is within "
        "clone_tolerance of the teachers' payoff against each other.")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped).
  # No dataset: the teachers' games are played in memory. Kept because every
  # experiment's launcher sets it (tests/conftest.py's run_smoke).
  c.data_dir = "~/tensorflow_datasets"
  c.games = ("red_team", "bargaining", "twenty_questions")
  # Per game: its settings, and the scripted teachers of seat one and two whose games
  # the clone imitates (games.player names; their settings). Games are kept short (at
  # most 4 bargaining turns, 6 questions for 16 secrets: the expert needs 5). Twenty
  # questions shows player one its secret as private text, so that a model can play it.
  c.red_team = ml_collections.ConfigDict(dict(
      settings={}, teachers=("disguised", "naive"),
      teacher_settings=({"forbidden_rate": 0.5}, {})))
  c.bargaining = ml_collections.ConfigDict(dict(
      settings={"max_rounds": 4}, teachers=("human", "average"), teacher_settings=({}, {})))
  c.twenty_questions = ml_collections.ConfigDict(dict(
      settings={"num_secrets": 16, "max_questions": 6, "secret_in_private": True},
      teachers=("human", "average"),
      teacher_settings=({}, {})))
  # One architecture for every game and method (context per game). One policy plays
  # both seats; it tells them apart from its view.
  c.model = ml_collections.ConfigDict(dict(
      num_layers=2, d_model=64, num_heads=4, d_ff=256, dtype="float32"))
  # Behaviour cloning of both seats of the teachers' games, played at every step.
  c.clone = ml_collections.ConfigDict(dict(steps=300, batch_size=64, learning_rate=3e-3,
                                           warmup_steps=10))
  # The methods, each from the clone with equal iterations and games (c.rl).
  #   self_play  naive: one policy, both seats, no KL;
  #   fsp        fictitious self-play: the learner (seats taking turns) against a
  #              member drawn uniformly from its snapshots so far;
  #   mmd        magnetic mirror descent: self-play with a KL to the clone (the magnet).
  c.methods = ("self_play", "fsp", "mmd")
  c.rl = ml_collections.ConfigDict(dict(  # train.RLSettings shared by the methods.
      iterations=120, algorithm="grpo", num_openings=8, group_size=8, epochs=1,
      minibatches=1, learning_rate=1e-3, warmup_steps=5))
  c.mmd = ml_collections.ConfigDict(dict(kl_coef=0.1))
  # Every method keeps its learner every `snapshot_every` iterations (and its start):
  # FSP's population, and the earlier checkpoints of every method's cross-play.
  c.snapshot_every = 15
  c.snapshot_games = 32  # Games per pairing of snapshots (per seed).
  c.eval_games = 128  # Games per pairing of final policies and scripted players (per seed).
  c.verdict = ml_collections.ConfigDict(dict(clone_tolerance=0.15))
  c.rule = RULE
  c.num_transcripts = 2  # Sampled self-play games of each final policy in the summary.
  c.log_every = 10  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 30  # Steps between checkpoints of a stage (its last is saved too).
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    c.clone.update(steps=4, batch_size=16, warmup_steps=1)
    c.methods = ("fsp", "mmd")  # Naive self-play is mmd's iteration without the KL.
    c.rl.update(iterations=4, num_openings=2, group_size=4, warmup_steps=1)
    c.snapshot_every = 2
    c.snapshot_games = 4
    c.eval_games = 8
    c.log_every = 2
    c.sync_every = 2
    c.checkpoint_every = 2
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/self_play.py; use '' or 'smoke'")
  return c
