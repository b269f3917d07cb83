"""The training pipeline of a language model as agent learning in the arithmetic game.

  python -m experiments.pipeline --config configs/pipeline.py --workdir workdirs/pipeline

Claim 1 of docs/design.md: pre-training clones an average player, SFT a skilled one, and
policy learning can exceed the demonstrators, so payoff pre-train < SFT < RLHF. Stages,
each for ``num_seeds`` seeds side by side (vmapped):

  pretrain      behaviour cloning of both players on human-human transcripts, player
                two drawn from the "average" and "noisy" players;
  sft           from pretrain, cloning player two of a skilled but imperfect
                demonstrator (right ``1 - demonstrator_error`` of the time);
  reward_model  from pretrain's transformer (or sft's), Bradley-Terry on player one's
                preferences between two continuations of one question;
  rlhf          from sft, policy learning against the learned reward with a KL to sft;
  rl_payoff     from sft, the same against the game's true payoff (the gap to rlhf shows
                what optimising the learned reward loses).

Every stage is then played against player one: the table gives the true payoff (the
policy sampled at temperature 1, and greedy), the reward model's score of those games,
the KL to the sft policy, the tokens each seed trained on and the wall time. It is
printed and saved in ``summary.json``.
"""

import functools

import jax
import jax.numpy as jnp

from experiments import common, launch
from twoplayer_jax import game as game_lib
from twoplayer_jax import games, models, objectives, players, rollout, train
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.train import stages
from twoplayer_jax.train.steps import positions_of

GAME = "arithmetic"
POLICIES = ("pretrain", "sft", "rlhf", "rl_payoff")


def datasets(c) -> dict:
  """The three datasets: pre-training transcripts, SFT demonstrations, preferences."""
  settings = dict(game_settings=dict(c.game))
  average = {"average": {"error_rate": c.demonstrator_error}}
  tag = "_".join(f"{k}{v}" for k, v in sorted(c.game.items()))
  built = {
      "pretrain": ("game_transcripts", data_configs.transcripts_config(
          GAME, dict(c.pretrain_mix), f"pipeline_pretrain_{tag}", **settings)),
      "sft": ("game_transcripts", data_configs.transcripts_config(
          GAME, {"average": 1.0}, f"pipeline_sft_{tag}_err{c.demonstrator_error}",
          player_settings=average, **settings)),
      "reward_model": ("game_preferences", data_configs.preferences_config(
          GAME, dict(c.preference_mix), f"pipeline_preferences_{tag}", **settings)),
  }
  return {stage: common.dataset(kind, config, c.data_dir, c.num_examples[stage], c.seed)
          for stage, (kind, config) in built.items()}


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  if c.reward_model_from not in ("pretrain", "sft"):
    raise launch.ConfigError(f"config.reward_model_from must be 'pretrain' or 'sft', got "
                             f"{c.reward_model_from!r}")
  for name, kind in (("pretrain", "imitation"), ("sft", "imitation"),
                     ("reward_model", "reward_model")):
    stages.check(kind, c[name], f"config.{name}")
  stages.check("policy", c.rl, "config.rl", reward_source="model")
  game = games.make(GAME, **c.game)
  human = games.player(GAME, 1, "human", game)
  model = models.make(models.TransformerConfig(**c.model))
  scorer = models.make(models.TransformerConfig(**c.model, scalar_head=True))
  seeds, seq_len = c.num_seeds, game.max_length
  with common.runner(c, workdir) as run:
    data = datasets(c)
    clone = functools.partial(stages.imitation, model=model, seed=c.seed, num_seeds=seeds,
                              seq_len=seq_len)
    params = {"pretrain": run(clone("pretrain", block=c.pretrain, source=data["pretrain"],
                                    roles=(1, 2), opening_loss=True)).params}
    params["sft"] = run(clone("sft", block=c.sft, source=data["sft"],
                              start=params["pretrain"])).params
    params["reward_model"] = run(stages.reward_model(
        "reward_model", scorer, c.reward_model, data["reward_model"], seed=c.seed,
        num_seeds=seeds, seq_len=seq_len, start=params[c.reward_model_from])).params
    for name, source in (("rlhf", "model"), ("rl_payoff", "payoff")):
      learned = source == "model"
      params[name] = run(stages.policy(
          name, game, model, c.rl, human, seed=c.seed + 2, num_seeds=seeds,
          start=params["sft"], reward_source=source, reward_model=scorer if learned else None,
          fixed=train.Frozen(reference=params["sft"],
                             reward_model=params["reward_model"] if learned else None),
          games_sharding=run.games_sharding)).params

    summary = assess(c, game, human, model, scorer, params, run.records)
    summary["curves"] = {f"{name}/{key}": common.curve(workdir, name, key) for name, key in (
        ("rlhf", "payoff_two"), ("rlhf", "reward_model_score"), ("rl_payoff", "payoff_two"))}
    common.write_summary(workdir, summary)
    print(table(summary))


