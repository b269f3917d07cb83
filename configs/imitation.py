"""Behaviour cloning on a game-transcript dataset: SFT of player two by default.

  python -m experiments.imitation --config configs/imitation.py --workdir /tmp/sft
  python -m experiments.imitation --config configs/imitation.py:smoke --workdir /tmp/sft \\
      --config.mesh.data=8
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of the parameters and of the data order.
  c.dataset = "game_transcripts/arithmetic_expert"  # TFDS name/config of the transcripts.
  c.data_dir = "~/tensorflow_datasets"  # Where datasets are built and read.
  c.num_examples = 20_000  # Examples built when the dataset is missing.
  c.roles = (2,)  # Players whose tokens are cloned: (2,) SFT, (1, 2) pre-training.
  c.opening_loss = False  # Whether the opening's tokens are cloned too.
  c.seq_len = 32  # Tokens per sequence; at least the game's max_length.
  c.batch_size = 64  # Global batch, split over processes and the data axes.
  c.num_steps = 2_000  # Updates in all.
  c.optimizer = ml_collections.ConfigDict(dict(  # AdamW, warmup and cosine decay.
      learning_rate=3e-3, warmup_steps=100, clip_norm=1.0, weight_decay=0.0))
  c.model = ml_collections.ConfigDict(dict(  # The transformer (twoplayer_jax.models).
      num_layers=2, d_model=128, num_heads=4, d_ff=512, max_length=32, dtype="float32",
      param_dtype="float32", checkpoint=""))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  c.log_every = 50  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 500  # Steps between checkpoints.
  c.keep_checkpoints = 3  # Checkpoints kept.
  c.eval_games = 512  # Games played greedily by the trained player at the end.
  if arg == "smoke":
    c.num_examples = 512
    c.batch_size = 16
    c.num_steps = 40
    c.optimizer.warmup_steps = 5
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
    c.log_every = 5
    c.checkpoint_every = 10
    c.eval_games = 64
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/imitation.py; use '' or 'smoke'")
  return c
