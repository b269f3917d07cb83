"""Credit assignment across turns: policy learning in twenty questions at two horizons.

  python -m experiments.twenty_questions --config configs/twenty_questions.py \\
      --workdir workdirs/twenty_questions

Claim 6 of docs/design.md: multi-turn games need credit assignment across turns. Player
two finds a secret in [0, N) with threshold questions, each costing ``question_cost``,
and is paid ``guess_reward`` for the right guess. The demonstrator it clones asks at a
quarter of the interval most of the time, so cloning is systematically worse than the
expert's binary search and policy learning must learn which questions are good. Per
horizon (``horizons``: N secrets and the game's settings), each for ``num_seeds`` seeds
side by side (vmapped):

  <h>_clone         cloning player two of the lopsided demonstrator;
  <h>_value_warmup  from the clone, its value head alone learns from the clone's games
                    (``RLSettings.value_only``): every variant starts from these
                    parameters, whose policy is the clone's, PPO with a warm critic;
  <h>_rl_<variant>  policy learning against the game's payoff, one stage per entry of
                    ``rl_variants``: one advantage per turn ("turn": its rewards to go
                    minus the group's mean at that turn), per token ("ppo": GAE with the
                    value head) or per game ("grpo"), every one whitened alike.

Rewards are paid per turn, and shaped by the bits each answer gave (the game's
``shaping``): a question that halves the interval earns its cost back, a lopsided one
loses on average. Shaping sums to 0 over a game, so a sequence-level estimator sees the
payoff alone; turn- and token-level ones see which question was good. Every policy then
plays player one at temperature 1; the summary gives, per horizon, the payoff, the share
solved and the questions asked, each with its 95% t-interval over seeds; the payoff
curves over the RL iterations (averaged over ``curve_window`` records, 95% bands); each
seed's iterations to ``target_share`` of the expert's payoff; the paired differences the
rule of the config judges, and its verdict (``verdict``).
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import game as game_lib
from twoplayer_jax import games, players, rollout, train, vocab
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import pipeline
from twoplayer_jax.train import stages

GAME = "twenty_questions"


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
  the questions (charged turns) asked in the games solved (NaN for a seed that solved
  none)."""
  solved = np.asarray(results["solved"], np.float64)
  charged = np.asarray(results["charged"], np.float64)
  count = solved.sum(-1)
  return {"payoff": np.mean(results["payoff"], -1), "solve_rate": solved.mean(-1),
          "questions_to_solve": np.where(count > 0, (charged * solved).sum(-1)
                                         / np.maximum(count, 1), np.nan)}


def game_of(c, horizon: str, **settings):
  """Twenty questions at ``horizon``, paid per turn (``settings``: e.g. ``shaping``)."""
  return games.make(GAME, **c.horizons[horizon], per_turn_rewards=True, **settings)


