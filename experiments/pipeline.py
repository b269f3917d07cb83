"""The training pipeline of a language model as agent learning in the arithmetic game.

  python -m experiments.pipeline --config configs/pipeline.py --workdir workdirs/pipeline

Claim 1 of docs/design.md: pre-training clones an average player, SFT a skilled one, and
policy learning can exceed the demonstrators, so payoff pre-train < SFT < RLHF. The game
is two-digit addition; the SFT demonstrator forgets every carry most of the time, so
cloning it is wrong on the problems with a carry, not merely noisy, and RL can only beat
it by answering right where it mostly does not. Stages, each for ``num_seeds`` seeds side
by side (vmapped):

  pretrain      behaviour cloning of both players on human-human transcripts, player
                two drawn from the careless and the noisy players;
  sft           from pretrain, cloning player two of the careless demonstrator;
  reward_model  from pretrain's transformer (or sft's), Bradley-Terry on player one's
                noisy preferences between two continuations of one question;
  rlhf          from sft, policy learning against the learned reward with a KL to sft:
                one line of seeds per weight of ``kl_coefs``, all side by side (the
                weight is a frozen value of each run, ``train.Frozen.kl_coef``);
  rl_payoff     from sft, the same against the game's true payoff at ``rl.kl_coef``
                (the gap to rlhf shows what optimising the learned reward loses).

Every policy then plays player one on ``eval_games`` test problems per seed, sampled at
temperature 1 and greedily: the summary gives the true payoff on problems with and
without a carry, the reward model's score, the KL to sft, each with its 95% t-interval
over seeds; the RLHF line the claim is judged on (the best on ``validation_games`` other
problems), the paired differences the rule of the config judges, and its verdict
(``verdict``).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import game as game_lib
from twoplayer_jax import games, objectives, players, rollout, train, vocab
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import pipeline
from twoplayer_jax.train import stages

GAME = "arithmetic"
SPLITS = ("carry", "no_carry")  # Problems with a carry at some digit place, and without.


def kl_name(kl: float) -> str:
  return f"rlhf_kl{kl:g}"


def policies(c) -> list[str]:
  """Every policy assessed: the stages', each RLHF line by its KL weight."""
  return ["pretrain", "sft", *map(kl_name, c.kl_coefs), "rl_payoff"]


def datasets(c) -> dict:
  """The three datasets: pre-training transcripts, SFT demonstrations, preferences."""
  settings = dict(game_settings=dict(c.game),
                  player_settings={"careless": {"forget_rate": c.forget_rate}})
  tag = "_".join(f"{k}{v}" for k, v in sorted(c.game.items())) + f"_forget{c.forget_rate}"
  mix = lambda m: "_".join(f"{k}{v:g}" for k, v in sorted(m.items()))
  built = {
      "pretrain": ("game_transcripts", data_configs.transcripts_config(
          GAME, dict(c.pretrain_mix), f"pipeline_pretrain_{tag}_{mix(c.pretrain_mix)}",
          **settings)),
      "sft": ("game_transcripts", data_configs.transcripts_config(
          GAME, {"careless": 1.0}, f"pipeline_sft_{tag}", **settings)),
      "reward_model": ("game_preferences", data_configs.preferences_config(
          GAME, dict(c.preference_mix), f"pipeline_preferences_{tag}_"
          f"{mix(c.preference_mix)}_t{c.preference_temperature:g}",
          temperature=c.preference_temperature, **settings)),
  }
  return {stage: common.dataset(kind, config, c.data_dir, c.num_examples[stage], c.seed)
          for stage, (kind, config) in built.items()}


def check(c) -> None:
  """The config's own settings, before anything runs."""
  problems = []
  if c.num_seeds < 2:
    problems.append(f"num_seeds must be at least 2 for intervals, got {c.num_seeds}")
  if c.reward_model_from not in ("pretrain", "sft"):
    problems.append(f"reward_model_from must be 'pretrain' or 'sft', got "
                    f"{c.reward_model_from!r}")
  if not c.kl_coefs or min(c.kl_coefs) <= 0:
    problems.append(f"kl_coefs must be positive, got {tuple(c.kl_coefs)}")
  if not 0 < c.forget_rate <= 1:
    problems.append(f"forget_rate must be in (0, 1], got {c.forget_rate}")
  if problems:
    raise launch.ConfigError("config." + "; config.".join(problems))
  try:
    for name, kind in (("pretrain", "imitation"), ("sft", "imitation"),
                       ("reward_model", "reward_model")):
      stages.check(kind, c[name], f"config.{name}")
    stages.check("policy", c.rl, "config.rl", reward_source="model")
    games.make(GAME, **c.game)
  except ValueError as e:
    raise launch.ConfigError(str(e)) from None


