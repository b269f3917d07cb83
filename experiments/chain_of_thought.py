"""Chain of thought: player two writing its intermediate moves, four formats at equal tokens.

  python -m experiments.chain_of_thought --config configs/chain_of_thought.py \\
      --workdir workdirs/chain_of_thought

Claim 2 of docs/design.md: demonstrations that write the chain out (Q-C-A) teach player two
more than answer-only demonstrations (Q-A) of the same problems at equal tokens, most on
harder problems. Two controls separate the chain from what comes with it:

  Q-A           ``362``: the answer, most significant digit first;
  Q-A reversed  ``263``: the answer in the order the chain finds its digits (and a carry
                travels), so order alone is not the gain;
  Q-filler-A    ``.....=362``: as many dots before the answer as the chain has
                characters, so the tokens written (the compute) before answering are the
                chain's but carry nothing;
  Q-C-A         ``7+5+0=12;1+4+1=6;3+0+0=3;=362``: the chain, then the answer.

Player two is cloned (SFT) from the arithmetic game's expert in each format (stages
``sft_<format>_lr<rate>``, ``num_seeds`` seeds each, vmapped), once per learning rate of
``learning_rates``. Its training problems mix one dataset per digit count of
``train_digits``, the same problems in every format (the builders draw the same operands
from the same seed), packed several games to a row of ``row_length`` tokens (each game
attending only to itself, at its own positions, as in play). Every format trains the
same steps on the same number of rows, so on equal tokens and equal compute: the
answer-only formats' shorter games fit more to a row (the summary gives the games and
the loss tokens each format learned from). Each policy plays greedy
games against player one: on validation problems to choose each format's learning rate,
then on test problems per digit count, scored by the payoff (1 for the exact answer, so
the mean payoff is the accuracy) and split by the number of carries of the problem.
"""

import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, players, vocab
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import pipeline, sources
from twoplayer_jax.train import stages

GAME = "arithmetic"
FORMATS = ("qa", "reversed", "filler", "qca")
NAMES = {"qa": "Q-A", "reversed": "Q-A reversed", "filler": "Q-filler-A", "qca": "Q-C-A"}
CONTROLS = ("qa", "reversed", "filler")  # The formats Q-C-A is compared with, (a) to (c).


def arithmetic(c, num_digits: int, answer_format: str):
  """The arithmetic game of the config's operation."""
  return games.make(GAME, num_digits=num_digits, operation=c.operation,
                    answer_format=answer_format)


def demonstrations(c, answer_format: str) -> list[sources.Source]:
  """The expert's games in ``answer_format``, one dataset per training digit count."""
  parts = []
  for digits, count in zip(c.train_digits, c.train_examples):
    settings = dict(num_digits=digits, operation=c.operation, answer_format=answer_format)
    config = data_configs.transcripts_config(
        GAME, {"expert": 1.0}, f"cot_{c.operation}_{answer_format}_d{digits}",
        game_settings=settings)
    parts.append(common.dataset("game_transcripts", config, c.data_dir, count, c.seed))
  return parts


def check(c) -> None:
  """Raises on settings the experiment cannot run with."""
  if len(c.train_digits) != len(c.train_examples) or not c.train_digits:
    raise launch.ConfigError(f"train_digits {c.train_digits} and train_examples "
                             f"{c.train_examples} must be non-empty and of one length")
  if not c.bulk_digits or not set(c.bulk_digits) <= set(c.eval_digits):
    raise launch.ConfigError(f"eval_digits {c.eval_digits} must hold every bulk_digits "
                             f"{c.bulk_digits} (the learned check plays them)")
  if not c.learning_rates:
    raise launch.ConfigError("learning_rates is empty: give at least one rate per format")
  longest = max(arithmetic(c, d, "qca").max_length for d in c.eval_digits)
  if c.model.max_length < max(longest, c.row_length):
    raise launch.ConfigError(
        f"model.max_length={c.model.max_length} is shorter than a row (row_length="
        f"{c.row_length}) or the longest evaluated game ({longest} tokens, Q-C-A with "
        f"{max(c.eval_digits)} digits)")
  trained = max(arithmetic(c, d, "qca").max_length for d in c.train_digits)
  if c.row_length < trained:
    raise launch.ConfigError(f"row_length={c.row_length} is shorter than the longest "
                             f"training game ({trained} tokens, Q-C-A)")
  if steps(c) < 1:
    raise launch.ConfigError(f"token_budget={c.token_budget} buys no step of "
                             f"batch_size={c.batch_size} rows of {c.row_length} tokens")


