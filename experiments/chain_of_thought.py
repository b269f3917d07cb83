"""Chain of thought: player two writing its intermediate moves, Q-C-A against Q-A data.

  python -m experiments.chain_of_thought --config configs/chain_of_thought.py \\
      --workdir workdirs/chain_of_thought

Claim 2 of docs/design.md: demonstrations that write the chain out (Q-C-A) teach player two
better than answer-only demonstrations (Q-A) of the same problems at an equal budget of
training tokens, most on harder problems and on problems longer than any trained on.

Player two is cloned (SFT) from the arithmetic game's expert, once per answer format
(stages ``sft_qa`` and ``sft_qca``, ``num_seeds`` seeds each, vmapped). Its training
problems mix one dataset per digit count in ``train_digits``, the same problems in
both formats (the builders draw the same operands from the same seed), every game
padded to the format's longest training game. The budget is counted in padded
sequence tokens, ``steps x batch_size x seq_len``, which is also the compute: Q-A games are shorter, so Q-A trains
for proportionally more steps and sees more problems (the summary also gives the loss
tokens each format learned from). Each policy then plays
``eval_games`` greedy games per digit count in ``eval_digits``, those beyond training
included, against player one; the payoff is 1 for the exact answer, so the mean payoff
is the accuracy.
"""

import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, players, vocab
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import sources
from twoplayer_jax.train import stages

GAME = "arithmetic"
FORMATS = ("qa", "qca")
NAMES = {"qa": "Q-A", "qca": "Q-C-A"}


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
  longest = max(arithmetic(c, d, "qca").max_length for d in c.eval_digits)
  if c.model.max_length < longest:
    raise launch.ConfigError(
        f"model.max_length={c.model.max_length} is shorter than the longest evaluated game "
        f"({longest} tokens, Q-C-A with {max(c.eval_digits)} digits)")
  for fmt in FORMATS:
    if steps_of(c, fmt) < 1:
      raise launch.ConfigError(f"token_budget={c.token_budget} buys no step of {fmt} games")


def seq_len_of(c, answer_format: str) -> int:
  """Tokens each training game of ``answer_format`` is padded to."""
  return max(arithmetic(c, d, answer_format).max_length for d in c.train_digits)


def steps_of(c, answer_format: str) -> int:
  """Steps that spend the token budget on ``answer_format``'s games."""
  return c.token_budget // (c.batch_size * seq_len_of(c, answer_format))


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  model = common.model(c.model)
  with common.runner(c, workdir) as run:
    records, params = {}, {}
    for fmt in FORMATS:
      name, steps, seq_len = f"sft_{fmt}", steps_of(c, fmt), seq_len_of(c, fmt)
      block = dict(steps=steps, batch_size=c.batch_size, learning_rate=c.learning_rate,
                   warmup_steps=c.warmup_steps)
      demos = common.Games(demonstrations(c, fmt), c.num_seeds * c.batch_size, seq_len, c.seed)
      params[fmt] = run(stages.imitation(name, model, block, demos, seed=c.seed,
                                         num_seeds=c.num_seeds, seq_len=seq_len)).params
      records[fmt] = {**run.records[name], "steps": steps, "seq_len": seq_len}
    summary = assess(c, model, params, records)
    common.write_summary(workdir, summary)
    print(table(summary))


def assess(c, model, params, records) -> dict:
  """Greedy accuracy of each format's policy per digit count, and the claim's checks."""
  key = jax.random.key(c.seed + 3)
  summary = {"formats": {}, "num_seeds": c.num_seeds, "train_digits": list(c.train_digits),
             "eval_digits": list(c.eval_digits), "token_budget": c.token_budget,
             "operation": c.operation}
  for fmt in FORMATS:
    accuracy, examples = {}, {}
    for digits in c.eval_digits:
      game = arithmetic(c, digits, fmt)
      greedy = players.model_player(model, game, temperature=0.0)
      human = games.player(GAME, 1, "human", game)
      # The same key plays the same problems in both formats.
      traj = common.play_seeds(game, (human, greedy), (None, params[fmt]), key, c.eval_games)
      accuracy[str(digits)] = common.mean_std(traj.returns[..., 1].mean(-1))
      examples[str(digits)] = vocab.render(np.asarray(traj.tokens[0, 0]),
                                           np.asarray(traj.owner[0, 0]), int(traj.length[0, 0]))
    r = records[fmt]
    summary["formats"][fmt] = {
        "accuracy": accuracy, "example_games": examples, "steps": r["steps"],
        "seq_len": r["seq_len"], "tokens": r["tokens"],
        "loss_tokens": int(round(r["metrics"]["tokens"] * r["steps"])),
        "final_loss": r["metrics"]["loss"], "seconds": r["seconds"]}
  summary["claim_2"] = claim(summary)
  return summary


CLEAR_GAIN = 0.05  # A gain counts when at least this and more than the seeds' spread.


def claim(summary: dict) -> dict:
  """Q-C-A minus Q-A accuracy per digit count, and whether Q-C-A wins overall, on the
  hardest trained digit count and beyond training (clearly: by at least ``CLEAR_GAIN``
  and more than the sum of the two formats' standard deviations over seeds), and whether
  the gain is larger on the hardest trained problems than on the easiest."""
  acc = {f: summary["formats"][f]["accuracy"] for f in FORMATS}
  gain = {d: acc["qca"][d]["mean"] - acc["qa"][d]["mean"] for d in acc["qa"]}
  clear = {d: gain[d] >= max(CLEAR_GAIN, acc["qa"][d]["std"] + acc["qca"][d]["std"])
           for d in gain}
  hardest = str(max(summary["train_digits"]))
  easiest = str(min(int(d) for d in gain))
  beyond = [d for d in gain if int(d) > int(hardest)]
  gain_beyond = float(np.mean([gain[d] for d in beyond])) if beyond else None
  return {"gain": gain,
          "qca beats qa on average": float(np.mean(list(gain.values()))) > 0,
          "qca beats qa on hardest trained": clear[hardest],
          "qca beats qa beyond training": any(clear[d] for d in beyond) if beyond else None,
          "gain larger on hardest trained than easiest": gain[hardest] > gain[easiest],
          "mean gain beyond training": gain_beyond}


