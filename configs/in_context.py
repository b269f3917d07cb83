"""In-context learning against the number of distinct training tasks (claim 3).

  python -m experiments.in_context --config configs/in_context.py --workdir workdirs/in_context
  python -m experiments.in_context --config configs/in_context.py:smoke --workdir /tmp/in_context
"""

import ml_collections

# The rule the run is judged by, fixed before it (experiments.in_context.verdict).
RULE = ("Accuracies are greedy, per seed, on eval_games games. (a) Meta-learning: on held-out "
        "tasks with the most examples, the unlimited pool's accuracy minus the smallest "
        "pool's has its 95% Welch t-interval above 0 (different seeds: unpaired). (b) More "
        "examples: the unlimited pool's held-out accuracy with the most examples minus with "
        "the fewest, paired by seed, has its 95% t-interval above 0. Confirmed when (a) and (b) "
        "hold, else not confirmed. Held-out games are the natural game's (the query drawn "
        "uniformly, shown by the examples or not). Inconclusive (not learned) unless every "
        "pool, on its own training games (its tasks, and with query_shown lookups) with the "
        "most examples, reaches learned_fraction of the ideal in-context learner's accuracy "
        "there (mean over seeds); the ideal learner copies a "
        "query letter the examples show and otherwise guesses uniformly among the letters no "
        "example's output takes, the best any learner does on a task it never saw.")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped), per task pool.
  # The in_context game's rule family: single-letter lookups in a substitution of 8 letters.
  c.game = ml_collections.ConfigDict(dict(word_length=1, num_letters=8, task_seed=0))
  c.num_tasks = (8, 256, 0)  # Distinct training tasks per pool; 0: unlimited (20,160).
  c.num_examples = (2, 4, 6, 8)  # Examples in the opening, trained on and played.
  c.games_per_dataset = 20_000  # Expert demonstrations per (pool, num_examples) dataset.
  # Whether the demonstrations are lookups: each query one of its examples' inputs. In the
  # natural game the examples show the query in 25% (k = 2) to 66% (k = 8) of the games
  # and the rest can only be answered from memory, which drowns the lookup's signal: in
  # a probe (unlimited pool, 3,000 steps) the natural demonstrations taught no lookup at
  # all (held out 0.12 at k = 8, chance 0.125).
  c.query_shown = True
  c.data_dir = "~/tensorflow_datasets"  # Where the datasets are built and read.
  # Training games are packed into rows of row_length tokens, several to a row (each
  # attending only to itself): about 5 games of 2 to 8 examples to a row of 128.
  c.row_length = 128
  # Rows per seed per step, and steps per pool. In a probe of the unlimited pool on
  # lookups, 16 rows for 3,000 steps taught one seed of three the lookup (1.0 on held-out
  # lookups at k = 8) and the others half of it (0.33, 0.68); 8 rows for twice the steps
  # read as many tokens.
  c.batch_size = 8
  c.steps = 6000
  c.learning_rate = 2e-3  # Peak AdamW rate, cosine decay to 0.
  c.warmup_steps = 100
  c.model = ml_collections.ConfigDict(dict(  # max_length: a row, and the longest game.
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=128, dtype="float32",
      param_dtype="float32", checkpoint=""))
  c.eval_games = 1024  # Greedy games per seed, per number of examples and task set.
  c.verdict_settings = ml_collections.ConfigDict(dict(learned_fraction=0.9))
  c.rule = RULE
  c.log_every = 50  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 1000  # Steps between checkpoints of a stage.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.num_tasks = (8, 0)
    c.num_examples = (2, 4)
    c.games_per_dataset = 200
    c.steps = 20
    c.row_length = 48
    c.batch_size = 4
    c.warmup_steps = 2
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=48)
    c.eval_games = 32
    c.log_every = 10
    c.checkpoint_every = 10
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/in_context.py; use '' or 'smoke'")
  return c