def lines(tree, n: int):
  """``tree``'s ``[S, ...]`` leaves repeated ``n`` times along the seed axis: ``[n*S, ...]``,
  line ``k``'s seeds at ``[k*S, (k+1)*S)``."""
  return jax.tree.map(lambda x: jnp.concatenate([x] * n), tree)


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  game = games.make(GAME, **c.game)
  human = games.player(GAME, 1, "human", game)
  model = common.model(c.model)
  scorer = common.model(c.model, scalar_head=True)
  seeds, seq_len, kls = c.num_seeds, game.max_length, len(c.kl_coefs)
  with common.runner(c, workdir) as run:
    data = datasets(c)
    clone = functools.partial(stages.imitation, model=model, seed=c.seed, num_seeds=seeds,
                              seq_len=seq_len)
    games_of = lambda name, **kw: pipeline.InMemory([data[name]], seq_len, **kw)
    params = {"pretrain": run(clone("pretrain", block=c.pretrain, source=games_of(
        "pretrain", roles=(1, 2), opening_loss=True))).params}
    params["sft"] = run(clone("sft", block=c.sft, source=games_of("sft"),
                              start=params["pretrain"])).params
    params["reward_model"] = run(stages.reward_model(
        "reward_model", scorer, c.reward_model, data["reward_model"], seed=c.seed,
        num_seeds=seeds, seq_len=seq_len, start=params[c.reward_model_from])).params
    curves = ("payoff_two", "reward_model_score", "kl_to_reference")
    rlhf = run(stages.policy(
        "rlhf", game, model, c.rl, human, seed=c.seed + 2, num_seeds=kls * seeds,
        start=lines(params["sft"], kls), reward_source="model", reward_model=scorer,
        fixed=train.Frozen(reference=lines(params["sft"], kls),
                           reward_model=lines(params["reward_model"], kls),
                           kl_coef=jnp.repeat(jnp.asarray(c.kl_coefs, jnp.float32), seeds)),
        games_sharding=run.games_sharding, per_seed_metrics=curves)).params
    for k, kl in enumerate(c.kl_coefs):
      params[kl_name(kl)] = jax.tree.map(lambda x: x[k * seeds:(k + 1) * seeds], rlhf)
    params["rl_payoff"] = run(stages.policy(
        "rl_payoff", game, model, c.rl, human, seed=c.seed + 2, num_seeds=seeds,
        start=params["sft"], fixed=train.Frozen(reference=params["sft"]),
        games_sharding=run.games_sharding, per_seed_metrics=curves[:1])).params

    summary = assess(c, game, human, model, scorer, params, run.records)
    summary["curves"] = rl_curves(c, workdir)
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 1: {summary['verdict']['outcome']}")


def rl_curves(c, workdir: str) -> dict:
  """Each RL line's logged curves, averaged over ``curve_window`` records, with 95% bands."""
  seeds, out = c.num_seeds, {}
  for key in ("payoff_two", "reward_model_score", "kl_to_reference"):
    logged = common.seed_curves(workdir, "rlhf", key, len(c.kl_coefs) * seeds)
    for k, kl in enumerate(c.kl_coefs):
      out.setdefault(kl_name(kl), {"step": logged["step"]})[key] = common.band(
          logged["seeds"][k * seeds:(k + 1) * seeds], c.curve_window)
  logged = common.seed_curves(workdir, "rl_payoff", "payoff_two", seeds)
  out["rl_payoff"] = {"step": logged["step"],
                      "payoff_two": common.band(logged["seeds"], c.curve_window)}
  return out


def split_payoffs(paid: np.ndarray, carries: np.ndarray) -> dict:
  """``[S]`` mean payoffs over all games and per split.

  Args:
    paid: ``[S, G]`` player two's payoffs.
    carries: ``[S, G]`` bool, whether each game's problem carries.
  """
  mean = lambda keep: (paid * keep).sum(-1) / np.maximum(keep.sum(-1), 1)
  return {"all": paid.mean(-1), "carry": mean(carries), "no_carry": mean(~carries)}


