"""What the experiments share: the runner set up from a config, datasets, play of
stacked seeds, cloning both seats of scripted games, and the summary's statistics.

Several seeds are trained side by side: their train states are stacked on a leading
seed axis ``[S, ...]`` and every update is ``jax.vmap``-ped over it inside one ``jit``
(``train.stages``). Each stage of an experiment runs in ``workdir/<stage>`` with its own
checkpoints and metrics (``train.runner``), so running an experiment again in its
workdir resumes the stage it stopped in and reuses the ones it finished.
"""

import contextlib
import dataclasses
import functools
import json
import os
import sys
from typing import Any, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from experiments import launch
from twoplayer_jax import files, models, objectives, rollout, sharding, train
from twoplayer_jax.data import build, configs, sources
from twoplayer_jax.train import runner as runner_lib


@contextlib.contextmanager
def runner(config, workdir: str, **settings) -> Iterator[runner_lib.Runner]:
  """The experiment's ``Runner`` for ``config`` in ``workdir``, which it locks and records
  the config in once the config's batches are known to fit the mesh; a preempted stage
  ends the block quietly (the process then exits 0). ``settings`` override the
  ``Runner`` settings the config holds (``log_every``, ``checkpoint_every``,
  ``sync_every``, ``keep_checkpoints`` as ``keep``)."""
  mesh = sharding.make_mesh(**config.get("mesh", {}))
  settings = {"log_every": config.get("log_every"), "sync_every": config.get("sync_every"),
              "checkpoint_every": config.checkpoint_every,
              "keep": config.get("keep_checkpoints"), **settings}
  run = runner_lib.Runner(workdir, mesh, config.get("num_seeds", 1),
                          **{k: v for k, v in settings.items() if v is not None})
  for where, games in _games_per_step(config, "config"):
    try:
      run.check_games(games, where)
    except ValueError as e:
      raise launch.ConfigError(str(e)) from None
  with launch.lock(workdir):
    launch.prepare_workdir(config, workdir)
    with run:
      yield run
    if launch.is_smoke() and jax.process_index() == 0:
      print("(a smoke run: too few steps, games and seeds for its numbers to mean anything; "
            "it checks that the experiment runs)")


def model(block, **overrides) -> models.Model:
  """The model of a config's ``model`` block (with ``overrides``, e.g. ``scalar_head``):
  the library's transformer of its sizes, or, when ``checkpoint`` names a Hugging Face
  directory, that Llama or Qwen2 model playing through its tokenizer, its sizes from the
  checkpoint and ``max_length``, ``dtype``, ``param_dtype`` and ``scalar_head`` from the
  block; every stage that would start from fresh parameters then starts from the
  checkpoint's (``stages.pretrained_start``).

  Raises:
    launch.ConfigError: the checkpoint cannot be read or played, naming why.
  """
  block = {**dict(block), **overrides}
  checkpoint, param_dtype = block.pop("checkpoint", ""), block.pop("param_dtype", "float32")
  if not checkpoint:
    if param_dtype != "float32":
      raise launch.ConfigError("config.model.param_dtype: the library's transformer keeps "
                               "float32 parameters; bfloat16 ones are for a checkpoint's")
    return models.make(models.TransformerConfig(**block))
  try:
    return models.make(models.from_checkpoint(
        checkpoint, max_length=block.get("max_length"), dtype=block.get("dtype", "float32"),
        param_dtype=param_dtype, scalar_head=block.get("scalar_head", False)))
  except (OSError, ValueError) as e:
    raise launch.ConfigError(f"config.model.checkpoint={checkpoint!r}: {e}") from None


def _games_per_step(config, prefix: str) -> Iterator[tuple[str, int]]:
  """``(field, games)`` of every block of ``config`` that sets a stage's games per seed
  and step: ``batch_size``, or ``num_openings * group_size`` of policy learning."""
  if "batch_size" in config:
    yield f"{prefix}.batch_size", config["batch_size"]
  if "num_openings" in config and "group_size" in config:
    yield f"{prefix}.num_openings * group_size", config["num_openings"] * config["group_size"]
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _games_per_step(value, f"{prefix}.{key}")


