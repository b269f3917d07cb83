"""One player two on a mixture of games against specialists of each (claim 8).

  python -m experiments.multi_task --config configs/multi_task.py --workdir workdirs/multi_task
  python -m experiments.multi_task --config configs/multi_task.py:smoke --workdir /tmp/multi_task
"""

import ml_collections

# The rule the run is judged by, fixed before it (experiments.multi_task.verdict).
RULE = ("Per game and model size, the generalist's greedy payoff on that game minus the "
        "specialist's, with its 95% Welch t-interval over seeds (separate runs: unpaired): "
        "transfer when the interval is above 0, interference when below, no measurable "
        "difference otherwise. A (game, size) cell is judged only if its specialist reaches "
        "learned_fraction of the game's expert payoff (mean over seeds); else it is not "
        "learned. Confirmed (the mixture transfers or interferes, measurably) when some "
        "judged cell shows transfer or interference, not confirmed when none does, and "
        "inconclusive (not learned) when no cell is judged.")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped), per policy.
  # The games mixed, each with its settings; player two of each is cloned from its expert.
  # in_context's 8 tasks can be learned at this budget (tasks told apart by the examples);
  # learning to copy from them, for unlimited tasks, is not (see RESULTS.md, in_context).
  c.games = ml_collections.ConfigDict(dict(
      arithmetic=dict(num_digits=2, answer_format="qca"),
      facts=dict(num_entities=64, num_seen=64),
      in_context=dict(word_length=1, num_examples=6, num_tasks=8)))
  c.games_per_dataset = 20_000  # Expert games per specialist's dataset (and per game mixed).
  c.data_dir = "~/tensorflow_datasets"  # Where the datasets are built and read.
  # Each specialist's SFT steps; the generalist trains len(games) times as many on the
  # mixture (equal weights), so it sees as many games of each game as its specialist.
  c.steps = 1200
  c.batch_size = 64  # Games per seed per step.
  c.learning_rate = 2e-3  # Peak AdamW rate, cosine decay to 0.
  c.warmup_steps = 50
  # Model sizes, each a TransformerConfig (max_length: the mixture's longest game); they
  # are compared smallest first (by layers, then width).
  c.sizes = ml_collections.ConfigDict(dict(
      small=dict(num_layers=2, d_model=32, num_heads=2, d_ff=128, max_length=40,
                 dtype="float32"),
      base=dict(num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=40,
                dtype="float32")))
  c.eval_games = 1024  # Greedy games per seed and game.
  c.verdict_settings = ml_collections.ConfigDict(dict(learned_fraction=0.5))
  c.rule = RULE
  c.log_every = 50  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 1000  # Steps between checkpoints of a stage.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.games = ml_collections.ConfigDict(dict(
        arithmetic=dict(num_digits=1), in_context=dict(word_length=1, num_examples=2)))
    c.games_per_dataset = 200
    c.steps = 10
    c.batch_size = 16
    c.warmup_steps = 2
    c.sizes = ml_collections.ConfigDict(dict(
        small=dict(num_layers=1, d_model=16, num_heads=2, d_ff=32, max_length=24)))
    c.eval_games = 32
    c.log_every = 5
    c.checkpoint_every = 10
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/multi_task.py; use '' or 'smoke'")
  return c
