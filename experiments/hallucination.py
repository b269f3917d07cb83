"""Hallucination as a cloned habit of always answering, in the facts game.

  python -m experiments.hallucination --config configs/hallucination.py \\
      --workdir workdirs/hallucination

Claim 4 of docs/design.md: a model cloned from demonstrators who (almost) always answer
answers confidently, and wrongly, about what it cannot know; a payoff that prices a wrong
answer (-c) below abstaining (0) teaches it to abstain there, once c passes the break-even
1 / (num_values - 1), above which a uniform guess pays less than abstaining. Stages, each
for ``num_seeds`` seeds side by side (vmapped):

  sft_abstain<a>          one SFT arm per share a of ``abstain_shares``: cloning player
                          two of its own demonstrations on the questions of the SFT
                          game, by the "average" player, who answers seen entities right
                          and guesses a colour on unseen ones, and, in share a, the
                          expert, who says "idk" on unseen ones;
  rl_abstain<a>_cost<c>   from arm a's SFT, GRPO against the facts game's payoff with
                          wrong-answer cost c, asking every entity but the ``held_out``
                          last unseen ones: the arm ``sweep_share`` once per c of
                          ``wrong_costs`` (c is a static game setting, so the costs run
                          one after another, the seeds side by side), the other arms once
                          at ``arm_cost``.

Each policy then answers, at temperature 1, questions about every entity of the SFT game,
split into "seen" entities (whose facts the demonstrations state), "unseen" ones asked in
SFT and RL (RL's payoff tells their colour) and "held_out" ones asked in SFT only
(never with their fact), and questions about "new" names from another knowledge base, in
no training: what the model cannot know. The summary gives, per set, the shares of right
answers, abstentions and confident wrong answers with 95% t-intervals over seeds, each RL
policy's changes from its arm's SFT paired by seed, and the verdict of the rule fixed in
the config (``verdict``).
"""

import jax
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, players, train
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.data import pipeline
from twoplayer_jax.games import facts
from twoplayer_jax.train import stages

GAME = "facts"
OUTCOMES = {"right": 1.0, "abstain": 0.0, "wrong": -1.0}  # Payoffs at wrong_cost 1.
QUESTION_SETS = ("seen", "unseen", "held_out", "new")
UNKNOWABLE = ("held_out", "new")  # Sets whose colours no training tells.


def stage_name(share: float, cost: float | None = None) -> str:
  """The SFT arm of abstaining share ``share``, or its RL stage at wrong-answer cost ``cost``."""
  arm = f"abstain{share:g}"
  return f"sft_{arm}" if cost is None else f"rl_{arm}_cost{cost:g}"


def rl_stages(c) -> list[tuple[float, float]]:
  """``(abstaining share, cost)`` of every RL stage: the sweep, then the other arms'."""
  return ([(c.sweep_share, x) for x in c.wrong_costs]
          + [(a, c.arm_cost) for a in c.abstain_shares if a != c.sweep_share])


def fresh_names(trained: facts.Facts, new: facts.Facts) -> np.ndarray:
  """``[new.num_entities]`` bool: whether the entity's name is no name of ``trained``'s."""
  names = lambda g: facts.knowledge_base(g.seed, g.num_entities, g.num_values)[0]
  known = {tuple(n) for n in names(trained)}
  return np.array([tuple(n) not in known for n in names(new)])


def outcomes(paid: np.ndarray, keep: np.ndarray) -> dict:
  """Shares ``[S]`` of right answers, abstentions and wrong answers among the kept games.

  Args:
    paid: ``[S, G]`` player two's payoffs in a facts game with ``wrong_cost=1``.
    keep: ``[S, G]`` bool, the games counted.
  """
  kept = np.maximum(keep.sum(-1), 1)
  return {name: ((paid == value) & keep).sum(-1) / kept for name, value in OUTCOMES.items()}


def question_games(c) -> tuple[facts.Facts, facts.Facts]:
  """The evaluation games, with wrong_cost 1 so that the payoff names the outcome: the
  SFT game's questions (every entity) and questions about new names."""
  trained = games.make(GAME, **c.game, wrong_cost=1.0)
  new = games.make(GAME, num_entities=c.new_names.num_entities, num_seen=0, ask="unseen",
                   num_values=c.game.num_values, seed=c.new_names.seed, wrong_cost=1.0)
  return trained, new