def check(c) -> None:
  """The config's own settings, before anything runs."""
  problems = []
  if c.num_seeds < 2:
    problems.append(f"num_seeds must be at least 2 for intervals, got {c.num_seeds}")
  if not 0 <= c.lopsided_rate <= 1:
    problems.append(f"lopsided_rate must be in [0, 1], got {c.lopsided_rate}")
  if not 0 < c.target_share <= 1:
    problems.append(f"target_share must be in (0, 1], got {c.target_share}")
  for name in ("turn", "sequence"):
    if name not in c.rl_variants:
      problems.append(f"rl_variants must hold {name!r}: the rule compares turn and sequence")
  if problems:
    raise launch.ConfigError("config." + "; config.".join(problems))
  try:
    stages.check("imitation", c.clone, "config.clone")
    for name, v in c.rl_variants.items():
      stages.check("policy", c.rl, f"config.rl (variant {name})", algorithm=v.algorithm)
    stages.check("policy", {**c.rl, **c.value_warmup}, "config.value_warmup",
                 algorithm="ppo", value_only=True)
    for horizon in c.horizons:
      if game_of(c, horizon).max_length > c.model.max_length:
        raise ValueError(f"config.model.max_length={c.model.max_length} is shorter than "
                         f"horizon {horizon}'s transcripts ({game_of(c, horizon).max_length})")
  except ValueError as e:
    raise launch.ConfigError(str(e)) from None


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  # One architecture for every policy: PPO needs the value head, the others ignore it.
  model = common.model(c.model, scalar_head=True)
  seeds = c.num_seeds
  summary = {"num_seeds": seeds, "rule": c.rule, "verdict_settings": c.verdict_settings.to_dict(),
             "target_share": c.target_share, "lopsided_rate": c.lopsided_rate,
             "eval_games": c.eval_games, "rl_iterations": c.rl.iterations,
             "variants": c.rl_variants.to_dict(), "horizons": {}}
  with common.runner(c, workdir) as run:
    for horizon in c.horizons:
      game = game_of(c, horizon)
      human = games.player(GAME, 1, "human", game)
      tag = "_".join(f"{k}{v}" for k, v in sorted(c.horizons[horizon].items()))
      data = common.dataset("game_transcripts", data_configs.transcripts_config(
          GAME, {"lopsided": 1.0}, f"{GAME}_lopsided{c.lopsided_rate}_{tag}",
          game_settings=dict(c.horizons[horizon]),
          player_settings={"lopsided": {"rate": c.lopsided_rate}}),
          c.data_dir, c.num_examples, c.seed)
      name = lambda stage: f"{horizon}_{stage}"
      params = {"clone": run(stages.imitation(
          name("clone"), model, c.clone,
          pipeline.InMemory([data], game.max_length),
          seed=c.seed, num_seeds=seeds, seq_len=game.max_length)).params}
      shaped = game_of(c, horizon, shaping=True)
      warm = run(stages.policy(
          name("value_warmup"), shaped, model, {**c.rl, **c.value_warmup}, human,
          seed=c.seed + 1, num_seeds=seeds, start=params["clone"],
          games_sharding=run.games_sharding, algorithm="ppo", value_only=True, kl_coef=0.0))
      start = warm.params
      for variant, v in c.rl_variants.items():
        params[f"rl_{variant}"] = run(stages.policy(
            name(f"rl_{variant}"), game_of(c, horizon, shaping=v.shaping), model, c.rl, human,
            seed=c.seed + 2, num_seeds=seeds, start=start, fixed=train.Frozen(reference=start),
            games_sharding=run.games_sharding, per_seed_metrics=("payoff_two",),
            algorithm=v.algorithm)).params
      summary["horizons"][horizon] = assess(c, horizon, game, human, model, params, run.records,
                                            workdir)
    summary["verdict"] = verdict(summary)
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 6: {summary['verdict']['outcome']}")


def to_target(seeds, steps, target: float, window: int, budget: int
              ) -> tuple[list[int], list[bool]]:
  """Each seed's first logged step from which its payoff, averaged over the last
  ``window`` records (``common.trailing``), stays at or above ``target`` to the end of the
  stage (``budget`` where it ends below), and whether it ends there.

  Args:
    seeds: ``[S, T]`` the payoff per seed and logged step.
    steps: ``[T]`` the logged steps.
  """
  payoff = common.trailing(seeds, window)
  return (common.first_holding(payoff, steps, target, budget),
          (payoff[:, -1] >= target).tolist())


