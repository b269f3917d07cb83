"""Both seats learn: naive, fictitious and regularised self-play, measured by cross-play.

  python -m experiments.self_play --config configs/self_play.py --workdir workdirs/self_play

On a zero-sum game (red_team), a general-sum one (bargaining, each seat reading its own
values) and a cooperative one (twenty_questions, player one reading its secret), one
transformer per method plays both seats, telling them apart from its view. Stages per
game, ``num_seeds`` seeds side by side (vmapped):

  clone      behaviour cloning of both seats of the scripted teachers' games, played in
             memory at every step (the start of every method, and mmd's magnet);
  self_play  naive self-play: one policy in both seats learns from both seats' tokens;
  fsp        fictitious self-play: the learner, seats taking turns, against a member
             drawn uniformly from its own snapshots so far;
  mmd        magnetic mirror descent: self-play with a KL to the clone.

The methods have equal iterations and games. Each keeps its learner every
``snapshot_every`` iterations (its start first). At the end, per seed:

  cross-play    every final policy (the clone too) against every other, in both seats,
                and against each of the game's scripted players; the worst case over
                them;
  checkpoints   each method's snapshots against each other: the final policy's payoff
                against its earlier selves and, in the zero-sum game, the cycling index
                (the mean over pairs, earlier before later, of the earlier one's
                positive margin over the later, both seat assignments averaged: 0 when
                no later policy loses to an earlier one);
  self-play     each final policy against itself: payoffs; bargaining's share of deals,
                share of Pareto-optimal outcomes, welfare and Nash bargaining product
                (``bargaining.deal_measures``); twenty questions' share solved; drift:
                each seat's KL from the clone (nats per game, on the policy's own games)
                and its share of well-formed turns.

The summary holds these with 95% t-intervals over seeds, sampled games and the verdict of
the rule fixed in the config (``verdict``).
"""

import functools
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common, launch
from twoplayer_jax import games, models, objectives, players, rollout, train, vocab
from twoplayer_jax.games import bargaining
from twoplayer_jax.gametheory import matrix
from twoplayer_jax.train import stages

METHODS = ("self_play", "fsp", "mmd")
KINDS = {"red_team": "zero-sum", "bargaining": "general-sum", "twenty_questions": "cooperative"}
SEATS = ("one", "two")


class Run(NamedTuple):
  """A stage's state, seeds stacked ``[S, ...]``: the learners, the fixed inputs of their
  iteration (mmd's magnet) and the snapshots ``[S, N, ...]`` (None for the clone)."""
  train: train.TrainState
  fixed: train.Frozen
  snapshots: Any = None

  @property
  def step(self) -> jax.Array:
    return self.train.step

  @property
  def params(self) -> Any:  # The learners' (what the runner's health checks read).
    return self.train.params


class Arena(NamedTuple):
  """A game with what every stage of it needs."""
  name: str
  game: Any
  model: Any
  seats: tuple  # The model players of seat one and two.
  teachers: tuple  # The scripted players the clone imitates, seat one's and two's.
  scripted: tuple  # ((seat, name), player): every registered scripted player of each seat.


def arena(name: str, c) -> Arena:
  """Game ``name`` with its settings from the config, the model and the players."""
  g = c[name]
  game = games.make(name, **g.settings)
  model = models.make(models.TransformerConfig(
      **c.model, max_length=game.private_length + game.max_length))
  seats = tuple(players.model_player(model, game, seat=seat) for seat in (1, 2))
  teachers = tuple(games.player(name, seat, g.teachers[seat - 1], game,
                                **g.teacher_settings[seat - 1]) for seat in (1, 2))
  entry = games.REGISTRY[name]
  scripted = tuple(((seat, n), games.player(name, seat, n, game))
                   for seat, names in ((1, entry.player_one), (2, entry.player_two))
                   for n in names)
  return Arena(name, game, model, seats, teachers, scripted)


def num_snapshots(c) -> int:
  return c.rl.iterations // c.snapshot_every + 1