def assess(c, game, human, model, scorer, params, records) -> dict:
  """Every policy played against player one, sampled and greedy, scored by the true
  payoff per split, the reward model and the KL to sft; the demonstrators' payoffs; the
  reward model's ranking of right and carryless answers; and the rule's verdict."""
  key = jax.random.key(c.seed + 3)
  sampled = players.model_player(model, game, temperature=1.0)
  greedy = players.model_player(model, game, temperature=0.0)
  carries_of = jax.jit(jax.vmap(jax.vmap(game.carries)))

  @jax.jit
  @jax.vmap
  def judge(rm_params, sft_params, traj):
    """``[]`` mean reward-model score and KL to sft (nats per game) of one seed's games."""
    mask = game_lib.role_mask(traj.owner, 2) & traj.played
    score = train.reward_scores(scorer, rm_params, traj.tokens, traj.length)
    sft_logp = train.sequence_logprobs(model, sft_params, traj.tokens, mask)
    kl = objectives.sequence_sum(traj.logprob, mask) - sft_logp
    return jnp.mean(score), jnp.mean(kl)

  per_seed, examples = {}, {}
  for name in policies(c):
    traj = common.play_seeds(game, (human, sampled), (None, params[name]), key, c.eval_games)
    best = common.play_seeds(game, (human, greedy), (None, params[name]), key, c.eval_games)
    carries = np.asarray(carries_of(traj.hidden["operands"]))
    score, kl = judge(params["reward_model"], params["sft"], traj)
    per_seed[name] = {
        "payoff": split_payoffs(np.asarray(traj.returns[..., 1]), carries),
        "payoff_greedy": split_payoffs(np.asarray(best.returns[..., 1]), carries),
        "reward_model_score": np.asarray(score), "kl_to_sft": np.asarray(kl)}
    first = int(np.argmax(carries[0]))  # Seed 0's first problem with a carry, greedy.
    examples[name] = vocab.render(best.tokens[0, first], best.owner[0, first])

  # The judged RLHF line: the best true payoff on validation problems (another key).
  validation = {}
  for kl in c.kl_coefs:
    traj = common.play_seeds(game, (human, sampled), (None, params[kl_name(kl)]),
                             jax.random.key(c.seed + 4), c.validation_games)
    validation[kl_name(kl)] = float(jnp.mean(traj.returns[..., 1]))
  judged = max(validation, key=validation.get)

  interval = common.interval
  stats = {}
  for name, s in per_seed.items():
    stats[name] = {
        **{k: {split: interval(v) for split, v in s[k].items()}
           for k in ("payoff", "payoff_greedy")},
        "reward_model_score": interval(s["reward_model_score"]),
        "kl_to_sft": interval(s["kl_to_sft"]),
        "seconds": records["rlhf" if name.startswith("rlhf") else name]["seconds"]}
  # Tokens per seed: a policy stage's own and its ancestors' (rlhf: one line's share).
  own = {"pretrain": records["pretrain"]["tokens"], "sft": records["sft"]["tokens"],
         "rlhf": records["rlhf"]["tokens"], "rl_payoff": records["rl_payoff"]["tokens"]}
  for name in stats:
    before = 0 if name == "pretrain" else own["pretrain"] + (0 if name == "sft" else own["sft"])
    stats[name]["tokens"] = before + own["rlhf" if name.startswith("rlhf") else name]

  demos = demonstrators(c, game, human, key)
  rlhf, sft = per_seed[judged], per_seed["sft"]
  differences = {
      "sft - pretrain": interval(sft["payoff"]["all"] - per_seed["pretrain"]["payoff"]["all"]),
      "rlhf - sft": interval(rlhf["payoff"]["all"] - sft["payoff"]["all"]),
      "rlhf greedy carry - demonstrator": interval(
          rlhf["payoff_greedy"]["carry"] - demos["careless"]["carry"]),
      "rl_payoff - rlhf": interval(per_seed["rl_payoff"]["payoff"]["all"]
                                   - rlhf["payoff"]["all"])}
  summary = {
      "num_seeds": c.num_seeds, "rule": c.rule, "verdict_settings": c.verdict_settings.to_dict(),
      "kl_coefs": [float(k) for k in c.kl_coefs], "rl_payoff_kl": float(c.rl.kl_coef),
      "eval_games": c.eval_games, "validation_games": c.validation_games,
      "validation_payoff": validation, "judged": judged, "forget_rate": float(c.forget_rate),
      "stages": stats, "demonstrators": demos, "differences": differences,
      "reward_model": {**reward_model_ranking(c, game, human, scorer, params["reward_model"], key),
                       "seconds": records["reward_model"]["seconds"],
                       "tokens": records["reward_model"]["tokens"],
                       "final_metrics": records["reward_model"]["metrics"]},
      "example_games": examples}
  summary["verdict"] = verdict(summary)
  return summary


