"""Prompting as player one's strategy (claim 9): a prompt is player one's move, chosen to
raise the payoff both players share.

The game is in_context's prompted variant: player one reads a private letter
substitution and a query letter and writes examples of the substitution, then the
query; player two answers with the query's substitution and both are paid 1 when it is
right. Player two is frozen: the ideal in-context learner (``copier``: it copies a
letter the examples show and guesses among the others). So player two's accuracy is
set by what player one shows, and the best prompt (``teacher``) shows the query.

Player one is a transformer reading its private text. It is cloned from the random
prompter (``human``: uniformly random examples, as chance writes them in in_context),
then learns by policy learning on the shared payoff against the listener. Assessed:
player two's accuracy with prompts from the random prompter, the optimum (the teacher),
the clone and the learned prompter, and how often each prompt shows the query, as the
optimum's always does.

  python -m experiments.prompting --config configs/prompting.py --workdir workdirs/prompting
"""

import jax
import numpy as np

from experiments import common, launch
from experiments.in_context import references
from twoplayer_jax import games, players, rollout, train, vocab
from twoplayer_jax.games import in_context
from twoplayer_jax.train import stages

GAME = "in_context"
PROMPTERS = ("human", "teacher", "clone", "learned")


def check(c) -> None:
  """Raises ``launch.ConfigError`` naming what in ``c`` cannot run."""
  if not c.game.get("prompted") or c.num_seeds < 2:
    raise launch.ConfigError(f"need the prompted game and two seeds or more, got "
                             f"prompted={c.game.get('prompted')} and num_seeds={c.num_seeds}")
  if c.listener not in in_context.PLAYER_TWO:
    raise launch.ConfigError(f"config.listener={c.listener!r}: not one of in_context's "
                             f"players two {sorted(in_context.PLAYER_TWO)}")
  try:
    games.make(GAME, **c.game)
    stages.check("imitation", c.clone, "config.clone")
    stages.check("policy", c.rl, "config.rl", role=1)
  except ValueError as e:
    raise launch.ConfigError(str(e)) from None


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  game = games.make(GAME, **c.game)
  model = common.model(c.model, max_length=game.private_length + game.max_length)
  listener = games.player(GAME, 2, c.listener, game)
  human = games.player(GAME, 1, "human", game)
  seeds = c.num_seeds
  with common.runner(c, workdir) as run:
    s = c.clone
    tx = stages.optimizer_of(s, s.steps)
    start = stages.pretrained_start(model, seeds)
    if start is None:
      start = jax.vmap(model.init)(jax.random.split(jax.random.key(c.seed), seeds))
    keys = jax.random.split(jax.random.key(c.seed + 1), seeds)
    clone = run(stages.Stage(
        "clone",
        lambda start: common.Cloning(jax.vmap(lambda p, k: train.create(p, tx, k))(start, keys)),
        common.clone_seats(game, model, (human, listener), tx, s.batch_size, seats=(1,)),
        s.steps, s.batch_size * game.max_length, start=start)).params
    learned = run(stages.policy(
        "prompting", game, model, c.rl, listener, seed=c.seed + 2, num_seeds=seeds,
        start=clone, fixed=train.Frozen(reference=clone), games_sharding=run.games_sharding,
        per_seed_metrics=("payoff_two",), role=1)).params
    summary = assess(c, game, model, listener, {"clone": clone, "learned": learned},
                     run.records)
    logged = common.seed_curves(workdir, "prompting", "payoff_two", seeds)
    summary["curve"] = {"step": logged["step"],
                        "band": common.band(logged["seeds"], c.curve_window)}
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 9: {summary['verdict']['outcome']}")


def well_formed(tokens: np.ndarray, length: np.ndarray, rule: np.ndarray, query: np.ndarray,
                game) -> np.ndarray:
  """``[B]`` whether player one's turn is exactly a prompt of the game's layout whose
  examples are true to the rule and whose query is the private one.

  Args:
    tokens: ``[B, T]`` transcripts (the prompt from position 1).
    length: ``[B]`` their lengths; rule ``[B, m]``, query ``[B, wl]`` from ``hidden``.
  """
  k, n, size = game.num_examples, game.word_length, game.prompt_length
  prompt = tokens[:, 1:1 + size]
  starts = in_context.positions(k, n)[0].reshape(-1) - 1  # In the prompt, after BOS.
  inputs = prompt[:, starts] - in_context.LETTER_A
  valid = ((inputs >= 0) & (inputs < game.num_letters)).all(1)
  inputs = np.where(valid[:, None], inputs, 0).reshape(-1, k, n)
  expected = np.asarray(jax.vmap(in_context.prompt)(rule, inputs, query))
  ends = (length > 1 + size) & (tokens[:, min(1 + size, tokens.shape[1] - 1)] == vocab.EOT)
  return valid & (prompt == expected).all(1) & ends