def rl_step(a: Arena, c, method: str, tx, games_sharding=None):
  """One iteration of ``method`` on stacked seeds, the learner then snapshotted every
  ``snapshot_every`` iterations."""
  make = lambda **kw: jax.vmap(train.make_iteration(
      a.game, a.model, tx, None, stages.rl_settings(c.rl, "config.rl", **kw),
      games_sharding=games_sharding))
  n = num_snapshots(c)
  if method == "fsp":
    taking_turns = common.taking_turns(make(play="population", role=1),
                                       make(play="population", role=2))

    def learn(state, run):  # The population: the snapshots filled so far, uniformly.
      filled = jnp.arange(n) <= state.step[0] // c.snapshot_every
      meta = jnp.broadcast_to(filled / jnp.sum(filled), (state.step.shape[0], n))
      return taking_turns(state, run.fixed._replace(opponent=run.snapshots,
                                                    meta_strategy=meta))
  else:
    kl = c.mmd.kl_coef if method == "mmd" else 0.0
    iteration = make(play="self_play", kl_coef=kl)
    learn = lambda state, run: iteration(state, run.fixed)

  def snapshot(run: Run) -> Run:
    slot = run.step[0] // c.snapshot_every
    return run._replace(snapshots=jax.tree.map(lambda buf, p: buf.at[:, slot].set(p),
                                               run.snapshots, run.train.params))

  def step(run: Run, _):
    state, metrics = learn(run.train, run)
    run = run._replace(train=state)
    run = jax.lax.cond(run.step[0] % c.snapshot_every == 0, snapshot, lambda run: run, run)
    return run, common.mean_over_seeds(metrics)

  return step


def initial_run(c, method: str, tx, clone) -> Run:
  """``method``'s run at step 0 from the clone's parameters ``[S, ...]``: every snapshot
  slot holds them (slot 0 is the start)."""
  keys = jax.random.split(jax.random.key(c.seed + 1), c.num_seeds)
  state = jax.vmap(lambda q, k: train.create(q, tx, k))(clone, keys)
  n = num_snapshots(c)
  snapshots = jax.tree.map(lambda x: jnp.repeat(x[:, None], n, axis=1), clone)
  return Run(state, train.Frozen(reference=clone if method == "mmd" else None), snapshots)


# Evaluation: jitted once per game and shapes; params stacked [S, M, ...] (M policies).

@functools.partial(jax.jit, static_argnames=("a", "num_games"))
def cross_play(a: Arena, policies, key, num_games: int) -> jax.Array:
  """``[S, M, M, 2]`` mean payoffs of policy i in seat one against j in seat two."""
  return jax.vmap(lambda q: matrix.cross_play(a.game, a.seats, q, q, key, num_games))(policies)


@functools.partial(jax.jit, static_argnames=("a", "num_games"))
def against_scripted(a: Arena, policies, key, num_games: int) -> dict:
  """``{(seat, name): [S, M, 2]}`` mean payoffs of each policy in the other seat against
  each scripted player in ``seat``."""
  out = {}
  for (seat, name), player in a.scripted:
    if seat == 1:
      play = lambda q: rollout.play(a.game, (player, a.seats[1]), (None, q), key, num_games)
    else:
      play = lambda q: rollout.play(a.game, (a.seats[0], player), (q, None), key, num_games)
    out[(seat, name)] = jax.vmap(jax.vmap(lambda q: jnp.mean(play(q).returns, axis=0)))(policies)
  return out


@functools.partial(jax.jit, static_argnames=("a", "num_games"))
def self_play_games(a: Arena, policies, clone, key, num_games: int):
  """Each policy against itself: the ``Trajectory`` ``[S, M, num_games, ...]`` and each
  seat's KL from the clone ``[S, M, num_games, 2]`` (nats per game: the sum over the
  seat's tokens of the log-ratio of the policy's and the clone's probabilities)."""

  def per_policy(q, clone_q):
    traj = rollout.play(a.game, a.seats, (q, q), key, num_games)
    kl = []
    for seat in (1, 2):
      logits, _ = train.seat_forward(a.model, clone_q, a.game, traj.tokens, traj.hidden, seat)
      clone_logp = objectives.token_logprobs(logits, traj.tokens, traj.legal)
      mine = (traj.owner == seat) & traj.played
      kl.append(jnp.sum(jnp.where(mine, traj.logprob - clone_logp, 0.0), axis=1))
    return traj, jnp.stack(kl, axis=-1)

  return jax.vmap(jax.vmap(per_policy, in_axes=(0, None)))(policies, clone)


def turns(tokens: np.ndarray, owner: np.ndarray, start: int, end: int) -> list:
  """``[(seat, text bytes, closed)]`` the players' turns of one transcript, in order."""
  out, first = [], start
  for t in range(start, end):
    if tokens[t] == vocab.EOT or t + 1 == end or owner[t + 1] != owner[t]:
      closed = tokens[t] == vocab.EOT
      body = tokens[first:t] if closed else tokens[first:t + 1]
      out.append((int(owner[t]), vocab.to_bytes(body[body < 256]), bool(closed)))
      first = t + 1
  return out


