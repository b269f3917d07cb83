"""Hallucination as a cloned habit of always answering, in the facts game.

  python -m experiments.hallucination --config configs/hallucination.py \\
      --workdir workdirs/hallucination

Claim 4 of docs/design.md: a model cloned from demonstrators who (almost) always answer
answers confidently, and wrongly, about what it cannot know; a payoff that prices a wrong
answer (-c) below abstaining (0) teaches it to abstain there. Stages, each for
``num_seeds`` seeds side by side (vmapped):

  sft           cloning player two of demonstrations on the questions of the training
                knowledge base: the "average" player, who answers seen entities
                right and guesses a colour on unseen ones, and, in a small share
                ``abstain_share``, the expert, who says "idk" on unseen ones;
  rl_cost<c>    from sft, GRPO against the facts game's payoff with wrong-answer cost
                c, one stage per c of ``wrong_costs`` (c is a static game setting, so
                the costs run one after another, the seeds side by side).

Each policy then answers, at temperature 1, the training questions, split into "seen"
entities (whose facts the demonstrations state) and "unseen" ones (asked in SFT and RL
but never with their fact), and questions about "new" names from another knowledge base,
none of them in training: what the model cannot know. The summary gives, per set, the
shares of right answers, abstentions and confident wrong answers.
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, models, players, train
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.games import facts
from twoplayer_jax.train import stages

GAME = "facts"
OUTCOMES = {"right": 1.0, "abstain": 0.0, "wrong": -1.0}  # Payoffs at wrong_cost 1.
QUESTION_SETS = ("seen", "unseen", "new")


def stage_name(cost: float) -> str:
  return f"rl_cost{cost:g}"


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
  training questions (seen and unseen entities) and questions about new names."""
  trained = games.make(GAME, **c.game, wrong_cost=1.0)
  new = games.make(GAME, num_entities=c.new_names.num_entities, num_seen=0, ask="unseen",
                   num_values=c.game.num_values, seed=c.new_names.seed, wrong_cost=1.0)
  return trained, new


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  if not c.wrong_costs or min(c.wrong_costs) < 0:
    raise ValueError(f"wrong_costs must be non-negative and not empty, got {c.wrong_costs}")
  if not 0 <= c.abstain_share < 1:
    raise ValueError(f"abstain_share must be in [0, 1), got {c.abstain_share}")
  stages.check("imitation", c.sft, "config.sft")
  stages.check("policy", c.rl, "config.rl")
  game = games.make(GAME, **c.game)
  human = games.player(GAME, 1, "human", game)
  model = models.make(models.TransformerConfig(**c.model))
  seeds, seq_len = c.num_seeds, game.max_length
  tag = "_".join(f"{k}{v}" for k, v in sorted(c.game.items()))
  tag += f"_err{c.demonstrator_error}_abstain{c.abstain_share}"
  with common.runner(c, workdir) as run:
    demonstrations = common.dataset("game_transcripts", data_configs.transcripts_config(
        GAME, {"average": 1 - c.abstain_share, "expert": c.abstain_share},
        f"hallucination_{tag}", game_settings=dict(c.game),
        player_settings={"average": {"error_rate": c.demonstrator_error}}),
        c.data_dir, c.num_examples, c.seed)
    params = {"sft": run(stages.imitation("sft", model, c.sft, demonstrations, seed=c.seed,
                                          num_seeds=seeds, seq_len=seq_len)).params}
    for cost in c.wrong_costs:
      name = stage_name(cost)
      played = games.make(GAME, **c.game, wrong_cost=float(cost))
      params[name] = run(stages.policy(
          name, played, model, c.rl, human, seed=c.seed + 2, num_seeds=seeds,
          start=params["sft"], fixed=train.Params(reference=params["sft"]),
          games_sharding=run.games_sharding)).params

    summary = assess(c, human, model, params, run.records)
    common.write_summary(workdir, summary)
    print(table(summary))


