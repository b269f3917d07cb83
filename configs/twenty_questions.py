"""Credit assignment across turns in twenty questions (claim 6).

  python -m experiments.twenty_questions --config configs/twenty_questions.py \\
      --workdir workdirs/twenty_questions
  python -m experiments.twenty_questions --config configs/twenty_questions.py:smoke \\
      --workdir /tmp/twenty_questions
"""

import ml_collections

# The rule the run is judged by, fixed before it (experiments.twenty_questions.verdict).
RULE = ("Every RL variant of a horizon starts from the same seed's clone of the lopsided "
        "demonstrator (its value head warmed up), so variants pair by seed; each comparison "
        "is the paired per-seed difference with its 95% t-interval over seeds. The target is "
        "target_share of the expert's payoff (binary search, played on eval_games * num_seeds"
        " games). A seed's iterations to the target: the first logged RL iteration from which"
        " its payoff, averaged over the last curve_window records, stays at or above the "
        "target to the end of the stage (a passing excursion of a noisy curve does not "
        "count); not reached (ending below it) counts as the stage's iterations (so an "
        "estimator that never reaches it is credited with no more than the budget). At the "
        "longest horizon: (a) the turn-level estimator (rewards to go per turn, shaped "
        "rewards) reaches the target in fewer iterations than the sequence-level one (GRPO): "
        "the sequence's iterations minus the turn's has its interval above 0; (b) its final "
        "payoff (eval_games per seed, sampled) minus the sequence-level one's has its "
        "interval above 0. Confirmed when (a) and (b) hold, else not confirmed. Inconclusive "
        "(not learned) unless at every horizon the clone learned its demonstrator: its "
        "sampled payoff (mean over seeds) within learned_tolerance of the lopsided "
        "demonstrator's. The token-level estimator (PPO, GAE) and the shorter horizon are "
        "reported as measured, with no verdict.")


def _variant(algorithm, shaping):
  return ml_collections.ConfigDict(dict(algorithm=algorithm, shaping=shaping))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  # Seeds trained side by side (vmapped): 3, as 5 would not fit 30 minutes on 2 CPU cores
  # (about 20 with 3: the clones' 800 steps and 100 RL iterations at N = 256 dominate).
  c.num_seeds = 3
  # The horizons: twenty questions' settings per number of secrets N. The question cost is
  # 1 / (2 log2 N) of the guess's reward (1), so that the expert (log2 N questions, then the
  # right guess) is paid 0.5 at every horizon; max_questions lets the lopsided player
  # finish (its longest search at N = 16 asks 9 questions, at N = 256 19); no slack in a
  # turn's tokens beyond the longest question keeps the transcripts short (94 and 205).
  c.horizons = ml_collections.ConfigDict(dict(
      n16=dict(num_secrets=16, max_questions=10, question_cost=0.125, turn_slack=0),
      n256=dict(num_secrets=256, max_questions=20, question_cost=0.0625, turn_slack=0)))
  # The demonstrator cloned asks at a quarter of the interval in this share of its
  # questions (at the half otherwise): about 0.19 log2 N questions more than the expert,
  # payoff about 0.41 where the expert's is 0.5.
  c.lopsided_rate = 0.8
  c.data_dir = "~/tensorflow_datasets"  # Where the demonstrations are built and read.
  c.num_examples = 8_000  # Demonstrations per horizon.
  c.model = ml_collections.ConfigDict(dict(  # Every policy; a value head is added.
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=256, dtype="float32",
      param_dtype="float32", checkpoint=""))
  c.clone = ml_collections.ConfigDict(dict(  # Imitation of the lopsided demonstrator.
      steps=800, learning_rate=3e-3, batch_size=32, warmup_steps=20))
  # The value head alone learns from the clone's games (PPO's value loss, shaped rewards;
  # the policy is the clone's), for every variant's start: PPO's critic starts warm.
  c.value_warmup = ml_collections.ConfigDict(dict(iterations=20, learning_rate=3e-3,
                                                  warmup_steps=0))
  # RL stages from the clone, rl_<name>: the advantage estimator ("turn": one advantage per
  # turn, its rewards to go minus the group's mean at that turn; "ppo": token-level GAE with
  # the value head; "grpo": one per game, the group's mean subtracted) and whether the
  # rewards are shaped by the bits each answer gave (paid per turn either way; their sum
  # is the payoff, so a sequence-level estimator sees the same either way).
  c.rl_variants = ml_collections.ConfigDict(dict(
      turn=_variant("turn", True), token=_variant("ppo", True),
      sequence=_variant("grpo", True)))
  # Shared by the RL stages: iterations, the optimiser and any train.RLSettings field
  # (algorithm: the variant's). Every estimator's advantages are whitened the same way
  # (normalize_advantages over the batch's learner tokens; GRPO's own division by the
  # group's std off). A limit of this run's settings: the KL-regularised optimum
  # reweights each question by exp(its advantage / kl_coef), and a half split's advantage
  # over a quarter one is about 0.19 question_cost (0.024 at N = 16), so with kl_coef 0.05
  # the half's share can rise from 0.2 to about 0.3 only, short of the target.
  c.rl = ml_collections.ConfigDict(dict(
      iterations=100, num_openings=4, group_size=8, epochs=2, minibatches=2,
      learning_rate=5e-4, warmup_steps=5, kl_coef=0.05, entropy_coef=0.0, gamma=1.0,
      lam=0.95, normalize_advantages=True, grpo_std=None))
  c.eval_games = 256  # Games per seed each policy plays at the end (sampled, T = 1).
  c.target_share = 0.9  # The target: this share of the expert's payoff.
  # A clone has learned its demonstrator when its payoff is within about half the gap
  # between the demonstrator's and the expert's (0.41 and 0.5).
  c.verdict_settings = ml_collections.ConfigDict(dict(learned_tolerance=0.05))
  c.rule = RULE
  c.curve_window = 5  # Logged records each RL curve is averaged over.
  c.log_every = 2  # Steps between metric records (the points of the RL curves).
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 100  # Steps between checkpoints of a stage (its last is saved too).
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.horizons = ml_collections.ConfigDict(dict(  # One horizon: the test's time.
        n8=dict(num_secrets=8, max_questions=7, question_cost=1 / 6, turn_slack=0)))
    c.num_examples = 128
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=64)
    c.clone.update(steps=6, batch_size=8, warmup_steps=2)
    c.value_warmup.update(iterations=2)
    c.rl_variants = ml_collections.ConfigDict(dict(  # PPO: the value warm-up's test.
        turn=_variant("turn", True), sequence=_variant("grpo", True)))
    c.rl.update(iterations=4, num_openings=2, group_size=4, minibatches=1, warmup_steps=1)
    c.eval_games = 16
    c.curve_window = 2
    c.log_every = 1
    c.checkpoint_every = 5
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/twenty_questions.py; use '' or 'smoke'")
  return c