def steps(c) -> int:
  """Steps that spend the token budget, the same for every format."""
  return c.token_budget // (c.batch_size * c.row_length)


def games_per_row(demos: pipeline.InMemory) -> float:
  """Mean games in a packed row of ``demos``."""
  return float(demos.rows.segments.max(1).mean())


def stage_name(answer_format: str, learning_rate: float) -> str:
  return f"sft_{answer_format}_lr{learning_rate:g}"


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  model = common.model(c.model)
  with common.runner(c, workdir) as run:
    params, records = {}, {}
    for fmt in FORMATS:
      demos = pipeline.InMemory(demonstrations(c, fmt), c.row_length, packed=True, seed=c.seed)
      for lr in c.learning_rates:
        name = stage_name(fmt, lr)
        block = dict(steps=steps(c), batch_size=c.batch_size, learning_rate=lr,
                     warmup_steps=c.warmup_steps)
        # Every rate reads the same rows (read once) in the same order.
        params[name] = run(stages.imitation(name, model, block, demos, seed=c.seed,
                                            num_seeds=c.num_seeds, seq_len=c.row_length)).params
        records[name] = {**run.records[name], "steps": block["steps"],
                         "games_per_row": games_per_row(demos)}
    summary = assess(c, model, params, records)
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 2: {summary['verdict']['outcome']}")


def play(c, model, params, answer_format: str, key, num_games: int) -> dict:
  """Greedy games of one format's stacked policies ``[S, ...]``, per digit count of
  ``eval_digits``: ``paid`` ``[S, G]`` (1 for the exact answer), ``carries`` ``[G]`` (every
  seed plays the same problems) and seed 0's first game as text."""
  out = {}
  for digits in c.eval_digits:
    game = arithmetic(c, digits, answer_format)
    greedy = players.model_player(model, game, temperature=0.0)
    human = games.player(GAME, 1, "human", game)
    traj = common.play_seeds(game, (human, greedy), (None, params), key, num_games)
    out[digits] = {"paid": np.asarray(traj.returns[..., 1]),
                   "carries": np.asarray(jax.vmap(game.num_carries)(traj.hidden["operands"][0])),
                   "example": vocab.render(np.asarray(traj.tokens[0, 0]),
                                           np.asarray(traj.owner[0, 0]), int(traj.length[0, 0]))}
  return out


def accuracy(played: dict) -> np.ndarray:
  """``[S]`` accuracy averaged over digit counts with equal weight."""
  return np.mean([p["paid"].mean(-1) for p in played.values()], 0)


def by_carries(played: dict, carries: int, at_least: bool = False) -> np.ndarray:
  """``[S]`` accuracy on the problems (of every digit count) with ``carries`` carries, or
  at least that many; NaN when there are none."""
  paid = np.concatenate([p["paid"] for p in played.values()], -1)
  count = np.concatenate([p["carries"] for p in played.values()])
  keep = count >= carries if at_least else count == carries
  return paid[:, keep].mean(-1) if keep.any() else np.full(len(paid), np.nan)