def demonstrations(c, share: float):
  """Arm ``share``'s SFT dataset: the expert in share ``share``, the average player else."""
  mix = {k: w for k, w in (("average", 1 - share), ("expert", share)) if w > 0}
  tag = "_".join(f"{k}{v}" for k, v in sorted(c.game.items()))
  tag += f"_err{c.demonstrator_error}_abstain{share}"
  return common.dataset("game_transcripts", data_configs.transcripts_config(
      GAME, mix, f"hallucination_{tag}", game_settings=dict(c.game),
      player_settings={"average": {"error_rate": c.demonstrator_error}}),
      c.data_dir, c.num_examples, c.seed)


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  shares = c.abstain_shares
  if (c.num_seeds < 2 or not c.wrong_costs or min(c.wrong_costs) < 0 or c.arm_cost < 0
      or not all(0 <= a < 1 for a in shares) or c.sweep_share not in shares):
    raise launch.ConfigError(
        f"num_seeds must be at least 2 (got {c.num_seeds}), wrong_costs non-empty and "
        f"non-negative (got {c.wrong_costs}), arm_cost non-negative (got {c.arm_cost}), "
        f"abstain_shares in [0, 1) (got {shares}) and hold sweep_share ({c.sweep_share})")
  try:
    stages.check("imitation", c.sft, "config.sft")
    stages.check("policy", c.rl, "config.rl")
    games.make(GAME, **c.game, held_out=c.held_out)
  except ValueError as e:
    raise launch.ConfigError(str(e)) from None
  game = games.make(GAME, **c.game)
  human = games.player(GAME, 1, "human", game)
  model = common.model(c.model)
  seeds, seq_len = c.num_seeds, game.max_length
  with common.runner(c, workdir) as run:
    params = {}
    for share in shares:
      demos = pipeline.InMemory([demonstrations(c, share)], seq_len)
      params[stage_name(share)] = run(stages.imitation(
          stage_name(share), model, c.sft, demos, seed=c.seed, num_seeds=seeds,
          seq_len=seq_len)).params
    for share, cost in rl_stages(c):
      sft = params[stage_name(share)]
      played = games.make(GAME, **c.game, held_out=c.held_out, wrong_cost=float(cost))
      params[stage_name(share, cost)] = run(stages.policy(
          stage_name(share, cost), played, model, c.rl, human, seed=c.seed + 2,
          num_seeds=seeds, start=sft, fixed=train.Frozen(reference=sft),
          games_sharding=run.games_sharding)).params

    summary = assess(c, human, model, params, run.records)
    common.write_summary(workdir, summary)
    print(table(summary))


