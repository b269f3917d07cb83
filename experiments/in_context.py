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
packed several to a row of ``row_length`` tokens, each game attending only to itself).
With ``query_shown`` the demonstrations are lookups: each query is one of its examples'
inputs. Every pool's policy then plays ``eval_games`` greedy games per number of
examples on HELD-OUT tasks, none of which any pool trained on, in the natural game (the
query uniform, shown by the examples or not), and on its own training games (its tasks
and query distribution). The payoff is 1 for the exact substitution,
so the mean payoff is the accuracy. For reference the summary gives, per number of
examples and task set, the share of games whose examples show the query's letters (what
copying answers) and the ideal in-context learner's accuracy (``references``); and the
verdict of the rule fixed in the config (``verdict``).
"""

import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, players
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import pipeline, sources
from twoplayer_jax.games import in_context as in_context_game
from twoplayer_jax.train import stages

GAME = "in_context"


def pool_name(num_tasks: int) -> str:
  """``"4"``, ``"64"``, ... and ``"all"`` for the unlimited pool (0)."""
  return str(num_tasks) if num_tasks else "all"


def in_context(c, num_examples: int, num_tasks: int = 0, split: str = "train",
               query_shown: bool = False):
  return games.make(GAME, num_tasks=num_tasks, split=split, num_examples=num_examples,
                    query_shown=query_shown, **c.game)


def demonstrations(c, num_tasks: int) -> list[sources.Source]:
  """The expert's games on the pool's training tasks (lookups with ``query_shown``), one
  dataset per number of examples."""
  parts = []
  for k in c.num_examples:
    settings = dict(num_tasks=num_tasks, split="train", num_examples=k,
                    query_shown=c.query_shown, **c.game)
    tag = "_".join(f"{key}{value}" for key, value in sorted(c.game.items()))
    tag += "_shown" if c.query_shown else ""
    config = data_configs.transcripts_config(
        GAME, {"expert": 1.0}, f"icl_{pool_name(num_tasks)}_k{k}_{tag}", game_settings=settings)
    parts.append(common.dataset("game_transcripts", config, c.data_dir, c.games_per_dataset,
                                c.seed))
  return parts


def check(c) -> None:
  """Raises on settings the experiment cannot run with."""
  if not c.num_tasks or len(c.num_examples) < 2 or c.num_seeds < 2:
    raise launch.ConfigError(f"need task pools, two numbers of examples or more and two "
                             f"seeds or more, got num_tasks={c.num_tasks}, num_examples="
                             f"{c.num_examples} and num_seeds={c.num_seeds}")
  for n in c.num_tasks:
    in_context(c, max(c.num_examples), n)  # Raises on a pool the family cannot fill.
  if c.query_shown and min(c.num_examples) < 1:
    raise launch.ConfigError(f"query_shown needs examples in every game, got num_examples="
                             f"{c.num_examples}")
  longest = in_context(c, max(c.num_examples)).max_length
  if c.row_length < longest:
    raise launch.ConfigError(
        f"row_length={c.row_length} is shorter than the longest game ({longest} tokens, "
        f"with {max(c.num_examples)} examples)")
  if c.model.max_length < c.row_length:
    raise launch.ConfigError(f"model.max_length={c.model.max_length} is shorter than a row "
                             f"(row_length={c.row_length})")


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  model = common.model(c.model)
  block = dict(steps=c.steps, batch_size=c.batch_size, learning_rate=c.learning_rate,
               warmup_steps=c.warmup_steps)
  with common.runner(c, workdir) as run:
    params = {}
    for n in c.num_tasks:
      name = pool_name(n)
      stage = f"sft_tasks{name}"
      demos = pipeline.InMemory(demonstrations(c, n), c.row_length, packed=True, seed=c.seed)
      params[name] = run(stages.imitation(stage, model, block, demos, seed=c.seed,
                                          num_seeds=c.num_seeds, seq_len=c.row_length)).params
    summary = assess(c, model, params, run.records)
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 3: {summary['verdict']['outcome']}")


def references(tokens: np.ndarray, query: np.ndarray, num_examples: int, word_length: int,
               num_letters: int) -> dict:
  """What the examples of each game tell, as shares over the games: ``shown``, the games
  whose examples show every letter of the query; ``ideal``, the expected accuracy of the
  ideal in-context learner, who copies the letters the examples show and guesses the
  others uniformly, each a distinct letter among those no example's output takes.

  Args:
    tokens: ``[B, T]`` transcripts; example j's input at ``in_context.positions``,
      its output ``wl + 1`` later.
    query: ``[B, wl]`` the query's letters as 0-based indices.
  """
  starts, _ = in_context_game.positions(num_examples, word_length)
  inputs = tokens[:, starts.reshape(-1)] - ord("a")  # [B, k wl]
  outputs = tokens[:, (starts + word_length + 1).reshape(-1)] - ord("a")
  shown, ideal = [], []
  for i, o, q in zip(inputs, outputs, query):
    unshown = set(q.tolist()) - set(i.tolist())
    free = num_letters - len(set(o.tolist()))
    shown.append(not unshown)
    ideal.append(1 / np.prod(free - np.arange(len(unshown)), dtype=np.float64))
  return {"shown": float(np.mean(shown)), "ideal": float(np.mean(ideal))}


def assess(c, model, params, records) -> dict:
  """Every pool's accuracy per number of examples on held-out tasks and on its own; the
  references of each game set; the differences the rule judges, and its verdict."""
  key = jax.random.key(c.seed + 3)
  names = [pool_name(n) for n in c.num_tasks]
  seeds = c.num_seeds

  def play(game, pools):
    """``[len(pools), S]`` accuracies and the references of the (shared) games."""
    stacked = jax.tree.map(lambda *p: np.concatenate(p), *(params[n] for n in pools))
    greedy = players.model_player(model, game, temperature=0.0)
    traj = common.play_seeds(game, (games.player(GAME, 1, "human", game), greedy),
                             (None, stacked), key, c.eval_games)
    refs = references(np.asarray(traj.tokens[0]), np.asarray(traj.hidden["query"][0]),
                      game.num_examples, game.word_length, game.num_letters)
    return np.asarray(traj.returns[..., 1].mean(-1)).reshape(len(pools), seeds), refs

  pools = {n: {"held_out": {}, "own": {}, "own_references": {}} for n in names}
  accuracy = {n: {"held_out": {}, "own": {}} for n in names}
  held_out_references = {}
  for k in c.num_examples:
    acc, held_out_references[str(k)] = play(in_context(c, k, split="eval"), names)
    for name, per_seed in zip(names, acc):
      accuracy[name]["held_out"][str(k)] = per_seed
    for n, name in zip(c.num_tasks, names):  # Every pool on its own tasks (its own games).
      acc, pools[name]["own_references"][str(k)] = play(
          in_context(c, k, n, query_shown=c.query_shown), [name])
      accuracy[name]["own"][str(k)] = acc[0]
  for n, name in zip(c.num_tasks, names):
    r = records[f"sft_tasks{name}"]
    pools[name].update(
        num_tasks=n, final_loss=r["metrics"]["loss"], tokens=r["tokens"], seconds=r["seconds"],
        **{split: {k: common.interval(v) for k, v in accuracy[name][split].items()}
           for split in ("held_out", "own")})
  fewest, most = str(min(c.num_examples)), str(max(c.num_examples))
  smallest, largest = accuracy[names[0]]["held_out"], accuracy[names[-1]]["held_out"]
  summary = {
      "pools": pools, "num_examples": list(c.num_examples), "num_seeds": seeds,
      "query_shown": c.query_shown,
      "held_out_references": held_out_references, "eval_games": c.eval_games,
      "chance": float(c.game.num_letters ** -c.game.word_length),
      "family_half": in_context(c, 0).family_size // 2, "rule": c.rule,
      "verdict_settings": c.verdict_settings.to_dict(), **dict(c.game),
      "differences": {
          "largest - smallest pool, held out, most examples": common.difference(
              largest[most], smallest[most]),
          "largest pool, held out, most - fewest examples": common.interval(
              largest[most] - largest[fewest])}}
  summary["verdict"] = verdict(summary)
  return summary


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned", with the figures it compared."""
  d, most = summary["differences"], str(max(summary["num_examples"]))
  checks = {"(a) more tasks": d["largest - smallest pool, held out, most examples"]["low"] > 0,
            "(b) more examples": d["largest pool, held out, most - fewest examples"]["low"] > 0}
  learned = {name: p["own"][most]["mean"] / p["own_references"][most]["ideal"]
             for name, p in summary["pools"].items()}
  if min(learned.values()) < summary["verdict_settings"]["learned_fraction"]:
    outcome = "inconclusive: not learned"
  else:
    outcome = "confirmed" if all(checks.values()) else "not confirmed"
  return {"outcome": outcome, "checks": checks, "own_accuracy_over_ideal": learned}