def assess(c, model, params, records) -> dict:
  """Each format's learning rate chosen on validation problems; its policy's greedy test
  accuracy per digit count and per number of carries; the rule's paired differences and
  verdict."""
  validation_key, test_key = jax.random.split(jax.random.key(c.seed + 3))
  carry_counts = range(max(c.eval_digits) + 1)
  summary = {"formats": {}, "num_seeds": c.num_seeds, "train_digits": list(c.train_digits),
             "train_examples": list(c.train_examples), "eval_digits": list(c.eval_digits),
             "bulk_digits": list(c.bulk_digits),
             "token_budget": c.token_budget, "row_length": c.row_length,
             "operation": c.operation, "rule": c.rule,
             "verdict_settings": c.verdict_settings.to_dict(), "eval_games": c.eval_games}
  tested, hard = {}, c.verdict_settings.hard_carries
  for fmt in FORMATS:
    validation = {lr: float(accuracy(play(c, model, params[stage_name(fmt, lr)], fmt,
                                          validation_key, c.validation_games)).mean())
                  for lr in c.learning_rates}
    lr = max(c.learning_rates, key=validation.get)
    name = stage_name(fmt, lr)
    tested[fmt] = played = play(c, model, params[name], fmt, test_key, c.eval_games)
    carried = {k: by_carries(played, k) for k in carry_counts}
    r = records[name]
    summary["formats"][fmt] = {
        "learning_rate": lr, "validation_accuracy": {f"{k:g}": v for k, v in validation.items()},
        "accuracy": common.interval(accuracy(played)),
        "by_digits": {str(d): common.interval(p["paid"].mean(-1)) for d, p in played.items()},
        "by_carries": {str(k): common.interval(v) for k, v in carried.items()
                       if not np.isnan(v).any()},
        "hard": common.interval(by_carries(played, hard, at_least=True)),
        "example_game": played[max(c.eval_digits)]["example"],
        "steps": r["steps"], "games_per_row": r["games_per_row"], "tokens": r["tokens"],
        "loss_tokens": int(round(r["metrics"]["tokens"] * r["steps"])),
        "final_loss": r["metrics"]["loss"], "seconds": r["seconds"]}
  problems = np.concatenate([p["carries"] for p in tested["qca"].values()])
  summary["problems_by_carries"] = {str(k): int((problems == k).sum()) for k in carry_counts}
  gain = lambda k, at_least=False: (by_carries(tested["qca"], k, at_least)
                                    - by_carries(tested["qa"], k, at_least))
  summary["differences"] = {
      **{f"qca - {fmt}": common.interval(accuracy(tested["qca"]) - accuracy(tested[fmt]))
         for fmt in CONTROLS},
      "gain on hard - gain without a carry": common.interval(gain(hard, True) - gain(0))}
  summary["verdict"] = verdict(summary)
  return summary


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned", with the figures it compared."""
  v, f, d = summary["verdict_settings"], summary["formats"], summary["differences"]
  checks = {f"({x}) qca > {fmt}": d[f"qca - {fmt}"]["low"] > 0
            for x, fmt in zip("abc", CONTROLS)}
  checks["(d) gain larger on hard problems"] = d["gain on hard - gain without a carry"]["low"] > 0
  learned = {f"qca {k}-digit": f["qca"]["by_digits"][str(k)]["mean"]
             for k in summary["bulk_digits"]}
  ok = min(learned.values()) >= v["learned_accuracy"]
  outcome = ("inconclusive: not learned" if not ok
             else "confirmed" if all(checks.values()) else "not confirmed")
  return {"outcome": outcome, "checks": checks, "learned": learned}


def table(summary: dict) -> str:
  """Accuracy per digit count and format as a Markdown table (mean ± sample std [95%])."""
  f = summary["formats"]
  rows = ["| digits | " + " | ".join(NAMES[x] for x in FORMATS) + " |",
          "|---" * (len(FORMATS) + 1) + "|"]
  for d in summary["eval_digits"]:
    rows.append(f"| {d} | " + " | ".join(common.cell(f[x]["by_digits"][str(d)]) for x in FORMATS)
                + " |")
  rows.append("| **all** | " + " | ".join(f"**{common.cell(f[x]['accuracy'])}**" for x in FORMATS)
              + " |")
  return "\n".join(rows)


