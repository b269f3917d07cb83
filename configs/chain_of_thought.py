"""Chain of thought: SFT on Q-C-A against Q-A demonstrations at equal token budget (claim 2).

  python -m experiments.chain_of_thought --config configs/chain_of_thought.py \\
      --workdir workdirs/chain_of_thought
  python -m experiments.chain_of_thought --config configs/chain_of_thought.py:smoke \\
      --workdir /tmp/chain_of_thought
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped), per format.
  c.operation = "add"  # Arithmetic's operation, "add" or "mul".
  c.train_digits = (1, 2, 3)  # Digit counts of the training problems, one dataset each...
  c.train_examples = (1_000, 5_000, 20_000)  # ...of these many expert demonstrations.
  c.eval_digits = (1, 2, 3, 4, 5)  # Digit counts played at the end, beyond training too.
  c.data_dir = "~/tensorflow_datasets"  # Where the datasets are built and read.
  # Padded sequence tokens (steps x batch_size x seq_len) each seed of each format trains
  # on; steps = token_budget // (batch_size * seq_len of the format's longest game).
  c.token_budget = 3_000_000
  c.batch_size = 64  # Games per seed per step.
  c.learning_rate = 2e-3  # Peak AdamW rate, cosine decay to 0 over the format's steps.
  c.warmup_steps = 50
  c.model = ml_collections.ConfigDict(dict(  # max_length: the longest evaluated game.
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=72, dtype="float32",
      param_dtype="float32", checkpoint=""))
  c.eval_games = 512  # Greedy games per seed per digit count.
  c.log_every = 50  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 100  # Steps between checkpoints of a stage.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 3
    c.train_digits = (2,)
    c.train_examples = (400,)
    c.eval_digits = (2, 3)
    c.token_budget = 16 * 33 * 30  # 30 Q-C-A steps of 16 games of 33 tokens.
    c.batch_size = 16
    c.warmup_steps = 2
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=48)
    c.eval_games = 32
    c.log_every = 10
    c.checkpoint_every = 10
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/chain_of_thought.py; use '' or 'smoke'")
  return c