def assess(c, game, model, listener, params: dict, records: dict) -> dict:
  """Per prompter, ``[S]`` player two's accuracy, the share of prompts that show the
  query and the share that are well formed; the learned − random difference; the verdict."""
  seeds, key = c.num_seeds, jax.random.key(c.seed + 3)
  scripted = {name: games.player(GAME, 1, name, game) for name in ("human", "teacher")}
  speaker = players.model_player(model, game, seat=1)
  measured = {}
  for name in PROMPTERS:
    if name in scripted:  # One batch of games per seed, for the paired differences.
      traj = rollout.play(game, (scripted[name], listener), (None, None), key,
                          seeds * c.eval_games)
      traj = jax.tree.map(lambda x: np.asarray(x).reshape((seeds, c.eval_games) + x.shape[1:]),
                          traj)
    else:
      traj = jax.device_get(common.play_seeds(game, (speaker, listener), (params[name], None),
                                              key, c.eval_games))
    per_seed = {"accuracy": [], "shows_query": [], "well_formed": []}
    for s in range(seeds):
      tokens, hidden = np.asarray(traj.tokens[s]), jax.tree.map(lambda x: np.asarray(x[s]),
                                                                traj.hidden)
      shown = references(tokens, hidden["query"], game.num_examples, game.word_length,
                         game.num_letters)["shown"]
      per_seed["accuracy"].append(float(np.mean(traj.returns[s][:, 1])))
      per_seed["shows_query"].append(shown)
      per_seed["well_formed"].append(float(np.mean(well_formed(
          tokens, np.asarray(traj.length[s]), hidden["rule"], hidden["query"], game))))
    measured[name] = {k: np.asarray(v) for k, v in per_seed.items()}
  summary = {
      "num_seeds": seeds, "eval_games": c.eval_games, "rule": c.rule,
      "verdict_settings": c.verdict_settings.to_dict(), "listener": c.listener,
      "game": c.game.to_dict(), "clone_steps": c.clone.steps, "iterations": c.rl.iterations,
      "prompters": {name: {k: common.interval(v) for k, v in m.items()}
                    for name, m in measured.items()},
      "learned_minus_human": common.interval(measured["learned"]["accuracy"]
                                             - measured["human"]["accuracy"]),
      "teacher_minus_learned": common.interval(measured["teacher"]["accuracy"]
                                               - measured["learned"]["accuracy"]),
      "stages": {name: {"seconds": r["seconds"], "tokens": r["tokens"]}
                 for name, r in records.items()}}
  summary["verdict"] = verdict(summary)
  return summary


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned"."""
  least = summary["verdict_settings"]["well_formed_fraction"]
  formed = summary["prompters"]["clone"]["well_formed"]["mean"]
  if formed < least:
    outcome = "inconclusive: not learned"
  elif summary["learned_minus_human"]["low"] > 0:
    outcome = "confirmed"
  else:
    outcome = "not confirmed"
  return {"outcome": outcome, "clone_well_formed": formed}


def table(summary: dict) -> str:
  """Per prompter: player two's accuracy, prompts that show the query, well-formed ones."""
  lines = ["| player one | player two's accuracy | prompts showing the query | "
           "well-formed prompts |", "|---|---|---|---|"]
  for name, m in summary["prompters"].items():
    lines.append(f"| {name} | {common.cell(m['accuracy'])} | {common.cell(m['shows_query'])} | "
                 f"{common.cell(m['well_formed'])} |")
  lines.append(f"| learned − human (paired) | {common.signed(summary['learned_minus_human'])} "
               "| | |")
  lines.append(f"| teacher − learned (paired) | "
               f"{common.signed(summary['teacher_minus_learned'])} | | |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table, the learning curve, the rule and its outcome."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  fig = Figure(figsize=(9, 3.4))
  left, right = fig.subplots(1, 2)
  names = list(summary["prompters"])
  mean, err = common.error_bars([summary["prompters"][n]["accuracy"] for n in names])
  left.bar(names, mean, yerr=err, capsize=3)
  left.set(ylabel="player two's accuracy", title="by player one (95% t-interval)")
  curve = summary["curve"]
  band = curve["band"]
  right.plot(curve["step"], band["mean"], label="learned prompter")
  right.fill_between(curve["step"], band["low"], band["high"], alpha=0.3)
  for name, style in (("human", ":"), ("teacher", "--")):
    right.axhline(summary["prompters"][name]["accuracy"]["mean"], color="k", ls=style,
                  label=name)
  right.set(xlabel="policy-learning iteration", ylabel="shared payoff",
            title="player one learning (95% band)")
  right.legend(fontsize=7)
  fig.tight_layout()
  path = save(fig, "payoff")
  g = summary["game"]
  return "\n".join([
      f"The prompted in_context game ({g['num_examples']} examples of a substitution of "
      f"{g['num_letters']} letters, single-letter query) with a frozen player two, "
      f"`{summary['listener']}` (the ideal in-context learner). Player one, a transformer "
      f"reading its private rule and query, cloned from the random prompter for "
      f"{summary['clone_steps']} steps, then {summary['iterations']} iterations of policy "
      f"learning on the shared payoff; {summary['num_seeds']} seeds, {summary['eval_games']} "
      "games per seed and prompter, mean ± sample std [95% t-interval].", "", table(summary),
      "", f"![player two's accuracy per prompter, and the learning curve]({path})", "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "",
      f"Claim 9 by this rule: **{summary['verdict']['outcome']}**."])


if __name__ == "__main__":
  launch.run(main)
