"""Stages of training as values: what a runner needs to train one stage of an experiment.

A ``Stage`` holds, for ``num_seeds`` seeds trained side by side (their states stacked on
a leading seed axis ``[S, ...]``), how to make the initial states, the pure update, its
batches, its number of steps and its tokens per step. ``train.runner.Runner`` runs any
stage: it places the seeds and games on the devices, resumes, checkpoints, logs and stops
cleanly on preemption. The builders below make the stages of the training pipeline
straight from a config block, every field of it a setting (unknown fields are errors)::

  sft = stages.imitation("sft", model, c.sft, source, seed=0, num_seeds=3, seq_len=32,
                         start=pretrained_params)
  rlhf = stages.policy("rlhf", game, model, c.rl, human, seed=2, num_seeds=3,
                       start=sft_params, fixed=train.Frozen(reference=sft_params))

A block holds the stage's length (``steps``, or ``iterations`` for policy learning),
``batch_size`` for the stages that read a dataset, the optimiser's settings
(``train.optimizer``: ``learning_rate``, ``warmup_steps``, ``clip_norm``,
``weight_decay``, ``b2``) and, for policy learning, every field of ``RLSettings``.
"""

import dataclasses
import inspect
from typing import Any, Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from twoplayer_jax import game as game_lib
from twoplayer_jax import players as players_lib
from twoplayer_jax.data import pipeline, sources
from twoplayer_jax.models import hf
from twoplayer_jax.models.interface import Model
from twoplayer_jax.train.loop import Health
from twoplayer_jax.train.rl import Frozen, RLSettings, make_iteration
from twoplayer_jax.train.state import TrainState, create, optimizer
from twoplayer_jax.train.steps import imitation_step, reward_model_step

_OPTIMIZER = tuple(inspect.signature(optimizer).parameters)[2:] + ("learning_rate",)


@dataclasses.dataclass(frozen=True)
class Stage:
  """One stage, seeds stacked ``[S, ...]``.

  Attributes:
    name: the stage's name, its directory in the workdir.
    init: ``start -> states``, the states at step 0 (any pytree whose leaves all have the
      seed axis first, with ``.step [S]`` and ``.params``, which the health checks read).
    update: ``(states, batch) -> (states, metrics)``: every seed's update (e.g.
      ``over_seeds(step)``); the runner jits it, donating the states.
    num_steps: updates in the stage.
    tokens_per_step: tokens one seed trains on per update (for tokens/s and the record).
    games_per_step: games (rows) of one seed's batch, split over the devices; 0 when the
      batch has no game axis.
    start: the arrays ``init`` starts from (e.g. an earlier stage's parameters), or None.
    batches: ``() -> iterator`` of host batches ``[S, B, ...]`` with ``get_state`` and
      ``set_state``; None to pass ``fixed`` at every step.
    fixed: the batch of every step when ``batches`` is None (e.g. an RL iteration's
      ``Frozen``: its reference policy and reward model), leaves ``[S, ...]``.
    logical_axes: one seed's parameters' logical axis names (``model.logical_axes()``)
      to split them over the mesh's ``fsdp`` and ``tensor`` axes; None: replicated.
    health: when the run stops besides a non-finite loss (``loop.Health``).
  """
  name: str
  init: Callable[[Any], Any]
  update: Callable[[Any, Any], tuple[Any, dict]]
  num_steps: int
  tokens_per_step: int
  games_per_step: int = 0
  start: Any = None
  batches: Callable[[], Iterator] | None = None
  fixed: Any = None
  logical_axes: Any = None
  health: Health = Health()


def split_block(block: Mapping[str, Any], known: tuple[str, ...], where: str
                ) -> dict[str, Any]:
  """``block`` as a dict, checked to hold only ``known`` fields.

  Raises:
    ValueError: naming the first unknown field and the known ones.
  """
  block = dict(block)
  unknown = sorted(set(block) - set(known))
  if unknown:
    raise ValueError(f"{where}: unknown field {unknown[0]!r}; the fields are "
                     f"{sorted(known)}")
  return block


_DATA_BLOCK = ("steps", "batch_size")


def check(kind: str, block: Mapping[str, Any], where: str, **overrides) -> None:
  """Checks, before anything runs, that ``block`` makes a stage of ``kind``
  ("imitation", "reward_model" or "policy", with ``overrides`` of ``RLSettings``).

  Raises:
    ValueError: naming ``where`` (e.g. ``config.rl``) and the field: unknown, missing or
      a bad setting.
  """
  needed = _DATA_BLOCK if kind in ("imitation", "reward_model") else ("iterations",)
  missing = [k for k in needed + ("learning_rate",) if k not in block]
  if missing:
    raise ValueError(f"{where}: missing field {missing[0]!r}")
  if kind != "policy":
    split_block(block, _DATA_BLOCK + _OPTIMIZER, where)
    return
  try:
    rl_settings(block, where, **overrides)
  except ValueError as e:  # RLSettings' own checks name the dataclass, not the block.
    raise ValueError(str(e) if str(e).startswith(where) else f"{where}: {e}") from None