def assess(c, horizon, game, human, model, params, records, workdir) -> dict:
  """One horizon: every policy plays player one at temperature 1 (``eval_games`` per
  seed), the demonstrators on ``eval_games * num_seeds`` games; the RL curves, each
  seed's iterations to the target and the paired differences."""
  key = jax.random.key(c.seed + 3)
  two = players.model_player(model, game, temperature=1.0)
  per_seed = {}
  for name, p in params.items():
    traj = common.play_seeds(game, (human, two), (None, p), key, c.eval_games)
    per_seed[name] = summarise(jax.device_get(outcomes(game, traj)))
  demonstrators = {}
  for name, settings in (("lopsided", {"rate": c.lopsided_rate}), ("expert", {})):
    player = games.player(GAME, 2, name, game, **settings)
    traj = rollout.play(game, (human, player), (None, None), key, c.eval_games * c.num_seeds)
    demonstrators[name] = {k: float(v[0]) for k, v in summarise(
        jax.tree.map(lambda x: np.asarray(x)[None], outcomes(game, traj))).items()}
  target = c.target_share * demonstrators["expert"]["payoff"]
  curves, iterations, reached = {}, {}, {}
  for variant in c.rl_variants:
    logged = common.seed_curves(workdir, f"{horizon}_rl_{variant}", "payoff_two", c.num_seeds)
    curves[variant] = {"step": logged["step"],
                       "payoff_two": common.band(logged["seeds"], c.curve_window)}
    iterations[variant], reached[variant] = to_target(
        logged["seeds"], logged["step"], target, c.curve_window, c.rl.iterations)
  payoff = lambda name: per_seed[name]["payoff"]
  steps = lambda variant: np.asarray(iterations[variant], np.float64)
  differences = {f"{v} - clone": common.interval(payoff(f"rl_{v}") - payoff("clone"))
                 for v in c.rl_variants}
  for v in c.rl_variants:
    if v != "sequence":
      differences[f"{v} - sequence"] = common.interval(payoff(f"rl_{v}") - payoff("rl_sequence"))
      differences[f"iterations: sequence - {v}"] = common.interval(steps("sequence") - steps(v))
  policies = {name: {**{k: common.interval(x) for k, x in s.items()},
                     "seconds": records[f"{horizon}_{name}"]["seconds"]}
              for name, s in per_seed.items()}
  return {"game": dict(c.horizons[horizon]), "max_length": game.max_length,
          "policies": policies, "demonstrators": demonstrators, "target": target,
          "iterations_to_target": iterations, "reached_target": reached, "curves": curves,
          "differences": differences,
          "value_warmup": {k: records[f"{horizon}_value_warmup"]["metrics"].get(k)
                           for k in ("value_loss", "loss")}}


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned", with the figures it compared."""
  tolerance = summary["verdict_settings"]["learned_tolerance"]
  gaps = {h: abs(s["policies"]["clone"]["payoff"]["mean"]
                 - s["demonstrators"]["lopsided"]["payoff"])
          for h, s in summary["horizons"].items()}
  longest = max(summary["horizons"], key=lambda h: summary["horizons"][h]["game"]["num_secrets"])
  d = summary["horizons"][longest]["differences"]
  checks = {"(a) turn reaches the target sooner": d["iterations: sequence - turn"]["low"] > 0,
            "(b) turn's final payoff > sequence's": d["turn - sequence"]["low"] > 0}
  outcome = ("inconclusive: not learned" if max(gaps.values()) > tolerance
             else "confirmed" if all(checks.values()) else "not confirmed")
  return {"outcome": outcome, "horizon": longest, "checks": checks,
          "clone_gap_to_demonstrator": gaps}


