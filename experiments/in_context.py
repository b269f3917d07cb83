"""In-context learning: player two inferring player one's hidden task from the opening.

  python -m experiments.in_context --config configs/in_context.py --workdir workdirs/in_context

Claim 3 of docs/design.md: in-context learning is player two inferring player one's hidden
task (here a letter substitution shown through examples); it grows with the number of
distinct tasks seen in training (meta-learning) and with the number of examples in the
opening.

For each pool of distinct training tasks in ``num_tasks`` (0: unlimited, all half of
the family), player two is cloned (SFT) from the in_context game's expert for ``steps``
steps, ``num_seeds`` seeds vmapped (stage ``sft_tasks<N>``), on a mix of games with
every number of examples in ``num_examples`` (one dataset each, mixed in equal parts,
padded to the longest). Every pool's policy then plays ``eval_games`` greedy games per
number of examples on HELD-OUT tasks, none of which any pool trained on, and, with the
most examples, on its own training tasks (what it memorised). The payoff is 1 for the
exact substitution, so the mean payoff is the accuracy. For reference the summary also
gives, per number of examples, the share of held-out games whose examples show every
letter of the query (what copying from the examples alone can answer) and chance.
"""

import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, models, players
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import sources
from twoplayer_jax.train import stages

GAME = "in_context"


def pool_name(num_tasks: int) -> str:
  """``"4"``, ``"64"``, ... and ``"all"`` for the unlimited pool (0)."""
  return str(num_tasks) if num_tasks else "all"


def in_context(c, num_examples: int, num_tasks: int = 0, split: str = "train"):
  return games.make(GAME, num_tasks=num_tasks, split=split, num_examples=num_examples,
                    **c.game)


def demonstrations(c, num_tasks: int) -> list[sources.Source]:
  """The expert's games on the pool's training tasks, one dataset per number of examples."""
  parts = []
  for k in c.num_examples:
    settings = dict(num_tasks=num_tasks, split="train", num_examples=k, **c.game)
    tag = "_".join(f"{key}{value}" for key, value in sorted(c.game.items()))
    config = data_configs.transcripts_config(
        GAME, {"expert": 1.0}, f"icl_{pool_name(num_tasks)}_k{k}_{tag}", game_settings=settings)
    parts.append(common.dataset("game_transcripts", config, c.data_dir, c.games_per_dataset,
                                c.seed))
  return parts


def check(c) -> None:
  """Raises on settings the experiment cannot run with."""
  if not c.num_tasks or not c.num_examples:
    raise launch.ConfigError(f"need task pools and numbers of examples, got num_tasks="
                             f"{c.num_tasks} and num_examples={c.num_examples}")
  for n in c.num_tasks:
    in_context(c, max(c.num_examples), n)  # Raises on a pool the family cannot fill.
  longest = in_context(c, max(c.num_examples)).max_length
  if c.model.max_length < longest:
    raise launch.ConfigError(f"model.max_length={c.model.max_length} is shorter than the longest "
                             f"game ({longest} tokens, with {max(c.num_examples)} examples)")


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  model = models.make(models.TransformerConfig(**c.model))
  seq_len = in_context(c, max(c.num_examples)).max_length
  block = dict(steps=c.steps, batch_size=c.batch_size, learning_rate=c.learning_rate,
               warmup_steps=c.warmup_steps)
  with common.runner(c, workdir) as run:
    records, params = {}, {}
    for n in c.num_tasks:
      name = pool_name(n)
      stage = f"sft_tasks{name}"
      demos = common.Games(demonstrations(c, n), c.num_seeds * c.batch_size, seq_len, c.seed)
      params[name] = run(stages.imitation(stage, model, block, demos, seed=c.seed,
                                          num_seeds=c.num_seeds, seq_len=seq_len)).params
      records[name] = run.records[stage]
    summary = assess(c, model, params, records)
    common.write_summary(workdir, summary)
    print(table(summary))