def dataset(kind: str, config: configs.GameConfig, data_dir: str, num_examples: int,
            seed: int = 0) -> sources.Source:
  """The train split of ``kind`` (``game_transcripts`` or ``game_preferences``) for
  ``config``, ``num_examples`` games from ``seed``, built first (by process 0) unless
  already built.

  It is stored as ``<config.name>_n<num_examples>_s<seed>``, so a smoke run's small
  dataset and a full run's live side by side in one ``data_dir``.
  """
  config = dataclasses.replace(config, name=f"{config.name}_n{num_examples}_s{seed}")
  if jax.process_index() == 0:  # Reuses a dataset built with these settings.
    build.build(kind, data_dir, num_examples=num_examples, seed=seed, config=config,
                progress=True)
  multihost_utils.sync_global_devices(f"built {config.name}")
  return sources.load(kind, "train", data_dir, config=config)


@functools.partial(jax.jit, static_argnames=("game", "players", "num_games"))
def play_seeds(game, players, params: tuple[Any, Any], key: jax.Array, num_games: int) -> Any:
  """Games of stacked players: ``params`` per seat, ``[S, ...]`` stacked or None (a
  scripted seat); returns a ``Trajectory`` of ``[S, num_games, ...]`` arrays, every
  seed playing the same openings. Compiled once per game, players and shapes."""
  axes = tuple(None if p is None else 0 for p in params)
  play = lambda p: rollout.play(game, players, p, key, num_games)
  return jax.vmap(play, in_axes=(axes,))(params)


def mean_over_seeds(metrics: dict) -> dict:
  return jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)


class Cloning(NamedTuple):
  """A cloning stage's state (``clone_seats`` reads and writes ``train``, ``[S, ...]``)."""
  train: train.TrainState

  @property
  def step(self) -> jax.Array:
    return self.train.step

  @property
  def params(self):
    return self.train.params


def clone_seats(game, model, teachers: tuple[Any, Any], tx, batch_size: int,
                seats: tuple[int, ...] = (1, 2)):
  """``step(run, _) -> (run, metrics)``: behaviour cloning of ``seats`` (each read from
  its own view) in ``teachers``' games (scripted players of seat one and two),
  ``batch_size`` of them played in memory at every step, on stacked seeds (``run.train``
  ``[S, ...]``)."""

  def update(state):
    rng, key = jax.random.split(state.rng)
    traj = rollout.play(game, teachers, (None, None), key, batch_size)

    def loss_fn(params):
      losses = []
      for seat in seats:
        logits, _ = train.seat_forward(model, params, game, traj.tokens, traj.hidden, seat)
        weights = objectives.imitation_weights(traj.tokens, traj.owner, traj.length, seat)
        losses.append(objectives.imitation_loss(logits, traj.tokens, weights))
      loss = sum(l for l, _ in losses) / len(seats)
      return loss, {"loss": loss, "accuracy": sum(m["accuracy"] for _, m in losses) / len(seats)}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    return train.apply_gradients(state, grads, tx, rng), metrics

  def step(run, _):
    state, metrics = jax.vmap(update)(run.train)
    return run._replace(train=state), mean_over_seeds(metrics)

  return step


def taking_turns(one, two):
  """Seat one's iteration at even steps, seat two's at odd ones (stacked seeds)."""
  return lambda state, fixed: jax.lax.cond(state.step[0] % 2 == 0, one, two, state, fixed)


def curve(workdir: str, stage: str, key: str) -> dict[str, list]:
  """``{"step": [...], key: [...]}`` of the metric ``key`` as stage ``stage`` logged it."""
  with open(os.path.join(workdir, stage, "metrics.jsonl")) as f:
    rows = [r for r in map(json.loads, f) if key in r]
  return {"step": [r["step"] for r in rows], key: [r[key] for r in rows]}


def seed_curves(workdir: str, stage: str, key: str, runs: int) -> dict:
  """``{"step": [T], "seeds": [runs][T]}``: the metric ``key`` as stage ``stage`` logged
  it for each of its ``runs`` stacked runs (``<key>_seed<i>``, ``over_seeds``' ``per_seed``)."""
  with open(os.path.join(workdir, stage, "metrics.jsonl")) as f:
    rows = [r for r in map(json.loads, f) if f"{key}_seed0" in r]
  return {"step": [r["step"] for r in rows],
          "seeds": [[r[f"{key}_seed{i}"] for r in rows] for i in range(runs)]}


def trailing(seeds, window: int) -> np.ndarray:
  """``[S, T]`` the trailing mean over ``window`` records of each row of ``seeds [S, T]``
  (over the records so far at the start)."""
  x = np.asarray(seeds, np.float64)
  count = np.minimum(np.arange(1, x.shape[1] + 1), window)
  total = np.cumsum(x, 1)
  return (total - np.pad(total, ((0, 0), (window, 0)))[:, :x.shape[1]]) / count