def assess(c, human, model, params, records) -> dict:
  """Every policy answers the three question sets; the payoff of each RL policy at its
  own cost on the training questions, and sft's at the same cost."""
  key = jax.random.key(c.seed + 3)
  trained, new = question_games(c)
  fresh = fresh_names(trained, new)
  names = ["sft"] + [stage_name(x) for x in c.wrong_costs]
  # All policies play in one batch per game: [P * S, ...] parameters.
  stacked = jax.tree.map(lambda *x: jnp.concatenate(x), *[params[n] for n in names])

  def play(game):
    """``[P, S, G]`` payoffs and ``[G]`` entities asked (the same for every player)."""
    traj = common.play_seeds(game, (human, players.model_player(model, game)),
                             (None, stacked), key, c.eval_games)
    paid = np.asarray(traj.returns[..., 1]).reshape(len(names), c.num_seeds, -1)
    return paid, np.asarray(traj.hidden["entity"][0])

  paid_trained, entity = play(trained)
  paid_new, entity_new = play(new)
  keeps = {"seen": entity < trained.num_seen, "unseen": entity >= trained.num_seen,
           "new": fresh[entity_new]}
  paid = {"seen": paid_trained, "unseen": paid_trained, "new": paid_new}
  shares = {n: {q: outcomes(paid[q][i], np.broadcast_to(keeps[q], paid[q].shape[1:]))
                for q in QUESTION_SETS} for i, n in enumerate(names)}

  def payoff(s, cost):
    """``[S]`` payoff at ``cost`` on the training questions (all entities, uniformly)."""
    seen = c.game.num_seen / c.game.num_entities
    value = lambda o: o["right"] - cost * o["wrong"]
    return seen * value(s["seen"]) + (1 - seen) * value(s["unseen"])

  stats = lambda s: {q: {k: common.mean_std(v) for k, v in o.items()} for q, o in s.items()}
  policies = {"sft": {**stats(shares["sft"]), "seconds": records["sft"]["seconds"],
                      "tokens": records["sft"]["tokens"]}}
  for cost in c.wrong_costs:
    name = stage_name(cost)
    policies[name] = {
        **stats(shares[name]), "wrong_cost": float(cost),
        "payoff": common.mean_std(payoff(shares[name], cost)),
        "sft_payoff": common.mean_std(payoff(shares["sft"], cost)),
        "seconds": records[name]["seconds"],
        "tokens": records["sft"]["tokens"] + records[name]["tokens"]}
  summary = {
      "num_seeds": c.num_seeds, "wrong_costs": [float(x) for x in c.wrong_costs],
      "num_values": c.game.num_values, "policies": policies,
      "games_per_set": {q: int(k.sum()) for q, k in keeps.items()}}
  summary["claim_4"] = verdict(summary)
  return summary


def verdict(summary: dict) -> dict:
  """Whether the numbers confirm claim 4: sft answers wrongly on new names; every cost
  that makes guessing a losing bet (c > 1 / (num_values - 1)) lowers that share by more
  than the spread over seeds, while c = 0 does not; seen accuracy is kept within 0.1."""
  p = summary["policies"]
  wrong = lambda n: p[n]["new"]["wrong"]
  sft = wrong("sft")
  losing = [x for x in summary["wrong_costs"] if x > 1 / (summary["num_values"] - 1)]
  lower = lambda n: wrong(n)["mean"] + wrong(n)["std"] < sft["mean"] - sft["std"]
  priced = [stage_name(x) for x in losing]
  free = [stage_name(x) for x in summary["wrong_costs"] if x == 0]
  return {
      "sft_new_wrong": sft["mean"],
      "priced_costs": losing,
      "priced_lower_new_wrong": bool(priced) and all(lower(n) for n in priced),
      "free_keeps_answering": all(not lower(n) for n in free) if free else None,
      "seen_accuracy_kept": all(p[n]["seen"]["right"]["mean"]
                                >= p["sft"]["seen"]["right"]["mean"] - 0.1 for n in priced)}