def assess(c, game, human, model, scorer, params, records) -> dict:
  """Every policy stage played against player one, scored by the true payoff, the reward
  model and the KL to sft; the demonstrators' payoffs for comparison."""
  key = jax.random.key(c.seed + 3)
  sampled = players.model_player(model, game, temperature=1.0)
  greedy = players.model_player(model, game, temperature=0.0)

  @jax.jit
  @jax.vmap
  def judge(rm_params, sft_params, traj):
    mask = game_lib.role_mask(traj.owner, 2) & traj.played
    _, scalars, _ = scorer.apply(rm_params, traj.tokens, positions_of(traj.tokens))
    scores = objectives.final_scores(scalars, traj.length)
    sft_logp = train.sequence_logprobs(model, sft_params, traj.tokens, mask)
    kl = objectives.sequence_sum(traj.logprob, mask) - sft_logp
    return jnp.mean(scores), jnp.mean(kl)

  summary = {"stages": {}, "demonstrators": {}, "num_seeds": c.num_seeds}
  tokens = 0
  for name in POLICIES:
    traj = common.play_seeds(game, (human, sampled), (None, params[name]), key, c.eval_games)
    best = common.play_seeds(game, (human, greedy), (None, params[name]), key, c.eval_games)
    score, kl = judge(params["reward_model"], params["sft"], traj)
    # Each policy stage builds on sft (and sft on pretrain): count the tokens before it.
    tokens = records[name]["tokens"] + (records["sft"]["tokens"] + records["pretrain"]["tokens"]
                                        if name.startswith("rl") else tokens)
    summary["stages"][name] = {
        "payoff": common.mean_std(traj.returns[..., 1].mean(-1)),
        "payoff_greedy": common.mean_std(best.returns[..., 1].mean(-1)),
        "reward_model_score": common.mean_std(score), "kl_to_sft": common.mean_std(kl),
        "tokens": tokens, "seconds": records[name]["seconds"]}
  summary["reward_model"] = {"seconds": records["reward_model"]["seconds"],
                             "tokens": records["reward_model"]["tokens"],
                             "final_metrics": records["reward_model"]["metrics"]}
  for name, settings in (("average", {"error_rate": c.demonstrator_error}), ("expert", {})):
    two = games.player(GAME, 2, name, game, **settings)
    traj = rollout.play(game, (human, two), (None, None), key, c.eval_games)
    summary["demonstrators"][name] = float(jnp.mean(traj.returns[:, 1]))
  summary["claim_1"] = verdict(summary)
  return summary


def verdict(summary: dict) -> dict:
  """Claim 1 from the stages' mean payoffs: whether pre-train < SFT < RLHF (the outcome),
  whether RLHF beats the average demonstrator SFT cloned, and RL on the payoff minus RLHF."""
  payoff = {n: summary["stages"][n]["payoff"]["mean"] for n in POLICIES}
  ordered = payoff["pretrain"] < payoff["sft"] < payoff["rlhf"]
  return {
      "pretrain < sft < rlhf": ordered,
      "rlhf > sft demonstrator": payoff["rlhf"] > summary["demonstrators"]["average"],
      "rl_payoff - rlhf": payoff["rl_payoff"] - payoff["rlhf"],
      "outcome": "confirmed" if ordered else "not confirmed"}