def demonstrators(c, game, human, key) -> dict:
  """The careless demonstrator's and the expert's payoff, all and per split, on
  ``eval_games * num_seeds`` problems."""
  out = {}
  for name, settings in (("careless", {"forget_rate": c.forget_rate}), ("expert", {})):
    two = games.player(GAME, 2, name, game, **settings)
    traj = rollout.play(game, (human, two), (None, None), key, c.eval_games * c.num_seeds)
    carries = np.asarray(jax.vmap(game.carries)(traj.hidden["operands"]))
    out[name] = {k: float(v[0]) for k, v in split_payoffs(
        np.asarray(traj.returns[None, :, 1]), carries[None]).items()}
  return out


def reward_model_ranking(c, game, human, scorer, rm_params, key) -> dict:
  """How often each seed's reward model scores the right answer above the carryless one,
  on the problems with a carry among ``eval_games``: ``{"accuracy": interval}``."""
  expert = games.player(GAME, 2, "expert", game)
  forgets = games.player(GAME, 2, "careless", game, forget_rate=1.0)
  right, wrong = (rollout.play(game, (human, p), (None, None), key, c.eval_games)
                  for p in (expert, forgets))
  carries = np.asarray(jax.vmap(game.carries)(right.hidden["operands"]))

  @jax.jit
  @functools.partial(jax.vmap, in_axes=(0, None))
  def scores(params, traj):
    return train.reward_scores(scorer, params, traj.tokens, traj.length)

  ahead = np.asarray(scores(rm_params, right) > scores(rm_params, wrong))  # [S, G]
  return {"accuracy": common.interval(ahead[:, carries].mean(-1)),
          "problems": int(carries.sum())}


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned", with the figures it compared."""
  v, stats, demo = summary["verdict_settings"], summary["stages"], summary["demonstrators"]
  d = summary["differences"]
  checks = {"(a) sft > pretrain": d["sft - pretrain"]["low"] > 0,
            "(b) rlhf > sft": d["rlhf - sft"]["low"] > 0,
            "(c) rlhf greedy > demonstrator on carries":
                d["rlhf greedy carry - demonstrator"]["low"] > 0}
  sft_gap = {split: abs(stats["sft"]["payoff"][split]["mean"] - demo["careless"][split])
             for split in SPLITS}
  rm_accuracy = summary["reward_model"]["accuracy"]["mean"]
  learned = max(sft_gap.values()) <= v["learned_tolerance"] and rm_accuracy >= v["rm_accuracy"]
  outcome = ("inconclusive: not learned" if not learned
             else "confirmed" if all(checks.values()) else "not confirmed")
  return {"outcome": outcome, "checks": checks, "sft_gap_to_demonstrator": sft_gap,
          "reward_model_accuracy": rm_accuracy}