def well_formed(a: Arena, turn: tuple, previous: bytes | None) -> bool:
  """Whether a turn is a move of its game's language (closed, and of the game's
  syntax; whether it is a good move is the payoff's business). ``previous``: the text of
  the turn before it (a red-team reply is a refusal or a copy of the request)."""
  seat, text, closed = turn
  if not closed:
    return False
  if a.name == "red_team":
    if seat == 1:
      return bool(re.fullmatch(rb"say:.{1,%d}" % a.game.max_request, text, re.S))
    request = previous[4:] if previous and previous.startswith(b"say:") else None
    return text == b"sorry" or text == request
  if a.name == "bargaining":
    offer = rb"offer:" + rb",".join([rb"\d"] * a.game.num_types)
    return bool(re.fullmatch(offer + rb"|accept", text))
  if a.name == "twenty_questions":
    return bool(re.fullmatch(rb"yes|no|\?" if seat == 1 else rb"[<=]\d+\??", text))
  raise ValueError(f"no well-formed turns are defined for game {a.name!r}")


def well_formed_share(a: Arena, traj) -> np.ndarray:
  """``[..., 2]`` each seat's share of well-formed turns per game of a host ``Trajectory``
  ``[..., G, T]`` (1 for a seat that wrote nothing)."""
  tokens, owner = traj.tokens.reshape(-1, traj.tokens.shape[-1]), traj.owner.reshape(
      -1, traj.owner.shape[-1])
  starts, ends = traj.opening_length.reshape(-1), traj.length.reshape(-1)
  out = np.ones((tokens.shape[0], 2))
  for g in range(tokens.shape[0]):
    seen = {1: [], 2: []}
    previous = None
    for turn in turns(tokens[g], owner[g], starts[g], ends[g]):
      if turn[0] in seen:
        seen[turn[0]].append(well_formed(a, turn, previous))
      previous = turn[1]
    for seat in (1, 2):
      if seen[seat]:
        out[g, seat - 1] = np.mean(seen[seat])
  return out.reshape(traj.tokens.shape[:-2] + (traj.tokens.shape[-2], 2)).mean(-2)


def cycling(payoff: np.ndarray) -> np.ndarray:
  """``[S]`` the cycling index of snapshot cross-play ``payoff [S, N, N, 2]`` of a
  zero-sum game: the mean over pairs i < j of max(0, A[i, j]), A[i, j] the payoff of
  snapshot i against j averaged over both seat assignments."""
  a = (payoff[..., 0] + np.swapaxes(payoff[..., 1], 1, 2)) / 2
  n = a.shape[1]
  earlier, later = np.triu_indices(n, k=1)
  return np.maximum(a[:, earlier, later], 0).mean(-1)


def against_earlier(payoff: np.ndarray) -> np.ndarray:
  """``[S]`` the final snapshot's payoff against the earlier ones (snapshot cross-play
  ``[S, N, N, 2]``), both seat assignments averaged."""
  final_one, final_two = payoff[:, -1, :-1, 0], payoff[:, :-1, -1, 1]
  return ((final_one + final_two) / 2).mean(-1)


def main(argv):
  del argv
  c, workdir = launch.CONFIG.value, launch.WORKDIR.value
  unknown = (set(c.methods) - set(METHODS)) | (set(c.games) - set(KINDS))
  if unknown or c.rl.iterations % c.snapshot_every:
    raise launch.ConfigError(
        f"methods must be among {METHODS} and games among {tuple(KINDS)} (unknown: "
        f"{sorted(unknown)}); rl.iterations ({c.rl.iterations}) must be a multiple of "
        f"snapshot_every ({c.snapshot_every})")
  try:
    stages.check("imitation", c.clone, "config.clone")
    stages.check("policy", c.rl, "config.rl", play="self_play")
  except ValueError as e:
    raise launch.ConfigError(str(e)) from None
  summary = {"num_seeds": c.num_seeds, "rule": c.rule, "iterations": c.rl.iterations,
             "clone_steps": c.clone.steps, "snapshot_every": c.snapshot_every,
             "methods": list(c.methods), "verdict_settings": c.verdict.to_dict(),
             "games": {}}
  with common.runner(c, workdir) as run:
    for name in c.games:
      summary["games"][name] = run_game(arena(name, c), c, run)
    summary["verdict"] = verdict(summary)
    common.write_summary(workdir, summary)
    print(table(summary))