def assess(c, human, model, params, records) -> dict:
  """Every policy answers the four question sets; each RL policy's changes from its arm's
  SFT, seed by seed: wrong answers where nothing tells the colour, and the payoff at its
  own cost on RL's questions."""
  key = jax.random.key(c.seed + 3)
  trained, new = question_games(c)
  fresh = fresh_names(trained, new)
  names = [stage_name(a) for a in c.abstain_shares] + [stage_name(*s) for s in rl_stages(c)]

  def play(game):
    """``[P, S, G]`` payoffs and ``[G]`` entities asked (the same for every player and
    seed); one policy at a time, its seeds side by side (compiled once per game)."""
    seats = (human, players.model_player(model, game))
    trajs = [common.play_seeds(game, seats, (None, params[n]), key, c.eval_games)
             for n in names]
    return (np.stack([np.asarray(t.returns[..., 1]) for t in trajs]),
            np.asarray(trajs[0].hidden["entity"][0]))

  paid_trained, entity = play(trained)
  paid_new, entity_new = play(new)
  asked = trained.num_entities - c.held_out  # RL asks entities [0, asked).
  keeps = {"seen": entity < trained.num_seen,
           "unseen": (entity >= trained.num_seen) & (entity < asked),
           "held_out": entity >= asked, "new": fresh[entity_new]}
  paid = {q: paid_new if q == "new" else paid_trained for q in QUESTION_SETS}
  shares = {n: {q: outcomes(paid[q][i], np.broadcast_to(keeps[q], paid[q].shape[1:]))
                for q in QUESTION_SETS} for i, n in enumerate(names)}

  def payoff(s, cost):
    """``[S]`` payoff at ``cost`` on RL's questions (seen and unseen, uniformly)."""
    seen = trained.num_seen / asked
    value = lambda o: o["right"] - cost * o["wrong"]
    return seen * value(s["seen"]) + (1 - seen) * value(s["unseen"])

  stats = lambda s: {q: {k: common.interval(v) for k, v in o.items()} for q, o in s.items()}
  policies = {}
  for share in c.abstain_shares:
    name = stage_name(share)
    policies[name] = {**stats(shares[name]), "abstain_share": float(share),
                      "seconds": records[name]["seconds"], "tokens": records[name]["tokens"]}
  for share, cost in rl_stages(c):
    name, sft = stage_name(share, cost), shares[stage_name(share)]
    policies[name] = {
        **stats(shares[name]), "abstain_share": float(share), "wrong_cost": float(cost),
        "wrong_change": {q: common.interval(shares[name][q]["wrong"] - sft[q]["wrong"])
                         for q in UNKNOWABLE},
        "payoff": common.interval(payoff(shares[name], cost)),
        "payoff_change": common.interval(payoff(shares[name], cost) - payoff(sft, cost)),
        "seconds": records[name]["seconds"],
        "tokens": records[stage_name(share)]["tokens"] + records[name]["tokens"]}
  summary = {
      "num_seeds": c.num_seeds, "rule": c.rule, "verdict_settings": c.verdict_settings.to_dict(),
      "wrong_costs": [float(x) for x in c.wrong_costs],
      "abstain_shares": [float(a) for a in c.abstain_shares],
      "sweep_share": float(c.sweep_share), "arm_cost": float(c.arm_cost),
      "break_even": 1 / (c.game.num_values - 1), "policies": policies,
      "games_per_set": {q: int(k.sum()) for q, k in keeps.items()}}
  summary["verdict"] = verdict(summary)
  return summary


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``) applied to the cost sweep: "confirmed", "not
  confirmed" or "inconclusive: <why>", with the figures it compared per cost."""
  v, p, b = summary["verdict_settings"], summary["policies"], summary["break_even"]
  sft_seen_right = {stage_name(a): p[stage_name(a)]["seen"]["right"]["mean"]
                    for a in summary["abstain_shares"]}
  costs = []
  for cost in summary["wrong_costs"]:
    rl = p[stage_name(summary["sweep_share"], cost)]
    change, abstain = rl["wrong_change"]["new"], rl["seen"]["abstain"]["high"]
    costs.append({
        "wrong_cost": cost, "above_break_even": cost > b,
        "new_wrong_change": {k: change[k] for k in ("mean", "low", "high")},
        "dose_response": change["high"] < 0 if cost > b else change["low"] >= -v["free_margin"],
        "seen_abstain_high": abstain,
        "false_abstention_kept": abstain < v["false_abstain_bound"] if cost > 0 else None})
  sides = {x["above_break_even"] for x in costs}
  if min(sft_seen_right.values()) < v["sft_seen_right"]:
    outcome = "inconclusive: not learned"
  elif sides != {True, False}:
    outcome = "inconclusive: no cost on one side of the break-even"
  elif all(x["dose_response"] and x["false_abstention_kept"] is not False for x in costs):
    outcome = "confirmed"
  else:
    outcome = "not confirmed"
  return {"outcome": outcome, "break_even": b, "sft_seen_right": sft_seen_right,
          "costs": costs}


COLUMNS = (("seen", "right"), ("seen", "abstain"), ("unseen", "wrong"), ("unseen", "abstain"),
           ("held_out", "wrong"), ("held_out", "abstain"), ("new", "wrong"), ("new", "abstain"))


def table(summary: dict) -> str:
  """The shares per policy as a Markdown table: mean ± sample std [95% interval]."""
  lines = ["| policy | abstain share | c | " + " | ".join(
      f"{q.replace('_', '-')} {o}" for q, o in COLUMNS) + " | payoff at c − sft's |",
           "|---" * (len(COLUMNS) + 4) + "|"]
  for name, s in summary["policies"].items():
    rl = "wrong_cost" in s
    cost, gain = (f"{s['wrong_cost']:g}", common.cell(s["payoff_change"])) if rl else ("—", "—")
    lines.append(f"| {name} | {s['abstain_share']:g} | {cost} | " + " | ".join(
        common.cell(s[q][o]) for q, o in COLUMNS) + f" | {gain} |")
  return "\n".join(lines)