def table(summary: dict) -> str:
  """The summary as a text table (mean ± std over seeds)."""
  f = common.pm
  lines = [f"{'stage':<10} {'payoff':>15} {'payoff greedy':>15} {'RM score':>15} "
           f"{'KL to sft':>15} {'tokens':>10} {'wall s':>7}"]
  for name, s in summary["stages"].items():
    lines.append(f"{name:<10} {f(s['payoff']):>15} {f(s['payoff_greedy']):>15} "
                 f"{f(s['reward_model_score']):>15} {f(s['kl_to_sft']):>15} "
                 f"{s['tokens']:>10} {s['seconds']:>7.1f}")
  demos = ", ".join(f"{k} {v:.3f}" for k, v in summary["demonstrators"].items())
  lines.append(f"demonstrators' payoff: {demos}; seeds: {summary['num_seeds']}")
  lines.append(f"claim 1: {summary['claim_1']}")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """RESULTS.md's section: the table, payoff per stage, and the two RL runs' curves."""
  import matplotlib.figure  # pylint: disable=import-outside-toplevel
  stages = summary["stages"]
  fig = matplotlib.figure.Figure(figsize=(9, 3.4))
  ax = fig.add_subplot(1, 2, 1)
  names = list(stages)
  ax.bar(names, [stages[n]["payoff"]["mean"] for n in names],
         yerr=[stages[n]["payoff"]["std"] for n in names], capsize=4, color="tab:blue")
  for (name, value), style in zip(summary["demonstrators"].items(), ("--", ":")):
    ax.axhline(value, color="k", linestyle=style, label=f"{name} demonstrator")
  ax.set(ylabel="true payoff (sampled, T=1)", ylim=(0, 1.05), title="policy after each stage")
  ax.legend(loc="lower right", fontsize=8)
  ax = fig.add_subplot(1, 2, 2)
  for label, curve in summary["curves"].items():
    name, key = label.split("/")
    ax.plot(curve["step"], curve[key], linestyle="-" if key == "payoff_two" else "--",
            color="tab:red" if name == "rlhf" else "tab:green",
            label=f"{name}: {'true payoff' if key == 'payoff_two' else 'RM score'}")
  ax.set(xlabel="RL iteration", ylabel="mean over seeds", title="policy learning")
  ax.legend(fontsize=8)
  path = save(fig, "stages")
  f = common.pm
  rows = "\n".join(
      f"| {n} | {f(s['payoff'])} | {f(s['payoff_greedy'])} | {f(s['reward_model_score'])} | "
      f"{f(s['kl_to_sft'])} | {s['tokens']:,} | {s['seconds']:.0f} |" for n, s in stages.items())
  payoff = {n: stages[n]["payoff"]["mean"] for n in names}
  claim = verdict(summary)  # By the current rule: a summary saved before has no outcome.
  exceeds = "exceeds" if claim["rlhf > sft demonstrator"] else "does not exceed"
  demo = summary["demonstrators"]["average"]
  return f"""Claim 1 (payoff pre-train < SFT < RLHF) is **{claim['outcome']}** here: {payoff['pretrain']:.3f} <
{payoff['sft']:.3f} < {payoff['rlhf']:.3f} is {claim['pretrain < sft < rlhf']}. RLHF against the learned
reward {exceeds} the SFT demonstrator it was cloned from ({payoff['rlhf']:.3f} vs {demo:.3f}). RL on the
true payoff reaches {payoff['rl_payoff']:.3f} ({claim['rl_payoff - rlhf']:+.3f} over RLHF with the learned
reward). {summary['num_seeds']} seeds.

| stage | true payoff | greedy payoff | RM score | KL to SFT (nats/game) | tokens per seed | wall s |
|---|---|---|---|---|---|---|
{rows}

Tokens per seed count the padded sequences a stage and the stages before it trained on (the
reward model's {summary['reward_model']['tokens']:,} not included); wall time is the stage's own.
Demonstrators' payoff: {', '.join(f'{k} {v:.3f}' for k, v in summary['demonstrators'].items())}.

![payoff per stage and RL curves]({path})
"""


if __name__ == "__main__":
  launch.run(main)