def table(summary: dict) -> str:
  """The policies per horizon as a Markdown table: mean ± sample std [95% interval]."""
  lines = ["| horizon | policy | payoff | solved | questions to solve | iterations to target "
           "(per seed) | wall s |", "|---" * 7 + "|"]
  for horizon, s in summary["horizons"].items():
    for name, p in s["policies"].items():
      variant = name[3:] if name.startswith("rl_") else None
      steps = "—" if variant is None else ", ".join(
          str(x) if hit else "not reached" for x, hit in zip(
              s["iterations_to_target"][variant], s["reached_target"][variant]))
      questions = (common.cell(p["questions_to_solve"]) if np.isfinite(
          p["questions_to_solve"]["mean"]) else "— (a seed solved none)")
      lines.append(f"| {horizon} | {name} | {common.cell(p['payoff'])} | "
                   f"{common.cell(p['solve_rate'])} | {questions} | {steps} | "
                   f"{p['seconds']:.0f} |")
    for name, d in s["demonstrators"].items():
      lines.append(f"| {horizon} | demonstrator {name} | {d['payoff']:.3f} | "
                   f"{d['solve_rate']:.3f} | {d['questions_to_solve']:.3f} | — | — |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table, the rule and its figures, and the plots."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  v, horizons = summary["verdict"], summary["horizons"]
  variants = list(summary["variants"])
  describe = {"turn": "one advantage per turn", "ppo": "token-level GAE",
              "grpo": "one advantage per game"}
  out = [
      f"{summary['num_seeds']} seeds, {summary['eval_games']} games per seed and policy, "
      "sampled at temperature 1; mean ± sample std [95% t-interval] over seeds. The clone's "
      f"demonstrator asks at a quarter of the interval in {summary['lopsided_rate']:g} of its "
      "questions; every RL variant starts from the same seed's clone and learns for "
      f"{summary['rl_iterations']} iterations: " + "; ".join(
          f"*{n}*: {describe.get(s['algorithm'], s['algorithm'])}"
          f"{', shaped rewards' if s['shaping'] else ''}"
          for n, s in summary["variants"].items())
      + f". *Iterations to target*: the first iteration from which a seed's payoff (averaged "
      f"over a window of logged records) stays at or above {summary['target_share']:g} of "
      "the expert's to the end of its training.", "", table(summary), "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "",
      "| horizon | paired difference | mean ± std [95%] |", "|---|---|---|"]
  for horizon, s in horizons.items():
    for key, m in s["differences"].items():
      out.append(f"| {horizon} | {key} | {common.cell(m)} |")
  gaps = ", ".join(f"{h} {x:.3f}" for h, x in v["clone_gap_to_demonstrator"].items())
  out += ["", "Targets: " + ", ".join(f"{h} {s['target']:.3f}" for h, s in horizons.items())
          + f". The clone's gap to its demonstrator: {gaps}. At {v['horizon']}: "
          + "; ".join(f"{k} {common.holds(x)}" for k, x in v["checks"].items()) + ".", "",
          f"Claim 6 by this rule: **{v['outcome']}**."]

  fig = Figure(figsize=(5 * len(horizons), 3.8))
  for ax, (horizon, s) in zip(np.atleast_1d(fig.subplots(1, len(horizons))), horizons.items()):
    for variant, curve in s["curves"].items():
      band = curve["payoff_two"]
      ax.plot(curve["step"], band["mean"], label=variant)
      ax.fill_between(curve["step"], band["low"], band["high"], alpha=0.2)
    ax.axhline(s["target"], color="k", ls="--", label="target")
    ax.axhline(s["demonstrators"]["lopsided"]["payoff"], color="grey", ls=":",
               label="lopsided demonstrator")
    ax.set(xlabel="RL iteration", ylabel="payoff of the iteration's games (T=1)",
           title=f"{horizon}: {s['game']['num_secrets']} secrets")
    ax.legend(fontsize=7)
  fig.suptitle("Payoff over RL iterations: trailing mean over a window, 95% t-band over seeds")
  fig.tight_layout()
  out += ["", f"![Payoff over RL iterations per horizon]({save(fig, 'curves')})"]

  fig = Figure(figsize=(10, 3.8))
  ax_steps, ax_payoff = fig.subplots(1, 2)
  secrets = [s["game"]["num_secrets"] for s in horizons.values()]
  for i, variant in enumerate(variants):
    shift = 1 + 0.04 * (i - (len(variants) - 1) / 2)  # Side by side on the log axis.
    mean, err = common.error_bars([common.interval(s["iterations_to_target"][variant])
                                   for s in horizons.values()])
    ax_steps.errorbar(np.array(secrets) * shift, mean, yerr=err, marker="o", capsize=3,
                      label=variant)
    mean, err = common.error_bars([s["policies"][f"rl_{variant}"]["payoff"]
                                   for s in horizons.values()])
    ax_payoff.errorbar(np.array(secrets) * shift, mean, yerr=err, marker="o", capsize=3,
                       label=variant)
  ax_steps.axhline(summary["rl_iterations"], color="k", ls=":", label="not reached")
  ax_payoff.plot(secrets, [s["target"] for s in horizons.values()], "k--", label="target")
  ax_payoff.plot(secrets, [s["policies"]["clone"]["payoff"]["mean"] for s in horizons.values()],
                 color="grey", ls=":", marker="x", label="clone")
  for ax, label in ((ax_steps, "iterations to the target"), (ax_payoff, "final payoff (T=1)")):
    ax.set_xscale("log", base=2)
    ax.set(xlabel="horizon: number of secrets", ylabel=label, title=label)
    ax.legend(fontsize=7)
  fig.suptitle("Per estimator against the horizon: mean and 95% t-interval over seeds")
  fig.tight_layout()
  out += ["", f"![Iterations to the target and final payoff against the horizon]"
          f"({save(fig, 'horizons')})"]
  return "\n".join(out)


if __name__ == "__main__":
  launch.run(main)