def verdict_table(summary: dict) -> str:
  """The rule's figures per cost of the sweep."""
  bound = summary["verdict_settings"]["false_abstain_bound"]
  yes = lambda x: "—" if x is None else "yes" if x else "no"
  lines = ["| c | above break-even | new wrong − sft [95%] | (a) holds | seen abstain, upper "
           f"end (bound {bound:g}) | (b) holds |", "|---|---|---|---|---|---|"]
  for x in summary["verdict"]["costs"]:
    d = x["new_wrong_change"]
    lines.append(f"| {x['wrong_cost']:g} | {yes(x['above_break_even'])} | {common.signed(d)} | "
                 f"{yes(x['dose_response'])} | "
                 f"{x['seen_abstain_high']:.3f} | {yes(x['false_abstention_kept'])} |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table of outcomes per policy, the rule and its outcome,
  and the plots."""
  from matplotlib.figure import Figure

  p, v, b = summary["policies"], summary["verdict"], summary["break_even"]
  sweep, sft = summary["sweep_share"], stage_name(summary["sweep_share"])
  games_per_set = ", ".join(f"{k.replace('_', '-')} {n}"
                            for k, n in summary["games_per_set"].items())
  lines = [
      f"Shares of answers at temperature 1, mean ± sample std [95% t-interval] over "
      f"{summary['num_seeds']} seeds (games per seed: {games_per_set}). *seen*: entities "
      "whose facts the demonstrations state; *unseen*: entities asked in SFT and RL, never "
      "with their fact (RL's payoff tells their colour); *held-out*: unseen entities asked "
      "in SFT only; *new*: names from another knowledge base, in no training. SFT arms "
      f"differ in the share of abstaining demonstrations; the cost sweep starts from the "
      f"{sweep:g} arm, the other arms have one RL stage at c = {summary['arm_cost']:g}. "
      f"Break-even cost 1/(num_values − 1) = {b:.3f}. *Payoff at c − sft's*: on RL's "
      "questions, paired by seed with the arm's SFT.", "", table(summary), "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "",
      "SFT seen accuracy per arm: " + ", ".join(
          f"{n} {m:.3f}" for n, m in v["sft_seen_right"].items()) + ".", "",
      verdict_table(summary), "", f"Claim 4 by this rule: **{v['outcome']}**."]

  costs = np.array(summary["wrong_costs"])
  rl = [p[stage_name(sweep, x)] for x in costs]
  fig = Figure(figsize=(13, 3.8))
  for ax, (q, o, title) in zip(fig.subplots(1, 3), (
      ("new", "wrong", "wrong answers on new names"),
      ("held_out", "wrong", "wrong answers on held-out entities"),
      ("seen", "abstain", "abstentions on seen entities"))):
    mean = np.array([r[q][o]["mean"] for r in rl])
    ax.plot(costs, mean, marker="o", label=f"RL from {sft}")
    ax.fill_between(costs, [r[q][o]["low"] for r in rl], [r[q][o]["high"] for r in rl],
                    alpha=0.25)
    base = p[sft][q][o]
    ax.axhline(base["mean"], color="grey", ls="--", label=sft)
    ax.axhspan(base["low"], base["high"], color="grey", alpha=0.15)
    ax.axvline(b, color="k", ls=":", label=f"break-even {b:.3f}")
    if (q, o) == ("seen", "abstain"):
      ax.axhline(summary["verdict_settings"]["false_abstain_bound"], color="r", ls="-.",
                 label="bound of (b)")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xticks(costs, [f"{x:g}" for x in costs], fontsize=7, rotation=60)
    ax.set(xlabel="wrong-answer cost c", ylabel="share of games", title=title,
           ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
  fig.suptitle("mean and 95% t-interval over seeds")
  fig.tight_layout()
  lines += ["", "![Wrong answers on new names and held-out entities, and abstentions on "
            f"seen ones, vs the cost c]({save(fig, 'cost')})"]

  fig = Figure(figsize=(5, 3.8))
  ax = fig.subplots()
  for label, name in (("SFT", stage_name), (f"RL at c = {summary['arm_cost']:g}",
                                            lambda a: stage_name(a, summary["arm_cost"]))):
    shares = [a for a in summary["abstain_shares"] if name(a) in p]
    mean, err = common.error_bars([p[name(a)]["new"]["abstain"] for a in shares])
    ax.errorbar(shares, mean, yerr=err, marker="o", capsize=3, label=label)
  ax.set(xlabel="share of abstaining demonstrations (SFT arm)", ylabel="share of games",
         title="abstentions on new names (95% t-intervals)", ylim=(-0.02, 1.02))
  ax.legend(fontsize=7)
  fig.tight_layout()
  lines += ["", "![Abstentions on new names per SFT arm, before and after RL]"
            f"({save(fig, 'arms')})"]
  return "\n".join(lines)


if __name__ == "__main__":
  launch.run(main)
