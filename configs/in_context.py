"""In-context learning against the number of distinct training tasks (claim 3).

  python -m experiments.in_context --config configs/in_context.py --workdir workdirs/in_context
  python -m experiments.in_context --config configs/in_context.py:smoke --workdir /tmp/in_context
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped), per task pool.
  c.game = ml_collections.ConfigDict(dict(  # The in_context game's rule family.
      word_length=2, num_letters=8, task_seed=0))
  c.num_tasks = (4, 64, 4096, 0)  # Distinct training tasks per pool; 0: unlimited.
  c.num_examples = (0, 1, 2, 4, 6)  # Examples in the opening, trained on and played.
  c.games_per_dataset = 3_000  # Expert demonstrations per (pool, num_examples) dataset.
  c.data_dir = "~/tensorflow_datasets"  # Where the datasets are built and read.
  c.steps = 800  # SFT steps per pool.
  c.batch_size = 64  # Games per seed per step.
  c.learning_rate = 2e-3  # Peak AdamW rate, cosine decay to 0.
  c.warmup_steps = 50
  c.model = ml_collections.ConfigDict(dict(  # max_length: the longest game played.
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=48, dtype="float32"))
  c.eval_games = 512  # Greedy games per seed per number of examples.
  c.log_every = 50  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 400  # Steps between checkpoints of a stage.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_tasks = (4, 0)
    c.num_examples = (1, 4)
    c.games_per_dataset = 200
    c.steps = 20
    c.batch_size = 16
    c.warmup_steps = 2
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=40)
    c.eval_games = 32
    c.log_every = 10
    c.checkpoint_every = 10
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/in_context.py; use '' or 'smoke'")
  return c