def table(summary: dict) -> str:
  """The summary as a text table (mean ± std over seeds)."""
  f = common.pm
  lines = [f"{'policy':<12} {'seen right':>15} {'unseen wrong':>15} {'new wrong':>15} "
           f"{'new abstain':>15}"]
  for name, s in summary["policies"].items():
    lines.append(f"{name:<12} {f(s['seen']['right']):>15} {f(s['unseen']['wrong']):>15} "
                 f"{f(s['new']['wrong']):>15} {f(s['new']['abstain']):>15}")
  lines.append(f"claim 4: {summary['claim_4']}")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the table of outcomes per policy, the verdict and plots."""
  from matplotlib.figure import Figure

  f = common.pm
  p, claim = summary["policies"], summary["claim_4"]
  rl = [stage_name(x) for x in summary["wrong_costs"]]
  games_per_set = ", ".join(f"{k} {v}" for k, v in summary["games_per_set"].items())
  lines = [
      f"Shares of answers at temperature 1, mean ± std over {summary['num_seeds']} seeds "
      f"(games per seed: {games_per_set}). *new*: names from another "
      "knowledge base, never in training: what the model cannot know.", "",
      "| policy | c | seen right | seen abstain | unseen wrong | unseen abstain | new wrong | "
      "new abstain | payoff at c | sft payoff at c |",
      "|---|---|---|---|---|---|---|---|---|---|"]
  for name, s in p.items():
    cost = f"{s['wrong_cost']:g}" if "wrong_cost" in s else "—"
    pay = (f(s["payoff"]), f(s["sft_payoff"])) if "payoff" in s else ("—", "—")
    lines.append(f"| {name} | {cost} | {f(s['seen']['right'])} | {f(s['seen']['abstain'])} | "
                 f"{f(s['unseen']['wrong'])} | {f(s['unseen']['abstain'])} | "
                 f"{f(s['new']['wrong'])} | {f(s['new']['abstain'])} | {pay[0]} | {pay[1]} |")
  costs = ", ".join(f"{x:g}" for x in claim["priced_costs"]) or "none"
  confirmed = claim["priced_lower_new_wrong"]
  rates = ", ".join(f"{p[n]['new']['wrong']['mean']:.1%}" for n in rl)
  lines += ["", (
      f"Claim 4 {'confirmed' if confirmed else 'not confirmed'} by these numbers: after SFT "
      f"the model answers wrongly on {claim['sft_new_wrong']:.1%} of new names; the costs "
      f"that make a guess a losing bet (c = {costs}) "
      f"{'all' if confirmed else 'did not all'} lower that share by more than the spread "
      f"over seeds (to {rates} for c = {', '.join(f'{x:g}' for x in summary['wrong_costs'])})"
      f"{'' if claim['free_keeps_answering'] in (None, True) else ', but so did c = 0'}; "
      f"seen accuracy {'stayed' if claim['seen_accuracy_kept'] else 'did not stay'} within "
      "0.1 of sft's.")]

  fig = Figure(figsize=(9, 3.5))
  costs = np.array(summary["wrong_costs"])
  for ax, (qs, outcome, title) in zip(fig.subplots(1, 2), (
      ("new", "wrong", "wrong answers on new names"), ("seen", "right", "accuracy on seen"))):
    mean = np.array([p[n][qs][outcome]["mean"] for n in rl])
    std = np.array([p[n][qs][outcome]["std"] for n in rl])
    ax.errorbar(costs, mean, yerr=std, marker="o", capsize=3, label="RL from sft")
    base = p["sft"][qs][outcome]
    ax.axhline(base["mean"], color="grey", ls="--", label="sft")
    ax.axhspan(base["mean"] - base["std"], base["mean"] + base["std"], color="grey", alpha=0.2)
    ax.set(xlabel="wrong-answer cost c", ylabel="share of games", title=title, ylim=(-0.02, 1.02))
    ax.legend()
  fig.tight_layout()
  path = save(fig, "cost")
  lines += ["", f"![Wrong answers on never-seen names and accuracy on seen ones vs the cost c "
            f"(mean ± std over seeds)]({path})"]
  return "\n".join(lines)


if __name__ == "__main__":
  launch.run(main)