def first_reaching(values, steps, threshold: float, otherwise: int) -> list[int]:
  """Per row of ``values [S, T]``, the first of ``steps [T]`` whose value is at least
  ``threshold``; ``otherwise`` for a row that never reaches it."""
  steps = np.asarray(steps)
  return [int(steps[np.argmax(r)]) if r.any() else int(otherwise)
          for r in np.asarray(values) >= threshold]


def first_holding(values, steps, threshold: float, otherwise: int) -> list[int]:
  """Per row of ``values [S, T]``, the first of ``steps [T]`` from which every value to
  the row's end is at least ``threshold``; ``otherwise`` for a row that ends below it.
  Unlike ``first_reaching``, a noisy curve's passing excursion above the threshold does
  not count."""
  steps = np.asarray(steps)
  out = []
  for r in np.asarray(values) >= threshold:
    below = np.flatnonzero(~r)
    start = below[-1] + 1 if below.size else 0
    out.append(int(steps[start]) if start < r.size else int(otherwise))
  return out


def band(seeds, window: int) -> dict:
  """A curve's trailing mean over ``window`` records per seed, then the mean and 95%
  t-interval over seeds at each record: ``{"mean", "low", "high"}``, each ``[T]``.

  Args:
    seeds: ``[S, T]`` one value per seed and logged step.
  """
  smooth = trailing(seeds, window)
  stats = [interval(smooth[:, t]) for t in range(smooth.shape[1])]
  return {k: [s[k] for s in stats] for k in ("mean", "low", "high")}


def command() -> str:
  """The command line that runs this experiment, as ``experiments.report`` cites it."""
  module = os.path.splitext(os.path.relpath(sys.argv[0]))[0].replace(os.sep, ".")
  return " ".join(["python -m", module, *sys.argv[1:]])


def write_summary(workdir: str, summary: dict) -> None:
  """``workdir/summary.json`` (process 0), with the ``command`` that made it."""
  if jax.process_index() == 0:
    files.write_json(os.path.join(workdir, "summary.json"), {"command": command(), **summary},
                     indent=1)


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def interval(x) -> dict:
  """Mean, sample std (ddof 1) and the 95% t-interval of per-seed values ``[S]``."""
  x = np.asarray(x, np.float64)
  if len(x) < 2:
    raise ValueError(f"an interval needs at least 2 seeds, got {len(x)}")
  std = float(x.std(ddof=1))
  half = T975[min(len(x) - 1, len(T975)) - 1] * std / np.sqrt(len(x))  # Beyond 30: 30's.
  return {"mean": float(x.mean()), "std": std, "low": float(x.mean() - half),
          "high": float(x.mean() + half), "seeds": x.tolist()}


def difference(x, y) -> dict:
  """Mean of ``x`` minus mean of ``y``, per-seed values ``[S1]`` and ``[S2]`` of separate
  runs (unpaired), with the 95% Welch t-interval (its degrees of freedom rounded down)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if min(len(x), len(y)) < 2:
    raise ValueError(f"a difference needs at least 2 seeds a side, got {len(x)} and {len(y)}")
  vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
  df = ((vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)) if vx + vy > 0
        else len(x) + len(y) - 2)
  half = T975[min(max(int(df), 1), len(T975)) - 1] * float(np.sqrt(vx + vy))
  mean = float(x.mean() - y.mean())
  return {"mean": mean, "low": mean - half, "high": mean + half, "df": float(df)}


def error_bars(intervals: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
  """``interval`` records as matplotlib's ``(mean [N], yerr [2, N])``: each mean and the
  distances down to its interval's low end and up to its high end."""
  mean = np.array([m["mean"] for m in intervals])
  low, high = (np.array([m[k] for m in intervals]) for k in ("low", "high"))
  return mean, np.stack([mean - low, high - mean])


def holds(ok: bool) -> str:
  """A rule's check as the reports write it: "holds" or "fails"."""
  return "holds" if ok else "fails"


def cell(m: dict) -> str:
  """An ``interval`` record as ``"mean ± std [low, high]"``, three decimals."""
  return f"{m['mean']:.3f} ± {m['std']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def signed(m: dict) -> str:
  """A difference's ``interval`` or ``difference`` record as ``"+mean [+low, +high]"``."""
  return f"{m['mean']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}]"
