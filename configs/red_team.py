"""Red teaming: a learned attacker against fixed ones, and the defender it trains (claim 5).

  python -m experiments.red_team --config configs/red_team.py --workdir workdirs/red_team
  python -m experiments.red_team --config configs/red_team.py:smoke --workdir /tmp/red_team
"""

import ml_collections


def _rl(iterations, learning_rate, **kwargs):
  """An RL stage's settings (twoplayer_jax.train.RLSettings and its optimiser)."""
  return ml_collections.ConfigDict(dict(
      algorithm="grpo", iterations=iterations, num_openings=8, group_size=8, epochs=2,
      minibatches=2, learning_rate=learning_rate, warmup_steps=5, kl_coef=0.05,
      entropy_coef=0.0, **kwargs))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped).
  c.game = ml_collections.ConfigDict(dict(max_request=12))  # Red team's settings.
  # The SFT transcripts: the scripted disguised attacker (asking for a forbidden word this
  # often, else a benign one) against player two drawn from sft_mix: mostly the keyword
  # filter "naive", with some "noisy" play so that the cloned defender still explores.
  c.forbidden_rate = 0.5
  c.sft_mix = ml_collections.ConfigDict(dict(naive=0.8, noisy=0.2))
  c.data_dir = "~/tensorflow_datasets"  # Where the dataset is built and read.
  c.num_examples = 10_000  # Transcripts built.
  c.model = ml_collections.ConfigDict(dict(  # Attacker and defender (twoplayer_jax.models).
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=40, dtype="float32",
      param_dtype="float32", checkpoint=""))
  # Behaviour cloning of player one's requests (attacker) and player two's replies (defender).
  c.sft = ml_collections.ConfigDict(dict(steps=200, learning_rate=3e-3, batch_size=64,
                                         warmup_steps=20))
  c.rounds = 3  # Rounds of attacker then defender training.
  # Every round's attacker starts from the cloned one and learns against that round's
  # defender, KL to the clone.
  c.attack = _rl(iterations=20, learning_rate=1e-3)
  # The defender continues from the previous round's against a mixture of the learned
  # attacker (weight learned_weight) and the scripted ones, KL to its SFT policy. The
  # control trains for as long against the scripted attackers alone.
  c.defend = _rl(iterations=40, learning_rate=1e-3)
  c.learned_weight = 0.5  # Share of the defender's games played against the learned attacker.
  # Fixed scripted attackers (twoplayer_jax.games.red_team.PLAYER_ONE), with their default
  # settings: the control's opponents and every defender's test.
  c.scripted = ("human", "plain", "disguised")
  c.eval_games = 128  # Games per defender and attacker at the end, per seed.
  c.num_transcripts = 3  # Sampled games of the last learned attacker shown in the summary.
  c.log_every = 10  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 20  # Steps between checkpoints of a stage (its last is saved too).
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.num_examples = 512
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
    c.sft.update(steps=8, batch_size=16, warmup_steps=2)
    c.rounds = 1
    for name in ("attack", "defend"):
      c[name].update(iterations=4, num_openings=4, group_size=4, warmup_steps=1)
    c.eval_games = 32
    c.log_every = 4
    c.checkpoint_every = 4
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/red_team.py; use '' or 'smoke'")
  return c