def optimizer_of(block: Mapping[str, Any], total_steps: int) -> optax.GradientTransformation:
  """``train.optimizer`` from the optimiser fields of ``block``."""
  return optimizer(total_steps=total_steps, **{k: v for k, v in block.items()
                                               if k in _OPTIMIZER})


def over_seeds(update: Callable, per_seed: tuple[str, ...] = ()) -> Callable:
  """One seed's ``update(state, batch)`` vmapped over stacked states and batches
  ``[S, ...]``; metrics averaged over the seeds, those named in ``per_seed`` also kept
  for each seed (``<name>_seed<i>``, e.g. for per-seed curves)."""

  def step(states, batches):
    states, metrics = jax.vmap(update)(states, batches)
    out = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
    out.update({f"{k}_seed{i}": metrics[k][i] for k in per_seed
                for i in range(metrics[k].shape[0])})
    return states, out

  return step


def fresh_states(model: Model, tx: optax.GradientTransformation, seed: int, num_seeds: int
                 ) -> Callable[[Any], TrainState]:
  """``start -> [S, ...]`` train states: fresh parameters from ``seed``'s keys when
  ``start`` is None, else ``start`` (already stacked ``[S, ...]``)."""

  def init(start):
    keys = jax.random.split(jax.random.key(seed), num_seeds)

    def one(key, params):
      params = model.init(key) if params is None else params
      return create(params, tx, jax.random.fold_in(key, 1))

    return jax.vmap(one, in_axes=(0, None if start is None else 0))(keys, start)

  return init


def pretrained_start(model: Model, num_seeds: int) -> Any:
  """``[S, ...]`` the parameters of ``model``'s checkpoint (a ``DecoderConfig`` with
  ``checkpoint``) for each seed, or None when it has none (fresh parameters)."""
  directory = getattr(model.config, "checkpoint", None)
  if directory is None:
    return None
  params = hf.load(directory, model.config)
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_seeds,) + x.shape), params)


def transplant(target: Any, source: Any) -> Any:
  """``target`` with every leaf that ``source`` has at the same path and shape replaced
  by ``source``'s: e.g. a reward model started from a policy's transformer, its scalar
  head fresh."""
  found = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(source)}

  def pick(path, leaf):
    other = found.get(jax.tree_util.keystr(path))
    return other if other is not None and other.shape == leaf.shape else leaf

  return jax.tree_util.tree_map_with_path(pick, target)


class PerSeed:
  """Host batches ``[S * B, ...]`` of a data iterator (any pytree, e.g. ``batches.Turns``)
  as ``[S, B, ...]``: each seed its own examples."""

  def __init__(self, batches: Iterator, num_seeds: int):
    self.batches, self.num_seeds = batches, num_seeds

  def __iter__(self):
    return self

  def __next__(self) -> Any:
    return jax.tree.map(lambda x: np.reshape(x, (self.num_seeds, -1) + np.shape(x)[1:]),
                        next(self.batches))

  def get_state(self):
    return self.batches.get_state()

  def set_state(self, state) -> None:
    self.batches.set_state(state)


def imitation(name: str, model: Model, block: Mapping[str, Any], source: Any, *, seed: int,
              num_seeds: int, seq_len: int, roles: tuple[int, ...] = (2,),
              opening_loss: bool = False, start: Any = None) -> Stage:
  """Behaviour cloning of the tokens of ``roles`` (pre-training, SFT).

  Args:
    name: the stage's name.
    model: the policy's transformer.
    block: ``steps``, ``batch_size`` (rows per seed and step: games, or packed rows of
      several) and optimiser fields.
    source: the games: a ``game_transcripts`` source (``sources.Source``, streamed by
      ``pipeline.turns``), games held in memory (``pipeline.InMemory``, served by
      ``pipeline.in_memory``), or an iterator of this process's host batches
      ``batches.Turns`` ``[N, seq_len]`` (with ``get_state``/``set_state``), ``N`` being
      ``batch_size * num_seeds`` over the number of processes. Each process reads its
      share.
    seed: PRNG seed of fresh parameters and of the data order.
    num_seeds: seeds trained side by side.
    seq_len: tokens per row.
    roles, opening_loss: whose tokens a streamed source clones (``pipeline.turns``);
      an ``InMemory`` holds its own.
    start: stacked ``[S, ...]`` parameters to start from; None: the model's checkpoint's
      (``pretrained_start``), else fresh ones.
  """
  block = split_block(block, _DATA_BLOCK + _OPTIMIZER, f"stage {name}")
  steps, batch_size = block["steps"], block["batch_size"]
  tx = optimizer_of(block, steps)
  if isinstance(source, pipeline.InMemory) and source.seq_len != seq_len:
    raise ValueError(f"stage {name}: seq_len={seq_len}, but the games in memory are held "
                     f"in rows of {source.seq_len} tokens")

  def batches():
    rows = num_seeds * batch_size // jax.process_count()  # This process's share.
    if isinstance(source, sources.Source):
      ds = pipeline.turns(source, batch_size=rows, seq_len=seq_len, seed=seed,
                          roles=tuple(roles), opening_loss=opening_loss)
    elif isinstance(source, pipeline.InMemory):
      ds = pipeline.in_memory(source, batch_size=rows, seed=seed)
    else:
      ds = source
    return PerSeed(iter(ds), num_seeds)

  if start is None:
    start = pretrained_start(model, num_seeds)
  return Stage(name, fresh_states(model, tx, seed, num_seeds),
               over_seeds(imitation_step(model, tx)), steps, batch_size * seq_len,
               batch_size, start, batches, logical_axes=model.logical_axes())