def report(summary: dict, save) -> str:
  """The Markdown section of RESULTS.md: the tables, the rule and its verdict, the plots."""
  from matplotlib import figure  # pylint: disable=import-outside-toplevel
  f, v, d = summary["formats"], summary["verdict"], summary["differences"]
  fig = figure.Figure(figsize=(10, 3.8))
  for ax, (key, label) in zip(fig.subplots(1, 2), (("by_carries", "carries in the problem"),
                                                  ("by_digits", "digits per operand"))):
    for x, marker in zip(FORMATS, "os^D"):
      ticks = [int(k) for k in f[x][key]]
      mean, err = common.error_bars(list(f[x][key].values()))
      ax.errorbar(ticks, mean, yerr=err, marker=marker, capsize=3, label=NAMES[x])
    ax.set(xlabel=label, ylabel="greedy accuracy", ylim=(-0.02, 1.02), xticks=ticks)
    ax.legend(fontsize=7)
  fig.suptitle(f"SFT at {summary['token_budget']:,} tokens per seed: mean and 95% "
               "t-interval over seeds")
  fig.tight_layout()
  path = save(fig, "accuracy")

  carries = ["| carries | problems | " + " | ".join(NAMES[x] for x in FORMATS) + " |",
             "|---" * (len(FORMATS) + 2) + "|"]
  for k, n in summary["problems_by_carries"].items():
    if k in f["qca"]["by_carries"]:
      carries.append(f"| {k} | {n} | " + " | ".join(common.cell(f[x]["by_carries"][k])
                                                    for x in FORMATS) + " |")
  budget = ["| format | learning rate (validation accuracy per rate) | steps | games per row | "
            "tokens per seed | loss tokens per seed | final loss | wall s |",
            "|---" * 8 + "|"]
  for x in FORMATS:
    s = f[x]
    rates = ", ".join(f"{k}: {a:.3f}" for k, a in s["validation_accuracy"].items())
    budget.append(f"| {NAMES[x]} | {s['learning_rate']:g} ({rates}) | {s['steps']} | "
                  f"{s['games_per_row']:.2f} | {s['tokens']:,} | {s['loss_tokens']:,} | "
                  f"{s['final_loss']:.4f} | {s['seconds']:.0f} |")
  names = dict(zip(d, v["checks"]))
  diffs = ["| paired difference | mean ± std [95%] | check |", "|---|---|---|"]
  for key, m in d.items():
    diffs.append(f"| {key} | {common.cell(m)} | "
                 f"{common.holds(v['checks'][names[key]])} |")
  learned = ", ".join(f"{k} {a:.3f}" for k, a in v["learned"].items())
  settings = ", ".join(f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
  examples = "\n".join(f"{NAMES[x]}:\n{f[x]['example_game']}" for x in FORMATS)
  mix = ", ".join(f"{k} digits: {n:,}" for k, n in zip(summary["train_digits"],
                                                       summary["train_examples"]))
  return "\n".join([
      f"Player two cloned from the expert's {summary['operation']} demonstrations in four "
      f"formats at an equal budget of tokens (the same steps of {summary['row_length']}-token "
      f"rows, games packed several to a row), {summary['num_seeds']} seeds each; "
      f"training problems per digit count ({mix}). Greedy accuracy on "
      f"{summary['eval_games']} test problems per seed and digit count (the same problems "
      "for every format), mean ± sample std [95% t-interval] over seeds.", "", table(summary),
      "",
      "By the number of carries (problems of every digit count pooled):", "", *carries, "",
      *budget, "", f"![accuracy against carries and digits per format]({path})", "",
      f"Rule (fixed before the run, with {settings}): {summary['rule']}", "", *diffs, "",
      f"Learned check (accuracy, mean over seeds): {learned}.", "",
      f"Claim 2 by this rule: **{v['outcome']}**.", "",
      f"Seed 0's greedy game on the first {max(summary['eval_digits'])}-digit test problem:",
      "", "```", examples, "```", ""])


if __name__ == "__main__":
  launch.run(main)
