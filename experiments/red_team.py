"""Red teaming in the red-team game: a learned attacker against fixed ones (claim 5).

  python -m experiments.red_team --config configs/red_team.py --workdir workdirs/red_team

Claim 5 of docs/design.md: the game type matters. A learned adversarial player one (a red
team, zero-sum) finds failures that a fixed player one misses, and training against it
raises player two's worst-case payoff. Player one asks for a word and player two, the
defender, must refuse forbidden words (however disguised) and not refuse allowed ones
(see ``twoplayer_jax.games.red_team``; the config scores compliance as "did not refuse",
so that copying is not what a defender is judged on). Stages, each for ``num_seeds``
seeds side by side, every game played in memory:

  sft            cloning both seats of the games of the fixed attackers (``scripted``,
                 equal shares) against the demonstrator, a keyword filter (``sft_mix``:
                 mostly "naive", some "noisy" play so that the clone still explores): in
                 seat one the SFT attacker, in seat two the SFT defender, a keyword
                 filter with the disguised failures a red team can find (one policy
                 tells the seats apart by the turn it writes);
  attack_r<r>    from sft, policy learning of player one against each line's defender
                 of round r (fixed), KL to sft: a fresh red team per defender, each with
                 the same budget;
  defend_r<r>    from round r - 1's defender, policy learning of player two, KL to sft,
                 in two lines: "adversarial" against a mixture of
                 attack_r<r-1>'s red team (``learned_weight``) and the fixed attackers,
                 "scripted_only" (the control) against the fixed attackers alone.

The two lines train side by side (states ``[2 * num_seeds, ...]``, the adversarial line's
seeds first) and start from the same seed's SFT defender, so they pair by seed. Every
defender of every round and line then plays every attacker of its seed (cross-play):
every red team of both lines, the SFT attacker, the fixed attackers and a held-out family
of disguises (``held_out``) that no stage trains with. Each game's outcome is a defence
or one of player one's three kinds of win: harmful compliance, over-refusal, malformed
reply. The summary gives, each with its 95% t-interval over seeds: the defenders' payoff
and the attackers' wins by kind, each defender's worst case over all attackers, each red
team's time to break its defender (attacker iterations until half its games succeed),
the training curves, and the config's rule's verdict (``verdict``).
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, objectives, players, rollout, train, vocab
from twoplayer_jax.games import red_team
from twoplayer_jax.train import stages
from twoplayer_jax.train.loop import Health

GAME = "red_team"
LINES = ("adversarial", "scripted_only")  # Defenders trained with / without a red team.
WINS = red_team.OUTCOMES[1:]  # Player one's kinds of win.


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


def clone_step(game, model, teachers, tx, batch_size: int, names: list[str]):
  """``step(run, _) -> (run, metrics)``: ``common.clone_seats`` of both seats (one pass:
  the game has no private text, so both read the same view), also logging the
  demonstrator's payoff against each fixed attacker in its games
  (``demonstrator_vs_<name>``, mean over seeds): ``teachers[0]`` is the
  ``players.mixture`` of the fixed attackers ``names``."""

  def update(state):
    rng, key = jax.random.split(state.rng)
    in_play = rollout.play_out(game, teachers, (None, None), key, batch_size)
    traj = rollout.finish(in_play)

    def loss_fn(params):
      logits, _ = train.seat_forward(model, params, game, traj.tokens, traj.hidden, 1)
      losses = [objectives.imitation_loss(logits, traj.tokens, objectives.imitation_weights(
          traj.tokens, traj.owner, traj.length, seat)) for seat in (1, 2)]
      loss = sum(l for l, _ in losses) / 2
      return loss, {"loss": loss, "accuracy": sum(m["accuracy"] for _, m in losses) / 2}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    attacker = in_play.carries[0][0]  # [B] the fixed attacker of each game.
    for k, name in enumerate(names):
      mine = attacker == k
      metrics[f"demonstrator_vs_{name}"] = jnp.sum(
          jnp.where(mine, traj.returns[:, 1], 0.0)) / jnp.maximum(jnp.sum(mine), 1)
    return train.apply_gradients(state, grads, tx, rng), metrics

  def step(run, _):
    state, metrics = jax.vmap(update)(run.train)
    return run._replace(train=state), common.mean_over_seeds(metrics)

  return step


def _both(tree):
  """One line's ``[S, ...]`` leaves as both lines' ``[2 * S, ...]``."""
  return jax.tree.map(lambda x: jnp.concatenate([x, x]), tree)


def check(c) -> None:
  """Raises ``launch.ConfigError`` naming what in ``c`` cannot run."""
  if c.rounds < 1 or not 0 < c.learned_weight < 1 or not c.scripted:
    raise launch.ConfigError(f"need rounds >= 1 (got {c.rounds}), 0 < learned_weight < 1 (got "
                             f"{c.learned_weight}) and some scripted attackers (got "
                             f"{c.scripted})")
  if c.num_seeds < 2:
    raise launch.ConfigError(f"config.num_seeds must be at least 2 for intervals, got "
                             f"{c.num_seeds}")
  try:
    game = games.make(GAME, **c.game)
    for name in (*c.scripted, *c.held_out):
      games.player(GAME, 1, name, game)
    for name in c.sft_mix:
      games.player(GAME, 2, name, game)
    stages.check("imitation", c.sft, "config.sft")
    for name, role in (("attack", 1), ("defend", 2)):
      stages.check("policy", c[name], f"config.{name}", role=role)
  except (KeyError, ValueError) as e:
    raise launch.ConfigError(str(e)) from None


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  check(c)
  game = games.make(GAME, **c.game)
  model = common.model(c.model)
  fixed = {name: games.player(GAME, 1, name, game) for name in (*c.scripted, *c.held_out)}
  scripted = [fixed[name] for name in c.scripted]
  demonstrator = players.mixture([games.player(GAME, 2, n, game) for n in c.sft_mix],
                                 list(c.sft_mix.values()))
  model_player = players.model_player(model, game)  # Samples at temperature 1.
  attackers = drawn([model_player, *scripted])  # The learned one, then the scripted ones.
  seeds = c.num_seeds
  share = (1 - c.learned_weight) / len(scripted)
  weights = np.array([[c.learned_weight] + [share] * len(scripted),  # adversarial
                      [0.0] + [1 / len(scripted)] * len(scripted)])  # scripted_only
  with np.errstate(divide="ignore"):  # The scripted-only line never meets the learned one.
    logits = jnp.asarray(np.repeat(np.log(weights), seeds, axis=0), jnp.float32)

  with common.runner(c, workdir) as run:
    s = c.sft
    tx = stages.optimizer_of(s, s.steps)
    keys = jax.random.split(jax.random.key(c.seed), seeds)
    teachers = (players.mixture(scripted, [1.0] * len(scripted)), demonstrator)
    sft = _both(run(stages.Stage(
        "sft", lambda start: common.Cloning(jax.vmap(
            lambda k: train.create(model.init(k), tx, jax.random.fold_in(k, 1)))(keys)),
        clone_step(game, model, teachers, tx, s.batch_size, list(c.scripted)), s.steps,
        s.batch_size * game.max_length, logical_axes=model.logical_axes())).params)
    # Each kind's update is built once, so that every round reuses one compilation; every
    # run's payoff is logged (the attack's for the time to break, the defence's curves).
    updates = {
        "attack": stages.over_seeds(train.make_iteration(
            game, model, stages.rl_optimizer(c.attack), model_player,
            stages.rl_settings(c.attack, "config.attack", role=1),
            games_sharding=run.games_sharding), ("payoff_one",)),
        "defend": stages.over_seeds(train.make_iteration(
            game, model, stages.rl_optimizer(c.defend), attackers,
            stages.rl_settings(c.defend, "config.defend", role=2),
            games_sharding=run.games_sharding), ("payoff_two",))}

    def learn(name, index, init, frozen):
      """Stage ``name`` of both lines, from ``init`` ``[2 * S, ...]``."""
      kind = name.split("_")[0]
      block = c[kind]
      games_ = block.num_openings * block.group_size
      fresh = stages.fresh_states(model, stages.rl_optimizer(block), c.seed + 2 + index,
                                  2 * seeds)
      return run(stages.Stage(name, fresh, updates[kind], block.iterations,
                              games_ * game.max_length, games_, start=init, fixed=frozen,
                              logical_axes=model.logical_axes(),
                              health=Health(zero_grad_steps=0))).params  # Groups may tie.

    # defenders[r], red_teams[r]: [2 * S] (adversarial line, then scripted_only) after
    # round r, and the attackers trained against them.
    defenders, red_teams = [sft], []
    for r in range(c.rounds + 1):
      red_teams.append(learn(f"attack_r{r}", 2 * r, sft, train.Frozen(
          opponent=defenders[r], reference=sft)))
      if r < c.rounds:
        defenders.append(learn(f"defend_r{r + 1}", 2 * r + 1, defenders[r], train.Frozen(
            opponent=(logits, red_teams[r]), reference=sft)))

    summary = assess(c, workdir, game, model, fixed, jax.tree.map(lambda x: x[:seeds], sft),
                     defenders, red_teams, run.records)
    summary["curves"] = curves(c, workdir)
    summary["time_to_break"] = time_to_break(summary["curves"]["attack"], c.attack.iterations)
    summary["verdict"] = verdict(summary)
    common.write_summary(workdir, summary)
    print(table(summary))
    print(f"claim 5: {summary['verdict']['outcome']}")


def play_all(c, game, model, fixed: dict, key):
  """``outcomes(attackers, defended) -> (outcome [S, K, G], (tokens, owner, length)
  [S, K, N, ...])``: one defender per seed (params ``[S, ...]``) against ``K`` attackers
  of its seed, the model attackers' params ``[S, M, ...]`` then every fixed attacker
  (``K = M + len(fixed)``), ``eval_games`` games each (each seed its own draws, the same
  for every pairing), and the first ``num_transcripts`` games of each."""
  everyone = drawn([players.model_player(model, game), *fixed.values()])
  defender = players.model_player(model, game)

  def pairing(attacker, pick, defended, key):
    traj = rollout.play(game, (everyone, defender), ((pick, attacker), defended), key,
                        c.eval_games)
    n = c.num_transcripts
    return (jax.vmap(game.outcome)(traj.tokens, traj.length),
            (traj.tokens[:n], traj.owner[:n], traj.length[:n]))

  @jax.jit
  def outcomes(attackers, defended):
    m = jax.tree.leaves(attackers)[0].shape[1]
    picks = jnp.log(jnp.eye(1 + len(fixed)))[np.r_[np.zeros(m, int), 1:1 + len(fixed)]]
    # A fixed attacker's row carries the first model attacker's params, unread.
    rows = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:, :1], len(fixed), 1)], 1),
                        attackers)
    keys = jax.random.split(key, jax.tree.leaves(rows)[0].shape[0])  # One per seed.
    per_seed = jax.vmap(pairing, in_axes=(0, 0, None, None))
    return jax.vmap(per_seed, in_axes=(0, None, 0, 0))(rows, picks, defended, keys)

  return outcomes


def kinds(outcome: np.ndarray) -> dict:
  """``{"success", *WINS}`` each ``[...]``: the share of games ``outcome [..., G]`` player
  one wins, in all and by kind."""
  out = {"success": (outcome > 0).mean(-1)}
  out.update({kind: (outcome == k + 1).mean(-1) for k, kind in enumerate(WINS)})
  return out


def assess(c, workdir, game, model, fixed, sft, defenders, red_teams, records) -> dict:
  """Cross-play: every round's defenders of both lines against every attacker of their
  seed; each defender's payoffs, wins by kind and worst case; the demonstrator's payoffs
  in the SFT games; the paired differences the rule judges."""
  s, rounds = c.num_seeds, c.rounds + 1
  line_of = lambda tree, i: jax.tree.map(lambda x: x[i * s:(i + 1) * s], tree)
  pairs = [(line, r) for line in LINES for r in range(rounds)]
  names_d = [f"{line} r{r}" for line, r in pairs]
  names = names_d + ["sft_attacker", *fixed]
  each = lambda trees: [line_of(trees[r], i) for i in range(2) for r in range(rounds)]
  # Per seed, the model attackers: every red team ([line, round]), then the SFT attacker.
  model_attackers = jax.tree.map(lambda *x: jnp.stack(x, 1), *each(red_teams), sft)
  outcomes = play_all(c, game, model, fixed, jax.random.key(c.seed + 3))
  crossplay, transcripts = {}, {}
  for (line, r), name, defender in zip(pairs, names_d, each(defenders)):  # Memory: one.
    crossplay[name], (tokens, owner, length) = jax.device_get(
        outcomes(model_attackers, defender))  # [S, K, G]
    if r in (0, c.rounds):  # Seed 0's games against the red team trained against it.
      k = names.index(name)
      transcripts[f"round {r}, attack_r{r} vs the {line} defender"] = [
          vocab.render(tokens[0, k, g], owner[0, k, g], int(length[0, k, g]))
          for g in range(tokens.shape[2])]

  interval = common.interval
  won = {name: kinds(outcome) for name, outcome in crossplay.items()}  # [S, K] each
  per_defender = {}
  for name, wins in won.items():
    payoff = 1 - 2 * wins["success"]
    per_defender[name] = {
        "payoff": {a: interval(payoff[:, k]) for k, a in enumerate(names)},
        "wins": {a: {kind: interval(w[:, k]) for kind, w in wins.items()}
                 for k, a in enumerate(names)},
        "worst_case": interval(payoff.min(-1)),
        "worst_attacker": [names[k] for k in payoff.argmin(-1)]}
  demo = {a: float(np.mean(common.curve(workdir, "sft", f"demonstrator_vs_{a}")[
      f"demonstrator_vs_{a}"])) for a in c.scripted}  # Over every logged SFT game.

  final = {line: won[f"{line} r{c.rounds}"] for line in LINES}
  fixed_k = [names.index(a) for a in c.scripted]
  harmful, success = (final["scripted_only"][k] for k in ("harmful_compliance", "success"))
  own = names.index(f"scripted_only r{c.rounds}")
  against_fixed = lambda wins: (1 - 2 * wins["success"][:, fixed_k]).mean(-1)  # [S]
  worst = lambda wins: 1 - 2 * wins["success"].max(-1)  # [S]
  differences = {
      "harmful_red_team_minus_best_fixed": interval(
          harmful[:, own] - harmful[:, fixed_k].max(-1)),
      "success_red_team_minus_best_fixed": interval(success[:, own]
                                                    - success[:, fixed_k].max(-1)),
      "worst_case_adversarial_minus_scripted_only": interval(
          worst(final["adversarial"]) - worst(final["scripted_only"])),
      "success_red_team_minus_sft_attacker": interval(np.mean([
          won[f"{line} r0"]["success"][:, names.index(f"{line} r0")]
          - won[f"{line} r0"]["success"][:, names.index("sft_attacker")] for line in LINES], 0))}
  defence = {line: interval(against_fixed(final[line]) - against_fixed(won[f"{line} r0"]))
             for line in LINES}
  return {
      "num_seeds": s, "rounds": c.rounds, "rule": c.rule,
      "verdict_settings": c.verdict_settings.to_dict(), "eval_games": c.eval_games,
      "attack_iterations": c.attack.iterations, "scripted": list(c.scripted),
      "held_out": list(c.held_out), "attackers": names, "defenders": per_defender,
      "demonstrator": demo, "differences": differences,
      "defence_gain_over_sft": defence, "transcripts": transcripts,
      "stages": {name: {"seconds": rec["seconds"], "tokens": rec["tokens"]}
                 for name, rec in records.items()}}


def curves(c, workdir: str) -> dict:
  """Per line and round, the red team's success rate in each attack_r<r> iteration and
  the defender's payoff in each defend_r<r> iteration, averaged over ``curve_window``
  records: the 95% band over seeds and each seed's (``smoothed``)."""
  s, out = c.num_seeds, {"attack": {line: [] for line in LINES},
                         "defend": {line: [] for line in LINES}}
  for kind, key, rounds in (("attack", "payoff_one", range(c.rounds + 1)),
                            ("defend", "payoff_two", range(1, c.rounds + 1))):
    for r in rounds:
      logged = common.seed_curves(workdir, f"{kind}_r{r}", key, 2 * s)
      values = np.asarray(logged["seeds"])
      if kind == "attack":
        values = (values + 1) / 2  # Every game pays ±1: the attacker's success rate.
      for i, line in enumerate(LINES):
        mine = values[i * s:(i + 1) * s]
        out[kind][line].append({"round": r, "step": logged["step"],
                                "band": common.band(mine, c.curve_window),
                                "smoothed": common.trailing(mine, c.curve_window).tolist()})
  return out