def reward_model(name: str, scorer: Model, block: Mapping[str, Any], source: sources.Source,
                 *, seed: int, num_seeds: int, seq_len: int, start: Any = None) -> Stage:
  """A Bradley-Terry reward model on ``game_preferences`` pairs.

  Args:
    scorer: a ``scalar_head`` transformer.
    block: ``steps``, ``batch_size`` (pairs per seed and step) and optimiser fields.
    start: stacked ``[S, ...]`` parameters whose leaves of the scorer's paths and shapes
      it starts from (e.g. a policy's transformer; the scalar head fresh); None: the
      model's checkpoint's, else fresh.
  """
  block = split_block(block, _DATA_BLOCK + _OPTIMIZER, f"stage {name}")
  steps, batch_size = block["steps"], block["batch_size"]
  tx = optimizer_of(block, steps)
  fresh = fresh_states(scorer, tx, seed, num_seeds)
  if start is None:
    start = pretrained_start(scorer, num_seeds)

  def init(start):
    if start is None:
      return fresh(None)
    keys = jax.random.split(jax.random.key(seed + 1), num_seeds)
    return fresh(transplant(jax.vmap(scorer.init)(keys), start))

  def batches():
    it = iter(pipeline.preferences(
        source, batch_size=num_seeds * batch_size // jax.process_count(), seq_len=seq_len,
        seed=seed))
    return PerSeed(it, num_seeds)

  return Stage(name, init, over_seeds(reward_model_step(scorer, tx)), steps,
               2 * batch_size * seq_len, batch_size, start, batches,
               logical_axes=scorer.logical_axes())


_RL_SETTINGS = tuple(f.name for f in dataclasses.fields(RLSettings))


def rl_settings(block: Mapping[str, Any], where: str, **overrides) -> RLSettings:
  """The ``RLSettings`` of a config block (its other fields: ``iterations`` and the
  optimiser's), with ``overrides`` (fields an experiment fixes, e.g. ``role``)."""
  block = {**split_block(block, ("iterations",) + _RL_SETTINGS + _OPTIMIZER, where),
           **overrides}
  return RLSettings(**{k: v for k, v in block.items() if k in _RL_SETTINGS})


def rl_optimizer(block: Mapping[str, Any]) -> optax.GradientTransformation:
  """A policy-learning block's optimiser, over all its gradient steps (iterations x
  epochs x minibatches)."""
  settings = rl_settings(block, "rl")
  return optimizer_of(block, block["iterations"] * settings.epochs * settings.minibatches)


def policy(name: str, game: game_lib.Game, model: Model, block: Mapping[str, Any],
           opponent: players_lib.Player | None, *, seed: int, num_seeds: int,
           start: Any = None, fixed: Frozen = Frozen(), reward_model: Model | None = None,
           games_sharding: jax.sharding.Sharding | None = None,
           per_seed_metrics: tuple[str, ...] = (), **overrides) -> Stage:
  """Policy learning (``train.make_iteration``) for ``block["iterations"]`` iterations.

  Args:
    game: the game.
    model: the learner's transformer.
    block: ``iterations``, ``RLSettings`` fields and optimiser fields.
    opponent: the fixed player of the other seat (``play="opponent"``), else None.
    seed: PRNG seed of fresh parameters and of play.
    num_seeds: seeds trained side by side.
    start: stacked ``[S, ...]`` parameters to start from; None: the model's checkpoint's
      (``pretrained_start``), else fresh ones.
    fixed: the iteration's fixed parameters (reference, reward model, population), leaves
      ``[S, ...]``.
    reward_model: the reward model's transformer, when the block's ``reward_source``
      reads one.
    games_sharding: where the iteration's games go (``Runner.games_sharding``).
    per_seed_metrics: metrics also logged per seed (``over_seeds``' ``per_seed``).
    **overrides: ``RLSettings`` fields the experiment sets (e.g. ``role``).
  """
  settings = rl_settings(block, f"stage {name}", **overrides)
  tx = rl_optimizer(block)
  iteration = make_iteration(game, model, tx, opponent, settings, reward_model=reward_model,
                             games_sharding=games_sharding)
  games = settings.num_openings * settings.group_size
  if start is None:
    start = pretrained_start(model, num_seeds)
  return Stage(name, fresh_states(model, tx, seed, num_seeds),
               over_seeds(iteration, per_seed_metrics), block["iterations"],
               games * game.max_length, games, start, fixed=fixed,
               logical_axes=model.logical_axes(),
               health=Health(zero_grad_steps=0))  # Groups may all score alike.