def table(summary: dict) -> str:
  """The policies as a Markdown table: mean ± sample std [95% interval] over seeds."""
  lines = ["| policy | payoff | carry | no carry | greedy | greedy carry | greedy no carry | "
           "RM score | KL to SFT (nats/game) | tokens per seed | wall s |",
           "|---" * 11 + "|"]
  for name, s in summary["stages"].items():
    cells = [s[k][split] for k in ("payoff", "payoff_greedy") for split in ("all", *SPLITS)]
    cells += [s["reward_model_score"], s["kl_to_sft"]]
    lines.append(f"| {name} | " + " | ".join(map(common.cell, cells))
                 + f" | {s['tokens']:,} | {s['seconds']:.0f} |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table, the rule and its figures, and the plots."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  s, v, demo = summary["stages"], summary["verdict"], summary["demonstrators"]
  d, rm = summary["differences"], summary["reward_model"]
  out = [
      f"Two-digit addition; {summary['num_seeds']} seeds, {summary['eval_games']} problems "
      "per seed and policy. Payoffs are shares of right answers, sampled at temperature 1 "
      "unless *greedy*; *carry*: problems with a carry at some digit place. Mean ± sample "
      "std [95% t-interval] over seeds. The SFT demonstrator forgets every carry in "
      f"{summary['forget_rate']:g} of its replies; the RLHF lines differ only in the KL "
      f"weight (RL on the true payoff: {summary['rl_payoff_kl']:g}).", "", table(summary), "",
      "Demonstrators' payoff (all, carry, no carry): " + "; ".join(
          f"{n} {x['all']:.3f}, {x['carry']:.3f}, {x['no_carry']:.3f}" for n, x in demo.items())
      + f". The reward model ranks the right answer above the carryless one on "
      f"{common.cell(rm['accuracy'])} of {rm['problems']} problems with a carry.", "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "",
      "Validation payoff per RLHF line: " + ", ".join(
          f"{n} {x:.3f}" for n, x in summary["validation_payoff"].items())
      + f"; judged: **{summary['judged']}**.", "",
      "| paired difference | mean ± std [95%] | check |", "|---|---|---|"]
  names = {"sft - pretrain": "(a) sft > pretrain", "rlhf - sft": "(b) rlhf > sft",
           "rlhf greedy carry - demonstrator": "(c) rlhf greedy > demonstrator on carries"}
  for key, m in d.items():
    check = common.holds(v["checks"][names[key]]) if key in names else "reported"
    out.append(f"| {key} | {common.cell(m)} | {check} |")
  gaps = ", ".join(f"{k.replace('_', ' ')} {x:.3f}"
                   for k, x in v["sft_gap_to_demonstrator"].items())
  out += ["", f"SFT's gap to its demonstrator: {gaps}; reward-model accuracy "
          f"{v['reward_model_accuracy']:.3f}.", "",
          f"Claim 1 by this rule: **{v['outcome']}**.", "",
          "Each policy's greedy game on seed 0's first test problem with a carry:", "", "```",
          *(f"{name}:\n{game}" for name, game in summary["example_games"].items()), "```"]

  rl_lines = [kl_name(k) for k in summary["kl_coefs"]] + ["rl_payoff"]
  fig = Figure(figsize=(10, 3.8))
  for ax, (key, label) in zip(fig.subplots(1, 2), (
      ("payoff", "true payoff (sampled)"), ("reward_model_score", "reward-model score"))):
    for name in rl_lines:
      x, xerr = common.error_bars([s[name]["kl_to_sft"]])
      y, yerr = common.error_bars([s[name][key]["all"] if key == "payoff" else s[name][key]])
      ax.errorbar(x, y, xerr=xerr, yerr=yerr, marker="o", capsize=3, label=name)
    if key == "payoff":
      ax.axhline(s["sft"]["payoff_greedy"]["all"]["mean"], color="grey", ls="--",
                 label="SFT greedy")
      ax.axhline(demo["careless"]["all"], color="k", ls=":", label="SFT demonstrator")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set(xlabel="KL to SFT (nats per game, symlog scale)", ylabel=label,
           title=f"{label} vs KL")
    ax.legend(fontsize=7)
  fig.suptitle("RL lines after training: mean and 95% t-interval over seeds")
  fig.tight_layout()
  out += ["", f"![True payoff and reward-model score against the KL to SFT]({save(fig, 'kl')})"]

  fig = Figure(figsize=(10, 3.8))
  names = list(s)
  for ax, key in zip(fig.subplots(1, 2), ("payoff", "payoff_greedy")):
    for i, split in enumerate(SPLITS):
      mean, err = common.error_bars([s[n][key][split] for n in names])
      ax.bar(np.arange(len(names)) + (i - 0.5) * 0.4, mean, 0.4, label=split.replace("_", " "),
             yerr=err, capsize=2)
    ax.axhline(demo["careless"]["carry"], color="k", ls=":", label="demonstrator, carry")
    ax.set_xticks(np.arange(len(names)), names, rotation=30, fontsize=7)
    ax.set(ylabel="true payoff", ylim=(0, 1.05),
           title="greedy" if key == "payoff_greedy" else "sampled (T = 1)")
    ax.legend(fontsize=7)
  fig.tight_layout()
  out += ["", f"![Payoff per policy, problems with and without a carry]({save(fig, 'stages')})"]

  fig = Figure(figsize=(10, 3.8))
  for ax, (key, label) in zip(fig.subplots(1, 2), (
      ("payoff_two", "true payoff of the iteration's games"),
      ("reward_model_score", "reward-model score"))):
    for name, curve in summary["curves"].items():
      if key in curve:
        ax.plot(curve["step"], curve[key]["mean"], label=name)
        ax.fill_between(curve["step"], curve[key]["low"], curve[key]["high"], alpha=0.2)
    ax.set(xlabel="RL iteration", ylabel=label, title=label)
    ax.legend(fontsize=7)
  fig.suptitle("RL curves: trailing mean over a window of records, 95% t-band over seeds")
  fig.tight_layout()
  out += ["", f"![RL curves]({save(fig, 'curves')})"]
  return "\n".join(out)


if __name__ == "__main__":
  launch.run(main)
