"""Hallucination as a cloned habit of always answering, in the facts game (claim 4).

  python -m experiments.hallucination --config configs/hallucination.py \\
      --workdir workdirs/hallucination
  python -m experiments.hallucination --config configs/hallucination.py:smoke \\
      --workdir /tmp/hallucination
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped).
  c.game = ml_collections.ConfigDict(dict(  # The facts game trained on (ask="all").
      num_entities=256, num_seen=64, num_values=8, seed=0))
  c.new_names = ml_collections.ConfigDict(dict(  # A knowledge base of names never trained on.
      num_entities=256, seed=1))
  c.demonstrator_error = 0.0  # SFT demonstrators' error on seen entities.
  # Share of SFT demonstrations by the expert, who abstains on unseen entities; the rest
  # always answer. Without a few abstentions, sampling never writes "idk" for RL to find.
  c.abstain_share = 0.1
  c.wrong_costs = (0.0, 0.5, 1.0, 2.0)  # The RL payoff's price c of a wrong answer.
  c.data_dir = "~/tensorflow_datasets"  # Where the SFT dataset is built and read.
  c.num_examples = 20_000  # SFT demonstrations built.
  c.model = ml_collections.ConfigDict(dict(  # The policy (twoplayer_jax.models).
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=32, dtype="float32"))
  c.sft = ml_collections.ConfigDict(dict(steps=1000, learning_rate=3e-3, batch_size=64,
                                         warmup_steps=20))
  # One stage per cost: iterations, the optimiser and any twoplayer_jax.train.RLSettings field.
  c.rl = ml_collections.ConfigDict(dict(
      algorithm="grpo", iterations=100, num_openings=16, group_size=8, epochs=2, minibatches=2,
      learning_rate=1e-3, warmup_steps=5, kl_coef=0.05, entropy_coef=0.0))
  c.eval_games = 2048  # Games per seed on the training questions, and on new names.
  c.log_every = 20  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 100  # Steps between checkpoints of a stage (its last is saved too).
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.game.update(num_entities=32, num_seen=8)
    c.new_names.num_entities = 32
    c.wrong_costs = (1.0,)
    c.num_examples = 512
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
    c.sft.update(steps=10, batch_size=16, warmup_steps=2)
    c.rl.update(iterations=5, num_openings=4, group_size=4, warmup_steps=1)
    c.eval_games = 64
    c.log_every = 5
    c.checkpoint_every = 5
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/hallucination.py; use '' or 'smoke'")
  return c
