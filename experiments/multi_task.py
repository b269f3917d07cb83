"""Multi-task learning: one player two facing many player ones, against specialists.

  python -m experiments.multi_task --config configs/multi_task.py --workdir workdirs/multi_task

Claim 8 of docs/design.md: a model trained on a mixture of games is one player two facing
many player ones; against specialists trained on each game alone it transfers or
interferes, measurably. For each model size of ``sizes``, player two is cloned (SFT)
from each game's expert, ``num_seeds`` seeds side by side (vmapped):

  specialist_<game>_<size>  ``steps`` steps on the expert's games of that game alone;
  generalist_<size>         ``len(games) * steps`` steps, at the same batch size, on the
                            experts' games of the mixture (``games.mixture``, equal
                            weights): as many games of each game as its specialist saw,
                            with the same model.

Every policy then plays ``eval_games`` greedy games of each game it was trained on. The
summary gives each game's payoff per policy, each game's generalist-minus-specialist
difference per size with its 95% Welch interval, the change of that difference from the
smallest to the largest size, and the verdict of the rule fixed in the config
(``verdict``).
"""

import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, models, players, rollout
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import pipeline
from twoplayer_jax.train import stages


def mixture_settings(c) -> dict:
  """``games.make("mixture", ...)``'s settings: the config's games, equal weights."""
  return {"components": tuple((name, tuple(sorted(s.items())))
                              for name, s in c.games.to_dict().items())}


def played(c) -> dict:
  """Each game of the config by name, and the mixture."""
  out = {name: games.make(name, **s) for name, s in c.games.to_dict().items()}
  return {**out, "mixture": games.make("mixture", **mixture_settings(c))}


def demonstrations(c, name: str):
  """The expert's games of ``name`` (a game of the config, or "mixture")."""
  tag = lambda game: game + "".join(f"_{k}{v}" for k, v in sorted(c.games[game].items()))
  if name == "mixture":
    settings, tag = mixture_settings(c), "_".join(map(tag, c.games))
  else:
    settings, tag = c.games[name].to_dict(), tag(name)
  config = data_configs.transcripts_config(name, {"expert": 1.0}, f"multi_task_{tag}",
                                           game_settings=settings)
  return common.dataset("game_transcripts", config, c.data_dir, c.games_per_dataset, c.seed)


def check(c) -> None:
  """Raises on settings the experiment cannot run with."""
  if len(c.games) < 2 or not c.sizes or c.num_seeds < 2:
    raise launch.ConfigError(f"need two games or more, a model size and two seeds or more, "
                             f"got games {list(c.games)}, sizes {list(c.sizes)} and "
                             f"num_seeds={c.num_seeds}")
  try:
    longest = played(c)["mixture"].max_length
  except (ValueError, TypeError, KeyError) as e:
    raise launch.ConfigError(f"config.games: {e}") from None
  for size, model in c.sizes.items():
    if model.max_length < longest:
      raise launch.ConfigError(f"config.sizes.{size}.max_length={model.max_length} is shorter "
                               f"than the mixture's longest game ({longest} tokens)")


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  by_name = played(c)
  sized = {size: models.make(models.TransformerConfig(**c.sizes[size]))
           for size in ordered_sizes(c)}
  with common.runner(c, workdir) as run:
    params = {}
    for size, model in sized.items():
      for name in [*c.games, "mixture"]:
        steps = c.steps * (len(c.games) if name == "mixture" else 1)
        block = dict(steps=steps, batch_size=c.batch_size, learning_rate=c.learning_rate,
                     warmup_steps=c.warmup_steps)
        seq_len = by_name[name].max_length
        demos = pipeline.InMemory([demonstrations(c, name)], seq_len)
        params[stage_name(name, size)] = run(stages.imitation(
            stage_name(name, size), model, block, demos, seed=c.seed, num_seeds=c.num_seeds,
            seq_len=seq_len)).params
    summary = assess(c, by_name, sized, params, run.records)
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 8: {summary['verdict']['outcome']}")


def ordered_sizes(c) -> list[str]:
  """The model sizes' names, smallest first (by layers, then width)."""
  return sorted(c.sizes, key=lambda s: (c.sizes[s].num_layers, c.sizes[s].d_model))


def stage_name(name: str, size: str) -> str:
  """The stage of game ``name``'s specialist, or of the generalist (``name`` "mixture")."""
  return f"generalist_{size}" if name == "mixture" else f"specialist_{name}_{size}"