def run_game(a: Arena, c, run) -> dict:
  """Every stage of one game (run by ``run``, the runner) and its assessment."""
  init = jax.jit(jax.vmap(a.model.init))(jax.random.split(jax.random.key(c.seed), c.num_seeds))
  s = c.clone
  tx = stages.optimizer_of(s, s.steps)
  step = common.clone_seats(a.game, a.model, a.teachers, tx, s.batch_size)
  name = f"{a.name}/clone"
  clone = run(stages.Stage(
      name, lambda start: Run(jax.vmap(lambda q, k: train.create(q, tx, k))(
          start, jax.random.split(jax.random.key(c.seed + 1), c.num_seeds)), train.Frozen()),
      step, s.steps, s.batch_size * a.game.max_length, start=init)).train.params
  seconds = {"clone": run.records[name]["seconds"]}
  r, tx = c.rl, stages.rl_optimizer(c.rl)
  finals, snapshots = [clone], {}
  for method in c.methods:
    name = f"{a.name}/{method}"
    states = run(stages.Stage(
        name, lambda start, method=method: initial_run(c, method, tx, start),
        rl_step(a, c, method, tx, run.games_sharding), r.iterations,
        r.num_openings * r.group_size * a.game.max_length, start=clone,
        health=stages.Health(zero_grad_steps=0)))
    finals.append(states.train.params)
    snapshots[method] = states.snapshots
    seconds[method] = run.records[name]["seconds"]
  return assess(a, c, ("clone", *c.methods), finals, snapshots, seconds)


def assess(a: Arena, c, names: tuple, finals: list, snapshots: dict, seconds: dict) -> dict:
  """The game's part of the summary: cross-play, checkpoints and self-play measures."""
  policies = jax.tree.map(lambda *x: jnp.stack(x, axis=1), *finals)  # [S, M, ...]
  key = jax.random.key(c.seed + 2)
  cross = np.asarray(cross_play(a, policies, key, c.eval_games))  # [S, M, M, 2]
  scripted = jax.device_get(against_scripted(a, policies, key, c.eval_games))
  traj, kl = jax.device_get(self_play_games(a, policies, finals[0], key, c.eval_games))
  formed = well_formed_share(a, traj)  # [S, M, 2]
  teachers = jax.device_get(rollout.play(a.game, a.teachers, (None, None), key,
                                         c.eval_games).returns).mean(0)
  out = {"kind": KINDS[a.name], "teachers_payoff": teachers.tolist(), "policies": {},
         "cross_play": {"rows": list(names), "mean": cross.mean(0).tolist()}}
  for m, policy in enumerate(names):
    p = {"seconds": seconds[policy]}
    returns = traj.returns[:, m]  # [S, G, 2]
    for i, seat in enumerate(SEATS):
      p[f"self_play_payoff_{seat}"] = common.interval(returns[..., i].mean(-1))
      p[f"kl_from_clone_{seat}"] = common.interval(kl[:, m, :, i].mean(-1))
      p[f"well_formed_{seat}"] = common.interval(formed[:, m, i])
    p["kl_from_clone"] = common.interval(kl[:, m].sum(-1).mean(-1))
    # Against every other policy and scripted player, the seats averaged where it
    # plays both: row m in seat one, column m in seat two.
    versus = {n: (cross[:, m, j, 0] + cross[:, j, m, 1]) / 2 for j, n in enumerate(names)}
    versus.update({f"{n} ({SEATS[seat - 1]})": v[:, m, 2 - seat]
                   for (seat, n), v in scripted.items()})
    p["versus"] = {n: common.interval(v) for n, v in versus.items()}
    p["worst_case"] = common.interval(np.min(np.stack(list(versus.values())), axis=0))
    if a.name == "bargaining":
      deals = jax.device_get(jax.vmap(jax.vmap(functools.partial(
          bargaining.deal_measures, a.game)))(
              jax.tree.map(lambda x: x[:, m], traj.hidden), traj.returns[:, m]))
      p["deal"] = common.interval((returns.sum(-1) > 0).mean(-1))
      for k in ("pareto_optimal", "welfare", "nash_product"):
        p[k] = common.interval(np.asarray(deals[k], np.float64).mean(-1))
    if a.name == "twenty_questions":
      p["solved"] = common.interval((returns[..., 1] > 0).mean(-1))
    if policy in snapshots:
      payoff = np.asarray(cross_play(a, snapshots[policy], key, c.snapshot_games))
      p["against_earlier"] = common.interval(against_earlier(payoff))
      if KINDS[a.name] == "zero-sum":
        p["cycling"] = common.interval(cycling(payoff))
    out["policies"][policy] = p
  out["transcripts"] = {
      policy: [vocab.render(traj.tokens[0, m, g], traj.owner[0, m, g], traj.length[0, m, g])
               for g in range(c.num_transcripts)] for m, policy in enumerate(names)}
  return out