def table(summary: dict) -> str:
  """Accuracy per digit count as a text table (mean ± std over seeds)."""
  f = common.pm
  trained = set(summary["train_digits"])
  lines = [f"{'digits':<8} {'Q-A':>15} {'Q-C-A':>15}"]
  for d in summary["eval_digits"]:
    mark = "" if d in trained else " (untrained)"
    lines.append(f"{d:<8} {f(summary['formats']['qa']['accuracy'][str(d)]):>15} "
                 f"{f(summary['formats']['qca']['accuracy'][str(d)]):>15}{mark}")
  for fmt in FORMATS:
    s = summary["formats"][fmt]
    lines.append(f"{fmt}: {s['steps']} steps x {s['seq_len']} tokens, {s['tokens']} tokens "
                 f"({s['loss_tokens']} learned), {s['seconds']:.0f} s")
  lines.append(f"claim 2: {summary['claim_2']}")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The Markdown section of RESULTS.md: the accuracy table, the plot and the verdict."""
  from matplotlib import figure  # pylint: disable=import-outside-toplevel
  digits = summary["eval_digits"]
  trained = set(summary["train_digits"])
  acc = {f: summary["formats"][f]["accuracy"] for f in FORMATS}
  fig = figure.Figure(figsize=(5.5, 3.6))
  ax = fig.add_subplot()
  for fmt, marker in zip(FORMATS, "os"):
    ax.errorbar(digits, [acc[fmt][str(d)]["mean"] for d in digits],
                yerr=[acc[fmt][str(d)]["std"] for d in digits], marker=marker, capsize=3,
                label=NAMES[fmt])
  if max(digits) > max(trained):
    ax.axvspan(max(trained) + 0.5, max(digits) + 0.5, color="0.9", label="beyond training")
  ax.set(xlabel="digits per operand", ylabel="greedy accuracy (payoff)", ylim=(-0.02, 1.02),
         xticks=digits, title=f"SFT at {summary['token_budget']:,} tokens per seed")
  ax.legend()
  path = save(fig, "accuracy")

  f = common.pm
  claim_ = claim(summary)  # From the accuracies, by the current rule.
  rows = ["| digits | Q-A | Q-C-A | Q-C-A − Q-A |", "|---|---|---|---|"]
  for d in digits:
    mark = "" if d in trained else " (beyond training)"
    rows.append(f"| {d}{mark} | {f(acc['qa'][str(d)])} | {f(acc['qca'][str(d)])} | "
                f"{claim_['gain'][str(d)]:+.3f} |")
  budget = ["| format | steps | padded length | tokens per seed | loss tokens per seed | "
            "final loss | wall s |", "|---|---|---|---|---|---|---|"]
  for fmt in FORMATS:
    s = summary["formats"][fmt]
    budget.append(f"| {NAMES[fmt]} | {s['steps']} | {s['seq_len']} | {s['tokens']:,} | "
                  f"{s['loss_tokens']:,} | {s['final_loss']:.4f} | {s['seconds']:.0f} |")
  hardest = max(trained)
  verdict = (
      f"At an equal budget of {summary['token_budget']:,} padded tokens per seed, Q-C-A "
      f"{'beats' if claim_['qca beats qa on average'] else 'does not beat'} Q-A on average "
      f"over 1 to {max(digits)} digits (mean gain {np.mean(list(claim_['gain'].values())):+.3f}); "
      f"on the hardest trained problems ({hardest} digits) the gain is "
      f"{claim_['gain'][str(hardest)]:+.3f}, "
      f"{'larger' if claim_['gain larger on hardest trained than easiest'] else 'not larger'} "
      f"than on the easiest ({claim_['gain'][str(min(digits))]:+.3f}).")
  if claim_["mean gain beyond training"] is not None:
    verdict += (f" Beyond the trained lengths the mean gain is "
                f"{claim_['mean gain beyond training']:+.3f}: Q-C-A "
                f"{'generalises better' if claim_['qca beats qa beyond training'] else 'does not clearly generalise better'} "
                f"to longer problems (a clear gain: at least {CLEAR_GAIN} and more than the seeds' "
                "spread).")
  confirmed = (claim_["qca beats qa on average"] and claim_["qca beats qa on hardest trained"]
               and claim_["gain larger on hardest trained than easiest"]
               and claim_["qca beats qa beyond training"] is not False)
  verdict += (" Claim 2 is " + ("confirmed" if confirmed else "not fully confirmed")
              + " by these numbers.")
  hard = str(max(digits))
  examples = "\n".join(f"{NAMES[fmt]}, {hard} digits:\n\n```\n"
                       f"{summary['formats'][fmt]['example_games'][hard]}\n```"
                       for fmt in FORMATS)
  return (f"Player two cloned from the expert's {summary['operation']} demonstrations in each "
          f"format, trained on {sorted(trained)}-digit problems, {summary['num_seeds']} seeds; "
          f"greedy accuracy over {len(digits)} digit counts (mean ± std over seeds).\n\n"
          + "\n".join(rows) + "\n\n" + "\n".join(budget)
          + f"\n\n![accuracy against digits per format]({path})\n\n{verdict}\n\n"
          f"A greedy game of each policy on the longest problems:\n\n{examples}\n")


if __name__ == "__main__":
  launch.run(main)
