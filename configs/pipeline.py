"""The whole pipeline on the arithmetic game: pretrain, SFT, reward model, RLHF (claim 1).

  python -m experiments.pipeline --config configs/pipeline.py --workdir workdirs/pipeline
  python -m experiments.pipeline --config configs/pipeline.py:smoke --workdir /tmp/pipeline
"""

import ml_collections


def _stage(steps, learning_rate, batch_size, warmup_steps=20):
  return ml_collections.ConfigDict(dict(steps=steps, learning_rate=learning_rate,
                                        batch_size=batch_size, warmup_steps=warmup_steps))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped).
  c.game = ml_collections.ConfigDict(dict(num_digits=1, operation="add"))  # Arithmetic's.
  c.pretrain_mix = ml_collections.ConfigDict(dict(average=0.5, noisy=0.5))  # Human-human play.
  c.demonstrator_error = 0.2  # SFT demonstrations: right 80% of the time.
  c.preference_mix = ml_collections.ConfigDict(dict(expert=0.4, average=0.4, noisy=0.2))
  c.data_dir = "~/tensorflow_datasets"  # Where the datasets are built and read.
  c.num_examples = ml_collections.ConfigDict(dict(  # Examples built per dataset.
      pretrain=20_000, sft=20_000, reward_model=20_000))
  c.model = ml_collections.ConfigDict(dict(  # Policy and reward model (twoplayer_jax.models).
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=12, dtype="float32"))
  c.pretrain = _stage(steps=800, learning_rate=3e-3, batch_size=64)  # Imitation, both players.
  c.sft = _stage(steps=400, learning_rate=1e-3, batch_size=64)  # Imitation, player two.
  c.reward_model = _stage(steps=600, learning_rate=1e-3, batch_size=64)  # Bradley-Terry,
  c.reward_model_from = "pretrain"  # from this stage's transformer (or "sft").
  # rlhf and rl_payoff: iterations, the optimiser and any twoplayer_jax.train.RLSettings field.
  c.rl = ml_collections.ConfigDict(dict(
      algorithm="grpo", iterations=120, num_openings=16, group_size=8, epochs=2, minibatches=2,
      learning_rate=5e-4, warmup_steps=10, kl_coef=1.0, entropy_coef=0.0))
  c.eval_games = 1024  # Games each policy plays against player one at the end, per seed.
  c.log_every = 20  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 200  # Steps between checkpoints of a stage.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.num_examples.update(pretrain=512, sft=512, reward_model=512)
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
    for name in ("pretrain", "sft", "reward_model"):
      c[name].update(steps=10, batch_size=16, warmup_steps=2)
    c.rl.update(iterations=4, num_openings=4, group_size=4, warmup_steps=1)
    c.eval_games = 64
    c.log_every = 5
    c.checkpoint_every = 5
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/pipeline.py; use '' or 'smoke'")
  return c
