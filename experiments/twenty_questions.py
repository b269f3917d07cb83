"""Credit assignment across turns: cloning and policy learning in twenty questions.

  python -m experiments.twenty_questions --config configs/twenty_questions.py \\
      --workdir workdirs/twenty_questions

Claim 6 of docs/design.md: multi-turn games need credit assignment across turns. Player two
finds a secret in [0, N) with threshold questions, each costing ``question_cost``, and
is paid ``guess_reward`` for the right guess. Stages, each for ``num_seeds`` seeds side
by side (vmapped):

  clone_average   cloning player two of the "average" player (binary search that errs
                  on ``demonstrator_error`` of its turns);
  clone_expert    cloning player two of the expert (binary search);
  rl_<variant>    from clone_average, policy learning against the game's payoff, one
                  stage per entry of ``rl_variants``: token-level advantages (PPO, GAE
                  with the value head) or one sequence-level advantage per game (GRPO),
                  with the payoff at the end only or paid per turn as it falls due.

Sequence-level advantages add up every reward of a game, so where rewards are paid
makes no difference to them; token-level ones credit each turn with the rewards after
it. Every policy then plays player one at temperature 1 and greedily; the summary gives
the payoff, the share of games solved and the questions asked before the right guess,
and the payoff over the RL iterations (per seed, from each stage's metrics).
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import game as game_lib
from twoplayer_jax import games, players, rollout, train, vocab
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.train import stages

GAME = "twenty_questions"
CLONES = ("clone_average", "clone_expert")


def outcomes(game, traj: game_lib.Trajectory) -> dict:
  """Per-game results ``[..., G]`` of player two's play: ``payoff``, ``solved`` (guessed
  the secret) and ``charged`` (turns closed that were not the right guess)."""
  closed = jnp.sum((traj.tokens == vocab.EOT) & (traj.owner == game_lib.TWO) & traj.played, -1)
  paid = traj.returns[..., 1]
  # Solved, the payoff is guess_reward - cost * (closed - 1); else it is -cost * closed.
  solved = paid + game.question_cost * closed > (game.guess_reward + game.question_cost) / 2
  return {"payoff": paid, "solved": solved, "charged": closed - solved}


def summarise(results: dict) -> dict:
  """``[S]`` per-seed means of ``outcomes``' ``[S, G]`` results: payoff, solve rate, and
  the questions (charged turns) asked in the games solved."""
  solved = np.asarray(results["solved"], np.float64)
  charged = np.asarray(results["charged"], np.float64)
  return {"payoff": np.mean(results["payoff"], -1), "solve_rate": solved.mean(-1),
          "questions_to_solve": (charged * solved).sum(-1) / np.maximum(solved.sum(-1), 1)}


def curve(metrics_path: str, num_seeds: int) -> dict:
  """The payoff over RL iterations from a stage's metrics: ``step``, per-logged-step
  ``mean`` and ``std`` over seeds, and ``seeds`` ``[S][steps]``."""
  with open(metrics_path) as f:
    rows = [json.loads(line) for line in f]
  rows = [r for r in rows if "payoff_two_seed0" in r]
  seeds = np.array([[r[f"payoff_two_seed{i}"] for r in rows] for i in range(num_seeds)])
  return {"step": [r["step"] for r in rows], "mean": seeds.mean(0).tolist(),
          "std": seeds.std(0).tolist(), "seeds": seeds.tolist()}


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  stages.check("imitation", c.clone, "config.clone")
  for name, v in c.rl_variants.items():
    stages.check("policy", c.rl, f"config.rl (variant {name})", algorithm=v.algorithm)
  game = games.make(GAME, **c.game)
  human = games.player(GAME, 1, "human", game)
  # One architecture for every policy: PPO needs the value head, the others ignore it.
  model = common.model(c.model, scalar_head=True)
  seeds, seq_len = c.num_seeds, game.max_length
  tag = "_".join(f"{k}{v}" for k, v in sorted(c.game.items()))
  demonstrators = {"clone_average": ("average", {"error_rate": c.demonstrator_error}),
                   "clone_expert": ("expert", {})}
  with common.runner(c, workdir) as run:
    params, imitate = {}, None
    for name, (player, settings) in demonstrators.items():
      data_name = "_".join([GAME, player, tag, *(f"{k}{v}" for k, v in settings.items())])
      data = common.dataset("game_transcripts", data_configs.transcripts_config(
          GAME, {player: 1.0}, data_name,
          game_settings=dict(c.game), player_settings={player: settings}),
          c.data_dir, c.num_examples, c.seed)
      stage = stages.imitation(name, model, c.clone, data, seed=c.seed, num_seeds=seeds,
                               seq_len=seq_len)
      imitate = imitate or stage.update  # One update for both clones: compiled once.
      params[name] = run(dataclasses.replace(stage, update=imitate)).params

    for variant, v in c.rl_variants.items():
      name = f"rl_{variant}"
      played = games.make(GAME, **c.game, per_turn_rewards=bool(v.per_turn_rewards))
      start = params["clone_average"]
      params[name] = run(stages.policy(
          name, played, model, c.rl, human, seed=c.seed + 2, num_seeds=seeds, start=start,
          fixed=train.Frozen(reference=start), games_sharding=run.games_sharding,
          per_seed_metrics=("payoff_two",), algorithm=v.algorithm)).params

    summary = assess(c, game, human, model, params, run.records)
    summary["curves"] = {name: curve(os.path.join(workdir, name, "metrics.jsonl"), seeds)
                         for name in params if name.startswith("rl_")}
    summary["claim_6"] = verdict(summary)
    common.write_summary(workdir, summary)
    print(table(summary))


def assess(c, game, human, model, params, records) -> dict:
  """Every policy plays player one (all in one batch, ``[P * S]`` parameters) at
  temperature 1 and greedily; the demonstrators play too."""
  key = jax.random.key(c.seed + 3)
  names = list(params)
  stacked = jax.tree.map(lambda *x: jnp.concatenate(x), *[params[n] for n in names])
  policies = {n: {} for n in names}
  for mode, temperature in (("sampled", 1.0), ("greedy", 0.0)):
    two = players.model_player(model, game, temperature=temperature)
    traj = common.play_seeds(game, (human, two), (None, stacked), key, c.eval_games)
    results = jax.device_get(outcomes(game, traj))
    for i, name in enumerate(names):
      per_seed = summarise(jax.tree.map(lambda x: x[i * c.num_seeds:(i + 1) * c.num_seeds],
                                        results))
      policies[name][mode] = {k: common.mean_std(v) for k, v in per_seed.items()}
  for name in names:
    policies[name].update(seconds=records[name]["seconds"], tokens=records[name]["tokens"])
    if name.startswith("rl_"):
      policies[name].update(c.rl_variants[name[3:]].to_dict())
  demonstrators = {}
  for name, settings in (("average", {"error_rate": c.demonstrator_error}), ("expert", {})):
    two = games.player(GAME, 2, name, game, **settings)
    traj = rollout.play(game, (human, two), (None, None), key, c.eval_games)
    per_game = jax.device_get(outcomes(game, traj))
    demonstrators[name] = {k: float(v[0]) for k, v in summarise(
        jax.tree.map(lambda x: x[None], per_game)).items()}
  return {"num_seeds": c.num_seeds, "policies": policies, "demonstrators": demonstrators,
          "rl_iterations": c.rl.iterations}


def verdict(summary: dict) -> dict:
  """What the numbers say about claim 6: whether RL beat its start (clone_average) and
  the expert clone, and how per-turn and terminal rewards, token- and sequence-level
  advantages compare, by final payoff and by mean payoff over the RL iterations."""
  p, curves = summary["policies"], summary["curves"]
  payoff = lambda n: p[n]["sampled"]["payoff"]
  beats = lambda a, b: payoff(a)["mean"] - payoff(a)["std"] > payoff(b)["mean"] + payoff(b)["std"]
  rl = [n for n in p if n.startswith("rl_")]
  out = {"rl_beats_clone_average": {n: beats(n, "clone_average") for n in rl},
         "rl_beats_clone_expert": {n: beats(n, "clone_expert") for n in rl},
         "mean_payoff_over_iterations": {n: float(np.mean(curves[n]["mean"])) for n in rl}}
  by = lambda algorithm, per_turn: next((n for n in rl if p[n]["algorithm"] == algorithm
                                         and p[n]["per_turn_rewards"] == per_turn), None)
  for algorithm in ("ppo", "grpo", "rloo", "reinforce"):
    turn, end = by(algorithm, True), by(algorithm, False)
    if turn and end:
      out[f"{algorithm}: per_turn - terminal"] = {
          "final": payoff(turn)["mean"] - payoff(end)["mean"],
          "over_iterations": out["mean_payoff_over_iterations"][turn]
                             - out["mean_payoff_over_iterations"][end],
          "final_beyond_spread": beats(turn, end) or beats(end, turn)}
  return out


def table(summary: dict) -> str:
  """The summary as a text table (mean ± std over seeds)."""
  f = common.pm
  lines = [f"{'policy':<18} {'payoff':>15} {'greedy payoff':>15} {'solved':>15} "
           f"{'questions':>15}"]
  for name, s in summary["policies"].items():
    t = s["sampled"]
    lines.append(f"{name:<18} {f(t['payoff']):>15} {f(s['greedy']['payoff']):>15} "
                 f"{f(t['solve_rate']):>15} {f(t['questions_to_solve']):>15}")
  for name, d in summary["demonstrators"].items():
    lines.append(f"{'demonstrator ' + name:<18} {d['payoff']:>15.3f} {'':>15} "
                 f"{d['solve_rate']:>15.3f} {d['questions_to_solve']:>15.3f}")
  lines.append(f"claim 6: {summary['claim_6']}")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table of final policies, the verdict, the RL curves of
  payoff over iterations and a bar chart of the final policies."""
  from matplotlib.figure import Figure

  f = common.pm
  p, claim, curves = summary["policies"], summary["claim_6"], summary["curves"]
  lines = [
      f"Each policy plays player one ({summary['num_seeds']} seeds, mean ± std over seeds); "
      "*questions*: turns charged before the right guess, in the games solved.", "",
      "| policy | advantages | rewards | payoff (T=1) | payoff (greedy) | solved (T=1) | "
      "questions (T=1) | mean payoff over RL | wall s |",
      "|---|---|---|---|---|---|---|---|---|"]
  for name, s in p.items():
    t, learned = s["sampled"], "algorithm" in s
    level = ("token (GAE)" if s["algorithm"] == "ppo" else "sequence") if learned else "—"
    rewards = ("per turn" if s["per_turn_rewards"] else "terminal") if learned else "—"
    over = (f"{claim['mean_payoff_over_iterations'][name]:.3f}"
            if name in claim["mean_payoff_over_iterations"] else "—")
    lines.append(f"| {name} | {level} | {rewards} | {f(t['payoff'])} | "
                 f"{f(s['greedy']['payoff'])} | {f(t['solve_rate'])} | "
                 f"{f(t['questions_to_solve'])} | {over} | {s['seconds']:.0f} |")
  for name, d in summary["demonstrators"].items():
    lines.append(f"| demonstrator {name} | — | — | {d['payoff']:.3f} | — | "
                 f"{d['solve_rate']:.3f} | {d['questions_to_solve']:.3f} | — | — |")
  rl = [n for n in p if n.startswith("rl_")]
  better = [n for n in rl if claim["rl_beats_clone_average"][n]]
  sentences = [f"Policy learning from the average clone beat it beyond the spread over seeds in "
               f"{len(better)} of {len(rl)} variants ({', '.join(better) or 'none'})."]
  for key, d in claim.items():
    if key.endswith("per_turn - terminal"):
      algorithm = key.split(":")[0]
      sign = lambda x: "higher" if x > 0 else "lower"
      sentences.append(
          f"With {algorithm}, per-turn rewards ended {abs(d['final']):.3f} {sign(d['final'])} "
          f"in payoff than terminal ones ({'beyond' if d['final_beyond_spread'] else 'within'}"
          f" the spread over seeds) and averaged {abs(d['over_iterations']):.3f} "
          f"{sign(d['over_iterations'])} over the RL iterations: claim 6 "
          f"{'confirmed' if d['final'] > 0 and d['final_beyond_spread'] else 'not confirmed'}"
          " by these numbers.")
  final = lambda n: p[n]["sampled"]["payoff"]["mean"]
  token = [n for n in rl if p[n]["algorithm"] == "ppo"]
  sequence = [n for n in rl if p[n]["algorithm"] != "ppo"]
  if token and sequence:
    t, q = max(token, key=final), max(sequence, key=final)
    sentences.append(f"The best token-level variant ({t}, {final(t):.3f}) ended "
                     f"{'above' if final(t) > final(q) else 'below'} the best sequence-level "
                     f"one ({q}, {final(q):.3f}).")
  lines += ["", " ".join(sentences)]

  fig = Figure(figsize=(6, 4))
  ax = fig.subplots()
  for name in rl:
    x, mean, std = (np.array(curves[name][k]) for k in ("step", "mean", "std"))
    ax.plot(x, mean, label=name)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2)
  for name, style in (("clone_average", ":"), ("clone_expert", "--")):
    ax.axhline(p[name]["sampled"]["payoff"]["mean"], color="grey", ls=style, label=name)
  ax.set(xlabel="RL iteration", ylabel="payoff of the games played (T=1)",
         title="Payoff over RL iterations (mean ± std over seeds)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  curve_path = save(fig, "curves")

  fig = Figure(figsize=(7, 4))
  ax = fig.subplots()
  names = list(p)
  for i, mode in enumerate(("sampled", "greedy")):
    ax.bar(np.arange(len(names)) + (i - 0.5) * 0.4, [p[n][mode]["payoff"]["mean"] for n in names],
           0.4, yerr=[p[n][mode]["payoff"]["std"] for n in names], capsize=3,
           label=f"{mode} ({'T=1' if mode == 'sampled' else 'T=0'})")
  ax.axhline(summary["demonstrators"]["expert"]["payoff"], color="k", ls="--",
             label="expert demonstrator")
  ax.set_xticks(np.arange(len(names)), names, rotation=20, fontsize=8)
  ax.set(ylabel="payoff", title="Final policies (mean ± std over seeds)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  bar_path = save(fig, "policies")
  lines += ["", f"![Payoff over RL iterations, terminal vs per-turn rewards]({curve_path})",
            "", f"![Payoff of the final policies]({bar_path})"]
  return "\n".join(lines)


if __name__ == "__main__":
  launch.run(main)