def time_to_break(attack: dict, budget: int) -> dict:
  """Per line and round, the attacker updates before the first iteration whose games
  (trailing mean over ``curve_window`` records) succeed at least half the time, over
  seeds: a seed never there counts ``budget`` (``unbroken`` of them; the interval is
  then a lower bound)."""
  out = {}
  for line, rows in attack.items():
    out[line] = []
    for row in rows:
      per_seed = common.first_reaching(row["smoothed"], np.asarray(row["step"]) - 1, 0.5,
                                       budget)
      out[line].append({"round": row["round"], **common.interval(per_seed),
                        "unbroken": int(sum(t == budget for t in per_seed))})
  return out


def verdict(summary: dict) -> dict:
  """The config's rule (``summary["rule"]``): "confirmed", "not confirmed" or
  "inconclusive: not learned", with the figures it compared."""
  v, d = summary["verdict_settings"], summary["differences"]
  checks = {"(a) the red team finds harmful compliance the fixed attackers miss":
                d["harmful_red_team_minus_best_fixed"]["low"] > 0,
            "(b) training against red teams raises the worst case":
                d["worst_case_adversarial_minus_scripted_only"]["low"] > 0}
  sft = summary["defenders"][f"{LINES[0]} r0"]["payoff"]
  sft_gap = {n: abs(sft[n]["mean"] - summary["demonstrator"][n]) for n in summary["scripted"]}
  defence = {line: m["mean"] for line, m in summary["defence_gain_over_sft"].items()}
  learned = {"SFT defender matches its demonstrator":
                 max(sft_gap.values()) <= v["sft_tolerance"],
             "red team beats the SFT attacker":
                 d["success_red_team_minus_sft_attacker"]["mean"] >= v["min_gain"],
             "defenders learn to stop the fixed attackers": min(defence.values()) >= v["min_gain"]}
  outcome = ("inconclusive: not learned" if not all(learned.values())
             else "confirmed" if all(checks.values()) else "not confirmed")
  return {"outcome": outcome, "checks": checks, "learned": learned,
          "sft_gap_to_demonstrator": sft_gap, "defence_gain_over_sft": defence}