def coverage(tokens: np.ndarray, query: np.ndarray, num_examples: int, word_length: int
             ) -> float:
  """Share of games whose example inputs show every letter of the query.

  Args:
    tokens: ``[B, T]`` transcripts; example j's input starts at ``1 + j * (2 wl + 2)``.
    query: ``[B, wl]`` the query's letters as 0-based indices.
  """
  starts = 1 + np.arange(num_examples)[:, None] * (2 * word_length + 2)
  inputs = tokens[:, (starts + np.arange(word_length)).reshape(-1)] - ord("a")  # [B, k wl]
  shown = (query[:, :, None] == inputs[:, None, :]).any(-1)  # [B, wl]
  return float(shown.all(-1).mean())


def assess(c, model, params, records) -> dict:
  """Held-out accuracy of every pool per number of examples; training-task accuracy with
  the most examples; the claim's checks."""
  key = jax.random.key(c.seed + 3)
  names = [pool_name(n) for n in c.num_tasks]
  # Every pool's seeds play the held-out games together: [pools * seeds, ...].
  stacked = jax.tree.map(lambda *p: np.concatenate(p), *(params[n] for n in names))
  held_out, cover = {n: {} for n in names}, {}
  for k in c.num_examples:
    game = in_context(c, k, split="eval")
    greedy = players.model_player(model, game, temperature=0.0)
    traj = common.play_seeds(game, (games.player(GAME, 1, "human", game), greedy),
                             (None, stacked), key, c.eval_games)
    payoff = np.asarray(traj.returns[..., 1].mean(-1)).reshape(len(names), c.num_seeds)
    for name, per_seed in zip(names, payoff):
      held_out[name][str(k)] = common.mean_std(per_seed)
    cover[str(k)] = coverage(np.asarray(traj.tokens[0]), np.asarray(traj.hidden["query"][0]), k,
                             c.game.word_length)
  most = max(c.num_examples)
  summary = {"pools": {}, "num_examples": list(c.num_examples), "num_seeds": c.num_seeds,
             "coverage": cover, "chance": float(c.game.num_letters ** -c.game.word_length),
             "word_length": c.game.word_length, "num_letters": c.game.num_letters}
  for n, name in zip(c.num_tasks, names):
    game = in_context(c, most, n)
    greedy = players.model_player(model, game, temperature=0.0)
    traj = common.play_seeds(game, (games.player(GAME, 1, "human", game), greedy),
                             (None, params[name]), key, c.eval_games)
    r = records[name]
    summary["pools"][name] = {
        "num_tasks": n, "held_out": held_out[name],
        "train_tasks": common.mean_std(traj.returns[..., 1].mean(-1)),
        "final_loss": r["metrics"]["loss"], "tokens": r["tokens"], "seconds": r["seconds"]}
  summary["claim_3"] = claim(summary)
  return summary


def claim(summary: dict) -> dict:
  """Whether held-out accuracy with the most examples rises with the pool of training
  tasks, and whether the largest pool's rises with the number of examples."""
  pools = list(summary["pools"].values())
  ks = [str(k) for k in summary["num_examples"]]
  most = [p["held_out"][ks[-1]]["mean"] for p in pools]
  largest = [pools[-1]["held_out"][k]["mean"] for k in ks]
  return {"held-out accuracy with most examples, per pool": most,
          "rises from smallest to largest pool": most[-1] > most[0],
          "never falls with more tasks": all(b >= a for a, b in zip(most, most[1:])),
          "largest pool rises from fewest to most examples": largest[-1] > largest[0],
          "largest pool never falls with more examples": all(
              b >= a for a, b in zip(largest, largest[1:]))}


