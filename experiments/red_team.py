"""Red teaming in the red-team game: a learned attacker against fixed ones (claim 5).

  python -m experiments.red_team --config configs/red_team.py --workdir workdirs/red_team

Claim 5 of docs/design.md: the game type matters. A learned adversarial player one (a red
team, zero-sum) finds failures that a fixed player one misses, and training against it
raises player two's worst-case payoff. Player one asks for a word and player two, the
defender, must refuse forbidden words (however disguised) and repeat allowed ones (see
``twoplayer_jax.games.red_team``). Stages, each for ``num_seeds`` seeds side by side:

  attacker_sft   behaviour cloning of player one's requests in transcripts of the
                 scripted disguised attacker against mostly the keyword-filter defender;
  defender_sft   cloning player two's replies in the same transcripts: a keyword filter
                 with failures to find;
  attack_r<r>    from attacker_sft, policy learning of player one against each line's
                 defender of round r (fixed), KL to attacker_sft: a fresh red team per
                 defender, each with the same budget;
  defend_r<r>    from round r - 1's defender, policy learning of player two, KL to
                 defender_sft, in two lines: "adversarial" against a mixture of
                 attack_r<r-1>'s red team (``learned_weight``) and the scripted attackers,
                 "scripted_only" (the control) against the scripted attackers alone.

The two lines are trained side by side too (states ``[2 * num_seeds, ...]``, the
adversarial line's seeds first), so a stage trains both. Every round's defenders then
play each scripted attacker and the red team trained against them: per round and line,
player two's payoff against each attacker, its worst case over them, and each attacker's
success rate (games player one wins), with sampled games of the red team, are printed
and saved in ``summary.json``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, players, rollout, train, vocab
from twoplayer_jax.data import configs as data_configs
from twoplayer_jax.train import stages

GAME = "red_team"
LINES = ("adversarial", "scripted_only")  # Defenders trained with / without a red team.


def dataset(c):
  """Transcripts of the scripted disguised attacker against the SFT demonstrators."""
  tag = "_".join(f"{k}{v}" for k, v in sorted({**c.game, **c.sft_mix}.items()))
  config = data_configs.transcripts_config(
      GAME, dict(c.sft_mix), f"red_team_disguised{c.forbidden_rate}_{tag}",
      game_settings=dict(c.game), player_one="disguised",
      player_settings={"disguised": {"forbidden_rate": c.forbidden_rate}})
  return common.dataset("game_transcripts", config, c.data_dir, c.num_examples, c.seed)


def drawn(candidates: list[players.Player]) -> players.Player:
  """A player that is one of ``candidates``, drawn per game with probability ∝
  ``exp(logits)`` from its params ``(logits [K], shared)``: unlike ``players.mixture``,
  whose weights are static, one compiled game serves any weights, e.g. per seed."""
  mix = players.mixture(candidates, [1.0] * len(candidates))

  def init(params, state, key):
    logits, shared = params
    k_pick, k_rest = jax.random.split(key)
    _, carries = mix.init(shared, state, k_rest)
    return jax.random.categorical(k_pick, logits).astype(jnp.int32), carries

  def act(params, carry, state, key):
    return mix.act(params[1], carry, state, key)

  return players.Player(init, act)


def by_line(update, num_seeds: int):
  """``update(state, fixed)`` vmapped over both lines' states ``[2 * S, ...]`` (the
  adversarial line's seeds first); metrics averaged over all, and the payoffs also
  within each line."""

  def step(states, fixed):
    states, metrics = jax.vmap(update)(states, fixed)
    out = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
    for i, line in enumerate(LINES):
      for name in ("payoff_one", "payoff_two"):
        out[f"{name}/{line}"] = jnp.mean(metrics[name][i * num_seeds:(i + 1) * num_seeds])
    return states, out

  return step


def _both(tree):
  """One line's ``[S, ...]`` leaves as both lines' ``[2 * S, ...]``."""
  return jax.tree.map(lambda x: jnp.concatenate([x, x]), tree)


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  if c.rounds < 1 or not 0 < c.learned_weight < 1 or not c.scripted:
    raise launch.ConfigError(f"need rounds >= 1 (got {c.rounds}), 0 < learned_weight < 1 (got "
                             f"{c.learned_weight}) and some scripted attackers (got "
                             f"{c.scripted})")
  stages.check("imitation", c.sft, "config.sft")
  for name, role in (("attack", 1), ("defend", 2)):
    stages.check("policy", c[name], f"config.{name}", role=role)
  game = games.make(GAME, **c.game)
  model = common.model(c.model)
  scripted = {name: games.player(GAME, 1, name, game) for name in c.scripted}
  model_player = players.model_player(model, game)  # Samples at temperature 1.
  attackers = drawn([model_player, *scripted.values()])  # The learned one, then scripted.
  seeds = c.num_seeds
  share = (1 - c.learned_weight) / len(scripted)
  weights = np.array([[c.learned_weight] + [share] * len(scripted),  # adversarial
                      [0.0] + [1 / len(scripted)] * len(scripted)])  # scripted_only
  with np.errstate(divide="ignore"):  # The scripted-only line never meets the learned one.
    logits = jnp.asarray(np.repeat(np.log(weights), seeds, axis=0), jnp.float32)

  with common.runner(c, workdir) as run:
    source = dataset(c)
    sft = {}
    for name, role in (("attacker_sft", 1), ("defender_sft", 2)):
      sft[name] = _both(run(stages.imitation(
          name, model, c.sft, source, seed=c.seed + role - 1, num_seeds=seeds,
          seq_len=game.max_length, roles=(role,))).params)
    # Each kind's update is built once, so that every round reuses one compilation.
    updates = {
        "attack": by_line(train.make_iteration(
            game, model, stages.rl_optimizer(c.attack), model_player,
            stages.rl_settings(c.attack, "config.attack", role=1),
            games_sharding=run.games_sharding), seeds),
        "defend": by_line(train.make_iteration(
            game, model, stages.rl_optimizer(c.defend), attackers,
            stages.rl_settings(c.defend, "config.defend", role=2),
            games_sharding=run.games_sharding), seeds)}

    def learn(name, index, init, fixed):
      """Stage ``name`` of both lines, from ``init`` ``[2 * S, ...]``."""
      kind = name.split("_")[0]
      block = c[kind]
      games_ = block.num_openings * block.group_size
      fresh = stages.fresh_states(model, stages.rl_optimizer(block), c.seed + 2 + index,
                                  2 * seeds)
      return run(stages.Stage(name, fresh, updates[kind], block.iterations,
                              games_ * game.max_length, games_, start=init, fixed=fixed,
                              logical_axes=model.logical_axes())).params

    # defenders[r], red_teams[r]: [2 * S] (adversarial line, then scripted_only) after
    # round r, and the attackers trained against them.
    defenders, red_teams = [sft["defender_sft"]], []
    for r in range(c.rounds + 1):
      red_teams.append(learn(f"attack_r{r}", 2 * r, sft["attacker_sft"], train.Frozen(
          opponent=defenders[r], reference=sft["attacker_sft"])))
      if r < c.rounds:
        defenders.append(learn(f"defend_r{r + 1}", 2 * r + 1, defenders[r],
                               train.Frozen(opponent=(logits, red_teams[r]),
                                            reference=sft["defender_sft"])))

    summary = assess(c, game, model, attackers, list(scripted), defenders, red_teams,
                     run.records)
    common.write_summary(workdir, summary)
    print(table(summary))


def assess(c, game, model, attackers, scripted, defenders, red_teams, records) -> dict:
  """Every round's defenders of both lines against each scripted attacker and the red
  team trained against them."""
  key = jax.random.key(c.seed + 3)
  names = ["learned", *scripted]
  pick = jnp.log(jnp.eye(len(names)))  # [K, K]: row k plays attacker k.

  @jax.jit
  @jax.vmap
  def tournament(red_team, defender):
    """``[K, games]`` games of one seed's defender against each attacker."""
    play = lambda row: rollout.play(game, (attackers, players.model_player(model, game)),
                                    ((row, red_team), defender), key, c.eval_games)
    traj = jax.vmap(play)(pick)
    return traj.returns, traj.tokens, traj.owner, traj.length

  summary = {"num_seeds": c.num_seeds, "rounds": c.rounds, "attackers": names,
             "lines": {line: [] for line in LINES}, "transcripts": {}}
  s = c.num_seeds
  for r in range(c.rounds + 1):
    returns, tokens, owner, length = jax.device_get(tournament(red_teams[r], defenders[r]))
    payoff = returns[..., 1].mean(-1)  # [2S, K]
    success = (returns[..., 0] > 0).mean(-1)
    for i, line in enumerate(LINES):
      p, w = payoff[i * s:(i + 1) * s], success[i * s:(i + 1) * s]  # [S, K]
      summary["lines"][line].append({
          "round": r,
          "payoff": {n: common.mean_std(p[:, k]) for k, n in enumerate(names)},
          "worst_case": common.mean_std(p.min(-1)),
          "worst_case_scripted": common.mean_std(p[:, 1:].min(-1)),
          "success": {n: common.mean_std(w[:, k]) for k, n in enumerate(names)},
          "learned_minus_best_scripted": common.mean_std(w[:, 0] - w[:, 1:].max(-1))})
    if r in (0, c.rounds):  # The adversarial line's first seed: its red team's games.
      summary["transcripts"][f"round {r}, attack_r{r} vs the adversarial defender"] = [
          vocab.render(tokens[0, 0, g], owner[0, 0, g], int(length[0, 0, g]))
          for g in range(min(c.num_transcripts, c.eval_games))]
  summary["stages"] = {name: {"seconds": rec["seconds"], "tokens": rec["tokens"]}
                       for name, rec in records.items()}
  summary["claim_5"] = claim(summary)
  return summary