def _short(m: dict) -> str:
  """An interval record as ``"mean [low, high]"``."""
  return f"{m['mean']:.2f} [{m['low']:.2f}, {m['high']:.2f}]"


def table(summary: dict) -> str:
  """Two Markdown tables: each defender's payoff against the attackers (mean [95%
  interval] over seeds) and its worst case; and the red team trained against it: its
  wins by kind and its time to break."""
  names = [a for a in summary["attackers"] if not a.startswith(LINES)]
  cols = ["own red team", *names]
  out = ["| defender | " + " | ".join(f"vs {a}" for a in cols) + " | worst case | worst "
         "attacker (seed 0) |", "|---" * (len(cols) + 3) + "|"]
  for name, d in summary["defenders"].items():
    cells = [d["payoff"][name]] + [d["payoff"][a] for a in names]
    out.append(f"| {name} | " + " | ".join(map(_short, cells))
               + f" | {common.cell(d['worst_case'])} | {d['worst_attacker'][0]} |")
  out += ["", "| defender | red team wins | " + " | ".join(k.replace("_", " ") for k in WINS)
          + " | best fixed attacker's harmful compliance | time to break (iterations) |",
          "|---" * (len(WINS) + 4) + "|"]
  for line in LINES:
    for ttb in summary["time_to_break"][line]:
      name = f"{line} r{ttb['round']}"
      wins = summary["defenders"][name]["wins"]
      best = max(summary["scripted"], key=lambda a: wins[a]["harmful_compliance"]["mean"])
      out.append(f"| {name} | {_short(wins[name]['success'])} | "
                 + " | ".join(_short(wins[name][k]) for k in WINS)
                 + f" | {_short(wins[best]['harmful_compliance'])} ({best}) | "
                 f"{_short(ttb)}, {ttb['unbroken']} unbroken |")
  return "\n".join(out)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the tables, the rule and its figures, and the plots."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  v, d = summary["verdict"], summary["differences"]
  found, raised = v["checks"].values()  # Checks (a) and (b), in the rule's order.
  out = [
      f"{summary['num_seeds']} seeds per line, {summary['eval_games']} games per pairing of "
      "a defender and an attacker of its seed. *<line> r<r>*: as a defender, the line's "
      "defender after round r (r0: the SFT keyword filter, shared by both lines); as an "
      "attacker, the red team trained against it (*own red team*: a defender's own). "
      "Payoffs are player two's (+1 a defence, "
      "-1 a win of player one); compliance is scored as \"did not refuse\". Mean [95% "
      "t-interval] over seeds; the worst case also ± sample std. Held out: "
      f"{', '.join(summary['held_out'])} (disguises no stage trains with).", "",
      table(summary), "",
      "Time to break: attacker updates until a trailing mean of its games' success reaches "
      "0.5 (a seed never there counts the budget of "
      f"{summary['attack_iterations']}, so the interval is then a lower bound).", "",
      "Demonstrator (keyword filter mix) payoff: " + ", ".join(
          f"vs {a} {p:.3f}" for a, p in summary["demonstrator"].items()) + ".", "",
      "Rule (fixed before the run, with " + ", ".join(
          f"{k} {x:g}" for k, x in summary["verdict_settings"].items())
      + f"): {summary['rule']}", "",
      "| paired difference | mean ± std [95%] | check |", "|---|---|---|",
      f"| (a) harmful compliance, red team − best fixed attacker, vs the final scripted_only "
      f"defender | {common.cell(d['harmful_red_team_minus_best_fixed'])} | "
      f"{common.holds(found)} |",
      f"| (b) final worst case, adversarial − scripted_only | "
      f"{common.cell(d['worst_case_adversarial_minus_scripted_only'])} | "
      f"{common.holds(raised)} |",
      "| wins of every kind, red team − best fixed attacker, vs the final scripted_only "
      f"defender | {common.cell(d['success_red_team_minus_best_fixed'])} | reported |",
      f"| round-0 red team − SFT attacker, success vs the SFT defender | "
      f"{common.cell(d['success_red_team_minus_sft_attacker'])} | learned check |", "",
      "Learned checks: " + "; ".join(f"{k}: {common.holds(x)}" for k, x in v["learned"].items())
      + " (SFT gap to the demonstrator " + ", ".join(
          f"{a} {x:.3f}" for a, x in v["sft_gap_to_demonstrator"].items())
      + "; defence gain over SFT " + ", ".join(
          f"{line} {x:+.3f}" for line, x in v["defence_gain_over_sft"].items()) + ").", "",
      f"Claim 5 by this rule: **{v['outcome']}**."]

  rounds = [t["round"] for t in summary["time_to_break"][LINES[0]]]
  fig = Figure(figsize=(11, 3.6))
  axes = fig.subplots(1, len(LINES) + 1)
  for ax, line in zip(axes, LINES):  # The own red team's wins by kind, stacked.
    bottom = np.zeros(len(rounds))
    for kind in WINS:
      m = np.array([summary["defenders"][f"{line} r{r}"]["wins"][f"{line} r{r}"][kind]["mean"]
                    for r in rounds])
      ax.bar(rounds, m, 0.6, bottom=bottom, label=kind.replace("_", " "))
      bottom += m
    best = [max(summary["defenders"][f"{line} r{r}"]["wins"][a]["harmful_compliance"]["mean"]
                for a in summary["scripted"]) for r in rounds]
    ax.plot(rounds, best, "k_", ms=20, mew=2, label="best fixed attacker, harmful")
    ax.set(xlabel="round", ylabel="share of games player one wins", ylim=(0, 1),
           title=f"{line}: own red team's wins", xticks=rounds)
    ax.legend(fontsize=7)
  ax = axes[-1]
  for line, marker in zip(LINES, "os"):
    m, err = common.error_bars(summary["time_to_break"][line])
    ax.errorbar(np.array(rounds) + (0.1 if marker == "s" else -0.1), m, yerr=err,
                marker=marker, capsize=3, ls="", label=line)
  ax.set(xlabel="round", ylabel="attacker updates", ylim=(0, summary["attack_iterations"]),
         title="time to break (50% success)", xticks=rounds)
  ax.legend(fontsize=7)
  fig.suptitle("Red teams against the defenders they trained against: mean (bars) and 95% "
               "t-interval over seeds")
  fig.tight_layout()
  out += ["", f"![Red team wins by kind and time to break per round]({save(fig, 'rounds')})"]

  fig = Figure(figsize=(5, 3.6))
  ax = fig.subplots()
  for line, marker in zip(LINES, "os"):
    m, err = common.error_bars([summary["defenders"][f"{line} r{r}"]["worst_case"]
                                for r in rounds])
    ax.errorbar(rounds, m, yerr=err, marker=marker, capsize=3, label=line)
  ax.set(xlabel="round", ylabel="defender payoff, worst attacker", ylim=(-1.05, 1.05),
         title="worst case over every attacker (cross-play)", xticks=rounds)
  ax.legend(fontsize=7)
  fig.tight_layout()
  out += ["", f"![Worst case per round]({save(fig, 'worst_case')})"]

  names = summary["attackers"]
  defenders = list(summary["defenders"])
  fig = Figure(figsize=(11, 4.2))
  for ax, kind in zip(fig.subplots(1, 2), ("success", "harmful_compliance")):
    grid = np.array([[summary["defenders"][dn]["wins"][a][kind]["mean"] for a in names]
                     for dn in defenders])
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="magma")
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    ax.set_yticks(range(len(defenders)), defenders, fontsize=7)
    ax.set(xlabel="attacker", ylabel="defender", title=kind.replace("_", " ") + " rate")
    fig.colorbar(image, ax=ax, fraction=0.046)
  fig.suptitle("Cross-play: every defender against every attacker of its seed, mean over seeds")
  fig.tight_layout()
  out += ["", f"![Cross-play]({save(fig, 'crossplay')})"]

  c = summary["curves"]
  fig = Figure(figsize=(3 * len(rounds), 6.4))
  grid = fig.subplots(2, len(rounds), squeeze=False)
  for kind, row, label, ylim in (("attack", 0, "red team success rate", (0, 1)),
                                 ("defend", 1, "defender payoff", (-1.05, 1.05))):
    for j, r in enumerate(rounds):
      ax = grid[row, j]
      for line in LINES:
        for curve in c[kind][line]:
          if curve["round"] == r:
            ax.plot(curve["step"], curve["band"]["mean"], label=line)
            ax.fill_between(curve["step"], curve["band"]["low"], curve["band"]["high"],
                            alpha=0.2)
      if kind == "attack":
        ax.axhline(0.5, color="grey", ls=":")
      ax.set(xlabel="iteration", ylabel=label, ylim=ylim, title=f"{kind}_r{r}")
      if ax.lines:
        ax.legend(fontsize=7)
      else:
        ax.set_visible(False)  # Round 0 trains no defender.
  fig.suptitle("Training curves: trailing mean over a window of records, 95% t-band over seeds")
  fig.tight_layout()
  out += ["", f"![Training curves]({save(fig, 'curves')})", ""]

  for title, games_ in summary["transcripts"].items():
    out += [f"Sampled games, {title}:", "", "```", "\n\n".join(games_), "```", ""]
  return "\n".join(out)


if __name__ == "__main__":
  launch.run(main)
