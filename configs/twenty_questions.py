"""Credit assignment across turns in twenty questions (claim 6).

  python -m experiments.twenty_questions --config configs/twenty_questions.py \\
      --workdir workdirs/twenty_questions
  python -m experiments.twenty_questions --config configs/twenty_questions.py:smoke \\
      --workdir /tmp/twenty_questions
"""

import ml_collections


def _variant(algorithm, per_turn_rewards):
  return ml_collections.ConfigDict(dict(algorithm=algorithm, per_turn_rewards=per_turn_rewards))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  c.num_seeds = 3  # Seeds trained side by side (vmapped).
  c.game = ml_collections.ConfigDict(dict(  # Twenty questions' settings (per_turn_rewards aside).
      num_secrets=32, max_questions=8, guess_reward=1.0, question_cost=0.05))
  c.demonstrator_error = 0.3  # The "average" player's share of erring turns.
  c.data_dir = "~/tensorflow_datasets"  # Where the demonstrations are built and read.
  c.num_examples = 20_000  # Games built per demonstrator.
  c.model = ml_collections.ConfigDict(dict(  # Every policy; a value head is added.
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=96, dtype="float32",
      param_dtype="float32", checkpoint=""))
  c.clone = ml_collections.ConfigDict(dict(  # clone_average and clone_expert: imitation.
      steps=600, learning_rate=3e-3, batch_size=32, warmup_steps=20))
  # RL stages from clone_average, rl_<name>: the advantage estimator ("ppo": token-level
  # GAE with the value head; "grpo": one group-normalised advantage per game) and whether
  # the question costs and the reward are paid as they fall due or all at the end.
  c.rl_variants = ml_collections.ConfigDict(dict(
      ppo_terminal=_variant("ppo", False), ppo_per_turn=_variant("ppo", True),
      grpo_terminal=_variant("grpo", False)))
  # Shared by the RL stages: iterations, the optimiser and any train.RLSettings field
  # (algorithm: the variant's).
  c.rl = ml_collections.ConfigDict(dict(
      iterations=100, num_openings=8, group_size=8, epochs=2, minibatches=2,
      learning_rate=5e-4, warmup_steps=5, kl_coef=0.05, entropy_coef=0.0, gamma=1.0, lam=0.95))
  c.eval_games = 512  # Games per seed each policy plays at the end.
  c.log_every = 5  # Steps between metric records (the points of the RL curves).
  c.sync_every = 5  # Steps between waits on the devices.
  c.checkpoint_every = 50  # Steps between checkpoints of a stage (its last is saved too).
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.game.update(num_secrets=8, max_questions=4)
    c.num_examples = 256
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=48)
    c.clone.update(steps=10, batch_size=8, warmup_steps=2)
    c.rl_variants = ml_collections.ConfigDict(dict(
        ppo_terminal=_variant("ppo", False), ppo_per_turn=_variant("ppo", True)))
    c.rl.update(iterations=5, num_openings=4, group_size=4, warmup_steps=1)
    c.eval_games = 32
    c.checkpoint_every = 5
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/twenty_questions.py; use '' or 'smoke'")
  return c
