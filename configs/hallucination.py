"""Hallucination as a cloned habit of always answering, in the facts game (claim 4).

  python -m experiments.hallucination --config configs/hallucination.py \\
      --workdir workdirs/hallucination
  python -m experiments.hallucination --config configs/hallucination.py:smoke \\
      --workdir /tmp/hallucination
"""

import ml_collections

# The rule the run is judged by, fixed before it (experiments.hallucination.verdict).
RULE = ("Each RL policy of the cost sweep is compared, seed by seed, with the same seed's SFT "
        "of the sweep's arm: paired differences, with their 95% t-interval over seeds. "
        "b = 1 / (num_values - 1) is the break-even cost, above which a uniform guess loses "
        "to abstaining. (a) Dose-response: for every cost c > b the wrong-answer rate on new "
        "names falls (the upper end of the difference's interval is below 0), and for every "
        "c <= b it does not fall by more than free_margin (the lower end is at or above "
        "-free_margin). (b) At every priced cost (c > 0) the share of seen entities the "
        "policy abstains on stays below false_abstain_bound by the upper end of its "
        "interval. Confirmed when (a) and (b) hold, else not confirmed. Inconclusive (not "
        "learned) unless SFT answers seen entities right in at least sft_seen_right of the "
        "games (mean over seeds) in every arm; inconclusive when the sweep has no cost on "
        "one side of b.")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # PRNG seed of parameters, data order and play.
  # Seeds trained side by side (vmapped): 5, as the default run fits in 30 minutes on 2
  # CPU cores (about 13 estimated: 3 SFT arms of ~130 s, 9 RL stages of ~35 s, ~45 s of
  # evaluation).
  c.num_seeds = 5
  c.game = ml_collections.ConfigDict(dict(  # The facts game of SFT (ask="all").
      num_entities=256, num_seen=64, num_values=8, seed=0))
  # The last unseen entities (a third of them), never asked in RL; SFT asks them, its
  # demonstrations never stating their facts.
  c.held_out = 64
  c.new_names = ml_collections.ConfigDict(dict(  # A knowledge base of names never trained on.
      num_entities=256, seed=1))
  c.demonstrator_error = 0.0  # SFT demonstrators' error on seen entities.
  # One SFT arm per share of demonstrations by the expert, who abstains on unseen
  # entities; the rest always answer. Without abstentions, sampling may never write
  # "idk" for RL to find.
  c.abstain_shares = (0.0, 0.1, 0.5)
  c.sweep_share = 0.1  # The arm the cost sweep starts from.
  # The sweep's prices c of a wrong answer, around the break-even 1 / (num_values - 1).
  c.wrong_costs = (0.0, 0.05, 0.1, 0.14, 0.2, 0.3, 1.0)
  c.arm_cost = 1.0  # The cost of the other arms' one RL stage.
  c.data_dir = "~/tensorflow_datasets"  # Where the SFT datasets are built and read.
  c.num_examples = 20_000  # SFT demonstrations built per arm.
  c.model = ml_collections.ConfigDict(dict(  # The policy (twoplayer_jax.models).
      num_layers=2, d_model=64, num_heads=4, d_ff=256, max_length=32, dtype="float32",
      param_dtype="float32", checkpoint=""))
  c.sft = ml_collections.ConfigDict(dict(steps=1000, learning_rate=3e-3, batch_size=64,
                                         warmup_steps=20))
  # One stage per cost: iterations, the optimiser and any twoplayer_jax.train.RLSettings field.
  c.rl = ml_collections.ConfigDict(dict(
      algorithm="grpo", iterations=100, num_openings=16, group_size=8, epochs=2, minibatches=2,
      learning_rate=1e-3, warmup_steps=5, kl_coef=0.05, entropy_coef=0.0))
  c.eval_games = 2048  # Games per seed on the training questions, and on new names.
  c.verdict_settings = ml_collections.ConfigDict(dict(
      free_margin=0.05, false_abstain_bound=0.1, sft_seen_right=0.8))
  c.rule = RULE
  c.log_every = 20  # Steps between metric records.
  c.sync_every = 10  # Steps between waits on the devices.
  c.checkpoint_every = 100  # Steps between checkpoints of a stage (its last is saved too).
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1: all remaining.
  if arg == "smoke":
    c.num_seeds = 2
    c.game.update(num_entities=32, num_seen=8)
    c.held_out = 8
    c.new_names.num_entities = 32
    c.abstain_shares = (0.0, 0.1)  # The sweep's arm and one other.
    c.wrong_costs = (1.0,)
    c.num_examples = 256
    c.model.update(num_layers=1, d_model=32, num_heads=2, d_ff=64)
    c.sft.update(steps=10, batch_size=16, warmup_steps=2)
    c.rl.update(iterations=5, num_openings=4, group_size=4, warmup_steps=1)
    c.eval_games = 64
    c.log_every = 5
    c.checkpoint_every = 5
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r} of configs/hallucination.py; use '' or 'smoke'")
  return c