def assess(c, by_name, sized, params, records) -> dict:
  """Every policy's greedy payoff on each game it trained on (``sized``: each size's
  model, smallest first); the experts'; the differences the rule judges and its verdict."""
  key = jax.random.key(c.seed + 3)
  payoff = {}
  experts = {}
  for name in c.games:
    game = by_name[name]
    human = games.player(name, 1, "human", game)
    expert = rollout.play(game, (human, games.player(name, 2, "expert", game)), (None, None),
                          key, c.eval_games)
    experts[name] = float(np.mean(expert.returns[:, 1]))
    for size, model in sized.items():
      greedy = players.model_player(model, game, temperature=0.0)
      for who in (name, "mixture"):  # The same games for the specialist and the generalist.
        traj = common.play_seeds(game, (human, greedy), (None, params[stage_name(who, size)]),
                                 key, c.eval_games)
        payoff[(name, size, who)] = np.asarray(traj.returns[..., 1].mean(-1))
  sizes = list(sized)
  per_game = {}
  for name in c.games:
    per_game[name] = {"expert": experts[name], "sizes": {}}
    for size in sizes:
      specialist, generalist = payoff[(name, size, name)], payoff[(name, size, "mixture")]
      per_game[name]["sizes"][size] = {
          "specialist": common.interval(specialist), "generalist": common.interval(generalist),
          "difference": common.difference(generalist, specialist)}
    first, last = (per_game[name]["sizes"][s]["difference"]["mean"] for s in (sizes[0], sizes[-1]))
    per_game[name]["difference_change"] = last - first
  policies = {stage_name(name, size): {
      "tokens": records[stage_name(name, size)]["tokens"],
      "seconds": records[stage_name(name, size)]["seconds"],
      "final_loss": records[stage_name(name, size)]["metrics"]["loss"],
      "seq_len": by_name[name].max_length} for size in sizes for name in [*c.games, "mixture"]}
  summary = {"num_seeds": c.num_seeds, "games": per_game, "sizes": sizes,
             "game_settings": c.games.to_dict(), "model_sizes": c.sizes.to_dict(),
             "steps": c.steps, "batch_size": c.batch_size, "eval_games": c.eval_games,
             "policies": policies, "rule": c.rule,
             "verdict_settings": c.verdict_settings.to_dict()}
  summary["verdict"] = verdict(summary)
  return summary


def effect(difference: dict) -> str:
  """"transfer", "interference" or "no measurable difference" by the interval's side."""
  if difference["low"] > 0:
    return "transfer"
  return "interference" if difference["high"] < 0 else "no measurable difference"


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned", with each cell's effect ("not learned" where its
  specialist did not learn)."""
  least = summary["verdict_settings"]["learned_fraction"]
  learned = {name: {size: s["specialist"]["mean"] / g["expert"] for size, s in g["sizes"].items()}
             for name, g in summary["games"].items()}
  effects = {name: {size: effect(s["difference"]) if learned[name][size] >= least
                    else "not learned" for size, s in g["sizes"].items()}
             for name, g in summary["games"].items()}
  judged = [e for by_size in effects.values() for e in by_size.values() if e != "not learned"]
  if not judged:
    outcome = "inconclusive: not learned"
  elif any(e != "no measurable difference" for e in judged):
    outcome = "confirmed"
  else:
    outcome = "not confirmed"
  return {"outcome": outcome, "effects": effects, "specialist_over_expert": learned}


def table(summary: dict) -> str:
  """Per game and size: specialist, generalist, their difference and its effect by the
  rule ("not learned" where the specialist did not learn)."""
  lines = ["| game | size | expert | specialist | generalist | generalist − specialist "
           "[95% Welch] | effect |", "|---|---|---|---|---|---|---|"]
  effects = summary["verdict"]["effects"]
  for name, g in summary["games"].items():
    for size, s in g["sizes"].items():
      lines.append(f"| {name} | {size} | {g['expert']:.3f} | {common.cell(s['specialist'])} | "
                   f"{common.cell(s['generalist'])} | {common.signed(s['difference'])} | "
                   f"{effects[name][size]} |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table, the rule and its outcome, the plot."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  names, sizes = list(summary["games"]), summary["sizes"]
  fig = Figure(figsize=(5 * len(names), 3.6))
  for ax, name in zip(np.atleast_1d(fig.subplots(1, len(names))), names):
    g = summary["games"][name]
    x = np.arange(len(sizes))
    for offset, who in ((-0.2, "specialist"), (0.2, "generalist")):
      mean, err = common.error_bars([g["sizes"][s][who] for s in sizes])
      ax.bar(x + offset, mean, 0.4, label=who, yerr=err, capsize=3)
    ax.axhline(g["expert"], color="k", ls=":", label="expert")
    ax.set_xticks(x, sizes)
    ax.set(xlabel="model size", ylabel="greedy payoff", title=name)
    ax.legend(fontsize=7)
  fig.suptitle("mean and 95% t-interval over seeds")
  fig.tight_layout()
  path = save(fig, "payoff")
  v = summary["verdict"]
  changes = ", ".join(f"{n} {g['difference_change']:+.3f}" for n, g in summary["games"].items())
  learned = "; ".join(f"{n} " + ", ".join(f"{size} {x:.3f}" for size, x in by_size.items())
                      for n, by_size in v["specialist_over_expert"].items())
  return "\n".join([
      f"Player two cloned from each game's expert: a specialist per game ({summary['steps']} "
      f"steps of {summary['batch_size']} games) and a generalist on the mixture of all "
      f"({len(names)} times the steps: as many games of each), {summary['num_seeds']} seeds "
      f"each, per model size ({', '.join(sizes)}); greedy payoff on {summary['eval_games']} "
      "games per seed and game, mean ± sample std [95% t-interval].", "", table(summary), "",
      f"![payoff per game, specialist and generalist, per model size]({path})", "",
      f"Change of the difference from {sizes[0]} to {sizes[-1]}: {changes}. Specialists' "
      f"payoff over the expert's: {learned}.", "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "", f"Claim 8 by this rule: **{v['outcome']}**."])


if __name__ == "__main__":
  launch.run(main)