def verdict(summary: dict) -> dict:
  """The config's rule applied to the summary: per part, "confirmed", "not confirmed" or
  "inconclusive", with the figures it compared."""
  tol = summary["verdict_settings"]["clone_tolerance"]
  cloned = {}
  for name, g in summary["games"].items():
    clone = g["policies"]["clone"]
    cloned[name] = all(abs(clone[f"self_play_payoff_{seat}"]["mean"] - g["teachers_payoff"][i])
                       <= tol for i, seat in enumerate(SEATS))
  in_distribution = bool(cloned) and all(cloned.values())

  def compare(high: dict, low: dict) -> str:  # Is `high` above `low` beyond the intervals?
    if not in_distribution:
      return "inconclusive"
    return "confirmed" if high["low"] > low["high"] else "not confirmed"

  out = {"clone_in_distribution": cloned}
  games_ = summary["games"]
  methods = set(summary["methods"])
  if "red_team" in games_ and {"self_play", "mmd"} <= methods:
    p = games_["red_team"]["policies"]
    out["cycling"] = {"outcome": compare(p["self_play"]["cycling"], p["mmd"]["cycling"]),
                      "self_play": p["self_play"]["cycling"], "mmd": p["mmd"]["cycling"]}
  else:
    out["cycling"] = {"outcome": "inconclusive", "why": "red_team, self_play or mmd not run"}
  if {"self_play", "mmd"} <= methods:
    drift = {name: compare(g["policies"]["self_play"]["kl_from_clone"],
                           g["policies"]["mmd"]["kl_from_clone"]) for name, g in games_.items()}
    outcomes = set(drift.values())
    out["drift"] = {"outcome": ("inconclusive" if "inconclusive" in outcomes else
                                "confirmed" if outcomes == {"confirmed"} else "not confirmed"),
                    "games": drift}
  else:
    out["drift"] = {"outcome": "inconclusive", "why": "self_play or mmd not run"}
  return out


def _cell(m: dict, digits: int = 3) -> str:
  return f"{m['mean']:.{digits}f} [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"