def _label(name: str) -> str:
  return "unlimited" if name == "all" else name


def table(summary: dict) -> str:
  """Accuracy per pool, task set and number of examples, as a Markdown table: mean ±
  sample std [95% t-interval] over seeds, and the references of each game set."""
  ks = [str(k) for k in summary["num_examples"]]
  lines = ["| training tasks | tasks | " + " | ".join(f"k = {k}" for k in ks) + " |",
           "|---" * (len(ks) + 2) + "|"]
  for name, p in summary["pools"].items():
    for split, label in (("held_out", "held out"), ("own", "own")):
      lines.append(f"| {_label(name)} | {label} | "
                   + " | ".join(common.cell(p[split][k]) for k in ks) + " |")
  refs = summary["held_out_references"]
  for key, label in (("shown", "query shown in the examples"),
                     ("ideal", "ideal in-context learner")):
    lines.append(f"| ({label}) | held out | " + " | ".join(f"{refs[k][key]:.3f}" for k in ks)
                 + " |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The Markdown section of RESULTS.md: the table, the rule and its figures, the plots."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  ks, pools, v = summary["num_examples"], summary["pools"], summary["verdict"]
  names = list(pools)
  tasks = [p["num_tasks"] or summary["family_half"] for p in pools.values()]
  fig = Figure(figsize=(10, 3.8))
  for ax, (split, title) in zip(fig.subplots(1, 2), (("held_out", "held-out tasks"),
                                                     ("own", "own training games"))):
    for k in ks:
      mean, err = common.error_bars([pools[n][split][str(k)] for n in names])
      ax.errorbar(tasks, mean, yerr=err, marker="o", capsize=3, label=f"k = {k}")
    ax.set_xscale("log")
    ax.set_xticks(tasks, [_label(n) for n in names])
    ax.axhline(summary["chance"], color="0.6", lw=0.8, label="chance")
    ax.set(xlabel="distinct training tasks (log scale)", ylabel="greedy accuracy",
           title=title, ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
  fig.suptitle("mean and 95% t-interval over seeds")
  fig.tight_layout()
  tasks_path = save(fig, "tasks")

  fig = Figure(figsize=(5.5, 3.8))
  ax = fig.subplots()
  for name in names:
    mean, err = common.error_bars([pools[name]["held_out"][str(k)] for k in ks])
    ax.errorbar(ks, mean, yerr=err, marker="o", capsize=3, label=f"{_label(name)} tasks")
  refs = summary["held_out_references"]
  ax.plot(ks, [refs[str(k)]["ideal"] for k in ks], "k--", label="ideal in-context learner")
  ax.plot(ks, [refs[str(k)]["shown"] for k in ks], "k:", label="query shown in the examples")
  ax.set(xlabel="examples in the opening", ylabel="greedy accuracy on held-out tasks",
         ylim=(-0.02, 1.02), xticks=ks)
  ax.legend(fontsize=7)
  fig.tight_layout()
  examples_path = save(fig, "accuracy")

  d = summary["differences"]
  rows = [f"| {name} | {common.signed(x)} |"
          for name, x in d.items()]
  learned = ", ".join(f"{_label(n)} {x:.3f}" for n, x in v["own_accuracy_over_ideal"].items())
  return "\n".join([
      f"Player two cloned (SFT) from the in-context game's oracle demonstrator on pools of "
      f"distinct training tasks (substitutions of {summary['num_letters']} letters, queries "
      f"of {summary['word_length']}), {summary['num_seeds']} seeds each"
      + ("; every demonstration a lookup, its query one of its examples' inputs"
         if summary["query_shown"] else "")
      + f". Greedy accuracy on {summary['eval_games']} games per seed, on held-out tasks "
      "(the natural game: the query uniform, shown by the examples or not) and on the pool's "
      "own training games, against the number k of examples in the opening (mean ± sample std "
      f"[95% t-interval] over seeds; chance {summary['chance']:.3f}).", "", table(summary), "",
      f"![accuracy against the number of training tasks]({tasks_path})", "",
      f"![held-out accuracy against examples per pool]({examples_path})", "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "", "| difference | mean [95% interval] |", "|---|---|",
      *rows, "",
      f"Own-task accuracy with the most examples over the ideal learner's: {learned}. "
      f"Checks: " + ", ".join(f"{k} {common.holds(x)}" for k, x in v["checks"].items())
      + ".", "", f"Claim 3 by this rule: **{v['outcome']}**."])


if __name__ == "__main__":
  launch.run(main)