def table(summary: dict) -> str:
  """Held-out accuracy per pool and number of examples (mean ± std over seeds)."""
  f = common.pm
  ks = [str(k) for k in summary["num_examples"]]
  lines = [f"{'tasks':<6}" + "".join(f"{'k=' + k:>15}" for k in ks) + f"{'train tasks':>15}"]
  for name, p in summary["pools"].items():
    lines.append(f"{name:<6}" + "".join(f"{f(p['held_out'][k]):>15}" for k in ks)
                 + f"{f(p['train_tasks']):>15}")
  lines.append(f"{'shown':<6}" + "".join(f"{summary['coverage'][k]:>15.3f}" for k in ks))
  lines.append(f"claim 3: {summary['claim_3']}")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The Markdown section of RESULTS.md: the accuracy table, the plot and the verdict."""
  from matplotlib import figure  # pylint: disable=import-outside-toplevel
  ks = summary["num_examples"]
  fig = figure.Figure(figsize=(5.5, 3.6))
  ax = fig.add_subplot()
  for name, p in summary["pools"].items():
    label = "unlimited tasks" if name == "all" else f"{name} tasks"
    ax.errorbar(ks, [p["held_out"][str(k)]["mean"] for k in ks],
                yerr=[p["held_out"][str(k)]["std"] for k in ks], marker="o", capsize=3,
                label=label)
  ax.plot(ks, [summary["coverage"][str(k)] for k in ks], "k:", label="query shown in examples")
  ax.axhline(summary["chance"], color="0.6", lw=0.8, label="chance")
  ax.set(xlabel="examples in the opening", ylabel="greedy accuracy on held-out tasks",
         ylim=(-0.02, 1.02), xticks=ks)
  ax.legend(fontsize=8)
  path = save(fig, "accuracy")

  f = common.pm
  rows = ["| training tasks | " + " | ".join(f"k = {k}" for k in ks)
          + f" | own training tasks, k = {ks[-1]} |", "|---" * (len(ks) + 2) + "|"]
  for name, p in summary["pools"].items():
    rows.append(f"| {'unlimited' if name == 'all' else name} | "
                + " | ".join(f(p["held_out"][str(k)]) for k in ks) + f" | {f(p['train_tasks'])} |")
  rows.append("| (query shown in the examples) | "
              + " | ".join(f"{summary['coverage'][str(k)]:.3f}" for k in ks) + " | |")
  c3 = summary["claim_3"]
  names = list(summary["pools"])
  first, last = names[0], names[-1]
  more_tasks = c3["rises from smallest to largest pool"]
  more_examples = c3["largest pool rises from fewest to most examples"]
  verdict = (
      f"With {ks[-1]} examples, held-out accuracy goes from {f(summary['pools'][first]['held_out'][str(ks[-1])])} "
      f"after {first} training tasks to {f(summary['pools'][last]['held_out'][str(ks[-1])])} "
      f"after {'unlimited' if last == 'all' else last}: it "
      f"{'rises' if more_tasks else 'does not rise'} with the number of distinct training tasks"
      f"{' (monotonically)' if c3['never falls with more tasks'] else ' (not monotonically)'}. "
      f"For the largest pool it {'rises' if more_examples else 'does not rise'} from "
      f"{ks[0]} to {ks[-1]} examples"
      f"{' (monotonically)' if c3['largest pool never falls with more examples'] else ' (not monotonically)'}. "
      f"Claim 3 is {'confirmed' if more_tasks and more_examples else 'not confirmed'} by these "
      "numbers.")
  return (f"Player two cloned (SFT) from the in-context game's oracle demonstrator on pools of "
          f"distinct training tasks (letter substitutions of {summary['num_letters']} letters, "
          f"words of {summary['word_length']}), {summary['num_seeds']} seeds each; greedy "
          f"accuracy on held-out tasks against the number k of examples in the opening (mean ± "
          f"std over seeds; chance {summary['chance']:.3f}).\n\n" + "\n".join(rows)
          + f"\n\n![held-out accuracy against examples per pool]({path})\n\n{verdict}\n")


if __name__ == "__main__":
  launch.run(main)