def table(summary: dict) -> str:
  """The final figures as a Markdown table: mean [95% interval] over seeds."""
  lines = ["| game | policy | payoff one | payoff two | worst case | vs earlier | cycling "
           "| KL from clone | well-formed one | well-formed two | wall s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  dash = lambda p, k: _cell(p[k]) if k in p else "—"
  for name, g in summary["games"].items():
    for policy, p in g["policies"].items():
      lines.append(
          f"| {name} | {policy} | {_cell(p['self_play_payoff_one'])} | "
          f"{_cell(p['self_play_payoff_two'])} | {_cell(p['worst_case'])} | "
          f"{dash(p, 'against_earlier')} | {dash(p, 'cycling')} | "
          f"{_cell(p['kl_from_clone'], 1)} | {_cell(p['well_formed_one'])} | "
          f"{_cell(p['well_formed_two'])} | {p['seconds']:.0f} |")
    lines.append(f"| {name} | *teachers* | {g['teachers_payoff'][0]:.3f} | "
                 f"{g['teachers_payoff'][1]:.3f} | — | — | — | — | — | — | — |")
  return "\n".join(lines)


def bargaining_table(g: dict) -> str:
  lines = ["| policy | deals | Pareto optimal | welfare | Nash product |", "|---|---|---|---|---|"]
  for policy, p in g["policies"].items():
    lines.append(f"| {policy} | {_cell(p['deal'])} | {_cell(p['pareto_optimal'])} | "
                 f"{_cell(p['welfare'])} | {_cell(p['nash_product'])} |")
  return "\n".join(lines)


def versus_table(g: dict) -> str:
  """Each policy's payoff (seats averaged where it plays both) against each opponent."""
  opponents = list(next(iter(g["policies"].values()))["versus"])
  lines = ["| policy | " + " | ".join(opponents) + " |", "|---" * (len(opponents) + 1) + "|"]
  for policy, p in g["policies"].items():
    lines.append(f"| {policy} | " + " | ".join(f"{p['versus'][o]['mean']:.3f}"
                                                for o in opponents) + " |")
  return "\n".join(lines)


def report(summary: dict, save) -> str:
  """The RESULTS.md section: the tables, the verdict and the figures."""
  from matplotlib.figure import Figure

  v = summary["verdict"]
  lines = [f"{summary['num_seeds']} seeds; mean [95% t-interval] over seeds of the final "
           f"policies after {summary['iterations']} RL iterations from the clone "
           f"({summary['clone_steps']} cloning steps). *Payoff one/two*: each seat's payoff in "
           "games of the policy against itself. *Worst case*: its lowest payoff against the "
           "other final policies (seats averaged) and the game's scripted players (in the "
           "seat they play). *Vs earlier*: the final policy against its own snapshots "
           f"(every {summary['snapshot_every']} iterations, the clone first). *Cycling* "
           "(zero-sum only): the mean over snapshot pairs, earlier before later, of the "
           "earlier one's positive margin. *KL from clone*: nats per game, both seats, on "
           "the policy's own games. *Well-formed*: the share of a seat's turns in the "
           "game's syntax.", "", table(summary), ""]
  for name, g in summary["games"].items():
    lines += [f"Payoff against each opponent, {name} ({g['kind']}; means over seeds):", "",
              versus_table(g), ""]
  if "bargaining" in summary["games"]:
    lines += ["Bargaining outcomes in self-play (deals: games that paid anyone; Pareto "
              "optimal: no split is better for one and no worse for the other; welfare and "
              "Nash product relative to the best split's):", "",
              bargaining_table(summary["games"]["bargaining"]), ""]
  lines += [f"Rule (fixed before the run): {summary['rule']}", ""]
  lines.append("- clones in distribution: " + ", ".join(
      f"{k} {'yes' if ok else 'no'}" for k, ok in v["clone_in_distribution"].items()))
  cyc = v["cycling"]
  lines.append(f"- cycling: **{cyc['outcome']}**" + (
      f" (self_play {_cell(cyc['self_play'])}, mmd {_cell(cyc['mmd'])})"
      if "self_play" in cyc else f" ({cyc['why']})"))
  drift = v["drift"]
  lines.append(f"- drift: **{drift['outcome']}**" + (
      " (" + ", ".join(f"{k}: {o}" for k, o in drift["games"].items()) + ")"
      if "games" in drift else f" ({drift['why']})"))

  names = list(summary["games"])
  quantities = [("kl_from_clone", "KL from the clone (nats per game)", names),
                ("worst_case", "worst-case payoff", names),
                ("cycling", "cycling index", [n for n in names if KINDS[n] == "zero-sum"]),
                ("nash_product", "Nash bargaining product", [n for n in names
                                                             if n == "bargaining"])]
  quantities = [q for q in quantities if q[2]]
  fig = Figure(figsize=(4 * len(quantities), 3.6))
  axes = np.atleast_1d(fig.subplots(1, len(quantities)))
  for ax, (key, label, shown) in zip(axes, quantities):
    x0, ticks, labels = 0, [], []
    for name in shown:  # One group of points per game, one point per policy.
      rows = [(pol, p[key]) for pol, p in summary["games"][name]["policies"].items() if key in p]
      x = x0 + np.arange(len(rows))
      mean = np.array([m["mean"] for _, m in rows])
      err = np.array([[m["mean"] - m["low"], m["high"] - m["mean"]] for _, m in rows]).T
      ax.errorbar(x, mean, yerr=err, fmt="o", label=name)
      ticks, labels, x0 = ticks + list(x), labels + [pol for pol, _ in rows], x0 + len(rows) + 1
    ax.set_xticks(ticks, labels, rotation=60, fontsize=7)
    ax.set(ylabel=label)
    ax.legend(fontsize=7)
  fig.suptitle("final policies: mean and 95% t-interval over seeds")
  fig.tight_layout()
  lines += ["", f"![Drift, worst case, cycling and bargaining]({save(fig, 'measures')})", ""]
  for name, g in summary["games"].items():
    lines += [f"Sampled self-play games, {name}:", ""]
    for policy, games_ in g["transcripts"].items():
      lines += [f"{policy}:", "", "```", "\n\n".join(games_), "```", ""]
  return "\n".join(lines)


if __name__ == "__main__":
  launch.run(main)