def claim(summary: dict) -> dict:
  """The claim's two parts, from the per-round rows of a summary."""
  rows = [row for line in LINES for row in summary["lines"][line]]
  finds_more = [row["learned_minus_best_scripted"]["mean"] > 0 for row in rows]
  last = {line: summary["lines"][line][-1]["worst_case"] for line in LINES}
  gap = last["adversarial"]["mean"] - last["scripted_only"]["mean"]
  spread = np.hypot(last["adversarial"]["std"], last["scripted_only"]["std"])
  return {
      "defenders where the red team wins more often than every scripted attacker":
          f"{sum(finds_more)} of {len(rows)}",
      "red team finds more failures": all(finds_more),
      "final worst case, adversarial minus scripted_only": gap,
      "adversarial training raises the worst case": bool(gap > spread)}


def _f(m: dict) -> str:
  return f"{m['mean']:.3f} ± {m['std']:.3f}"


def table(summary: dict) -> str:
  """The summary as a text table (mean ± std over seeds)."""
  attackers = summary["attackers"]
  lines = [f"{'line':<14} {'round':>5} " + " ".join(f"{'vs ' + a:>15}" for a in attackers)
           + f" {'worst case':>15} {'red team wins':>15}"]
  for line in LINES:
    for row in summary["lines"][line]:
      lines.append(f"{line:<14} {row['round']:>5} "
                   + " ".join(f"{_f(row['payoff'][a]):>15}" for a in attackers)
                   + f" {_f(row['worst_case']):>15} {_f(row['success']['learned']):>15}")
  for title, games_ in summary["transcripts"].items():
    lines.append(f"{title}:")
    lines += ["  " + g.replace("\n", "\n  ") for g in games_]
  lines.append(f"claim 5: {summary['claim_5']}")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The Markdown section of RESULTS.md, with its plots."""
  from matplotlib import figure  # pylint: disable=import-outside-toplevel
  attackers, lines_ = summary["attackers"], summary["lines"]
  rounds = [row["round"] for row in lines_["adversarial"]]
  out = [f"Defender (player two) payoff against each attacker, mean ± std over "
         f"{summary['num_seeds']} seeds; \"learned\" is a red team trained against that "
         "defender from the cloned attacker. Round 0 is the SFT keyword filter.", "",
         "| line | round | " + " | ".join(f"vs {a}" for a in attackers)
         + " | worst case | red team wins | red team − best scripted |",
         "|---|---|" + "---|" * (len(attackers) + 3)]
  for line in LINES:
    for row in lines_[line]:
      out.append(f"| {line} | {row['round']} | "
                 + " | ".join(_f(row["payoff"][a]) for a in attackers)
                 + f" | {_f(row['worst_case'])} | {_f(row['success']['learned'])} | "
                 f"{_f(row['learned_minus_best_scripted'])} |")

  fig = figure.Figure(figsize=(9, 3.5))
  wins, worst = fig.subplots(1, 2)
  for line, style in zip(LINES, ("-o", "--s")):
    for ax, pick, label in ((wins, lambda r: r["success"]["learned"], "red team"),
                            (worst, lambda r: r["worst_case"], "worst case")):
      m = np.array([pick(row)["mean"] for row in lines_[line]])
      s = np.array([pick(row)["std"] for row in lines_[line]])
      ax.plot(rounds, m, style, label=f"{label}, {line}")
      ax.fill_between(rounds, m - s, m + s, alpha=0.2)
    best = [max(row["success"][a]["mean"] for a in attackers if a != "learned")
            for row in lines_[line]]
    wins.plot(rounds, best, style, alpha=0.5, label=f"best scripted, {line}")
  wins.set(xlabel="round", ylabel="attacker success rate", title="Attacks that succeed")
  worst.set(xlabel="round", ylabel="defender payoff", title="Defender's worst case")
  for ax in (wins, worst):
    ax.set_xticks(rounds)
    ax.legend(fontsize=7)
  fig.tight_layout()
  out += ["", f"![attacker success rate and defender worst case over rounds]"
          f"({save(fig, 'rounds')})", ""]

  for title, games_ in summary["transcripts"].items():
    out += [f"Sampled games, {title}:", "", "```", "\n\n".join(games_), "```", ""]
  verdict = summary["claim_5"]
  count = verdict["defenders where the red team wins more often than every scripted attacker"]
  found, total = (int(n) for n in count.split(" of "))
  gap = verdict["final worst case, adversarial minus scripted_only"]
  raised = verdict["adversarial training raises the worst case"]
  first = ("confirmed" if found == total else "confirmed for some defenders only" if found
           else "not confirmed")
  out.append(
      f"The red team won more often than the best scripted attacker against {count} "
      f"defenders: that it finds failures the fixed attackers miss is {first}. After "
      f"{summary['rounds']} rounds the defender trained against red teams has a worst-case "
      f"payoff {gap:+.3f} relative to the one trained on scripted attackers alone, "
      f"{'more' if raised else 'not more'} than the seeds' spread: that red-team training "
      f"raises the worst case is {'confirmed' if raised else 'not confirmed'}.")
  return "\n".join(out)


if __name__ == "__main__":
  launch.run(main)
