"""Exact game-theoretic measures logged while a policy learns, and mixtures of policies.

A policy of a small token game (Kuhn, Leduc poker) is measured exactly from its tables
(``strategy``, ``exploitability``): ``measure_tables`` gives the exploitability and
NashConv of the pair of tables and the traditional metric, the exact expected payoff
against fixed strategies (``payoff_vs_<name>``, averaged over the two seats).
``policy_measure`` reads the tables of a model playing both seats (one model reading
its seat from its private text, or two learners stacked ``[2, ...]``) and
``average_strategy`` the behaviour strategy of a mixture of policies (a population's
meta-strategy), so that it is measured as exactly as one policy.

``logged`` adds a measure to a policy-learning iteration every few iterations::

  from twoplayer_jax.gametheory import measure
  heuristic = gametheory.scripted_strategy(game, tree, kuhn_poker.STRATEGIES["heuristic"])
  policy = measure.policy_measure(model, tree, {"heuristic": heuristic})
  iteration = measure.logged(iteration, lambda state, fixed: policy(state.params),
                             every=10, total=num_iterations)
  # metrics: exploitability, nash_conv, payoff_vs_heuristic at steps 10, 20, ..., total

Everything is pure and jittable; the tree's arrays are constants of the computations.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from twoplayer_jax.gametheory.exploitability import evaluate, reach
from twoplayer_jax.gametheory.strategy import model_strategy, split
from twoplayer_jax.gametheory.tree import Tree
from twoplayer_jax.models.interface import Model

Tables = tuple[jax.Array, jax.Array]  # ([I_1, A], [I_2, A]): each seat's behaviour strategy.


def logged(iteration: Callable[[Any, Any], tuple[Any, dict]],
           measure: Callable[[Any, Any], dict], every: int, total: int | None = None
           ) -> Callable[[Any, Any], tuple[Any, dict]]:
  """``iteration`` with ``measure``'s scalars added to its metrics every ``every`` steps.

  The measure reads the state the iteration returns, so the metrics of the step a
  metrics writer records as ``n`` (``state.step`` after the iteration: ``n`` updates
  made) measure the policy after ``n`` updates. It runs (``lax.cond``) where that step is
  a multiple of ``every`` or equals ``total``; elsewhere its scalars are NaN, so a
  writer must record only those steps (write every ``every`` steps; ``train.loop.fit``
  also writes the last step, which ``total`` makes a measured one).

  States of seeds stacked ``[S, ...]`` (all at one step) may be passed to a vmapped
  iteration and a vmapped measure: the step is then checked once for all seeds and the
  measure runs only when due. Under ``jax.vmap`` the wrapped iteration stays correct but
  ``cond`` turns into ``select``, which measures at every step.

  Args:
    iteration: ``(state, fixed) -> (state, metrics)``; ``state.step`` counts updates
      (``[]``, or ``[S]`` all equal).
    measure: ``(state, fixed) -> {name: scalar}`` of the state after the iteration and
      the iteration's fixed inputs (e.g. a population's members and meta-strategy).
    every: measure every this many steps.
    total: the last step, measured too; None for none.

  Returns:
    The iteration, same signature, its metrics with the measure's added.
  """
  if every < 1:
    raise ValueError(f"every={every} must be at least 1")

  def measured(state, fixed):
    state, metrics = iteration(state, fixed)
    due = state.step % every == 0
    if total is not None:
      due |= state.step == total
    shapes = jax.eval_shape(measure, state, fixed)
    clash = set(shapes) & set(metrics)
    if clash:
      raise ValueError(f"the measure's {sorted(clash)} clash with the iteration's metrics")
    skipped = lambda state, fixed: jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype),
                                                shapes)
    return state, {**metrics, **jax.lax.cond(jnp.all(due), measure, skipped, state, fixed)}

  return measured


def payoff_against(tree: Tree, tables: Tables, fixed: Tables) -> jax.Array:
  """``[]`` the exact expected payoff of ``tables`` against the fixed strategy ``fixed``,
  averaged over the two seat assignments (the policy in seat one against the fixed seat
  two, and in seat two against the fixed seat one)."""
  as_one = evaluate(tree, tables[0], fixed[1]).values[0]
  as_two = evaluate(tree, fixed[0], tables[1]).values[1]
  return (as_one + as_two) / 2


def measure_tables(tree: Tree, tables: Tables, opponents: dict[str, Tables]
                   ) -> dict[str, jax.Array]:
  """The measures of a policy playing both seats with ``tables``.

  Args:
    tree: the game tree (``build_tree``).
    tables: ``([I_1, A], [I_2, A])`` the policy's behaviour strategy in each seat.
    opponents: fixed strategies by name (e.g. ``scripted_strategy`` of a heuristic).

  Returns:
    ``exploitability`` and ``nash_conv`` (``[]``, of the pair: the policy against itself
    in the other seat) and ``payoff_vs_<name>`` (``payoff_against``) of every opponent.
  """
  result = evaluate(tree, *tables)
  out = {"exploitability": result.exploitability, "nash_conv": result.nash_conv}
  for name, fixed in opponents.items():
    out[f"payoff_vs_{name}"] = payoff_against(tree, tables, fixed)
  return out


def seat_tables(model: Model, params: Any, tree: Tree, stacked: bool = False) -> Tables:
  """Each seat's table of a model playing both seats: one model reading its seat from
  its private text, or (``stacked``) two learners ``[2, ...]``, seat one's first."""
  if not stacked:
    return model_strategy(model, params, tree)
  one, _ = model_strategy(model, jax.tree.map(lambda x: x[0], params), tree)
  _, two = model_strategy(model, jax.tree.map(lambda x: x[1], params), tree)
  return one, two


def policy_measure(model: Model, tree: Tree, opponents: dict[str, Tables],
                   stacked: bool = False) -> Callable[[Any], dict[str, jax.Array]]:
  """``measure(params) -> measure_tables(...)`` of a model playing both seats (see
  ``seat_tables``): ``exploitability``, ``nash_conv`` and ``payoff_vs_<name>``."""
  return lambda params: measure_tables(tree, seat_tables(model, params, tree, stacked),
                                       opponents)


def member_tables(model: Model, population: Any, tree: Tree) -> jax.Array:
  """``[K, I, A]`` the tables over all information states (seat one's first) of the
  members of a population of ``model``, parameters stacked ``[K, ...]``."""
  return jax.vmap(lambda p: jnp.concatenate(model_strategy(model, p, tree)))(population)


def own_reach(tree: Tree, table: jax.Array) -> jax.Array:
  """``[I]`` each information state's reach probability by its own seat's actions under
  ``table [I, A]`` (the same at every history of it: the poker games have perfect
  recall), read at its first history."""
  ids, first = np.unique(tree.infostate, return_index=True)
  return reach(tree, table)[first[ids >= 0], tree.seat - 1]


def average_strategy(tree: Tree, tables: jax.Array, weights: jax.Array) -> jax.Array:
  """The behaviour strategy of a mixture of K policies: each of them, played for a whole
  game with probability ``weights[k]`` (realisation equivalent, Kuhn's theorem).

  At each information state the members' probabilities are weighted by their weight
  times their own reach probability of that state; where no member of positive weight
  reaches it, by their weights alone.

  Args:
    tree: the game tree.
    tables: ``[K, I, A]`` the members' tables over all information states (seat one's
      first, as ``member_tables`` gives them).
    weights: ``[K]`` the mixture's probabilities (0 for empty slots of a buffer, whose
      tables may be anything finite).

  Returns:
    ``[I, A]`` the mixture's table (``split`` gives each seat's).
  """
  reach = jax.vmap(lambda t: own_reach(tree, t))(tables)  # [K, I]
  realised = weights[:, None] * reach
  total = jnp.sum(realised, axis=0)
  realised = jnp.where(total > 0, realised, weights[:, None])
  realised = realised / jnp.sum(realised, axis=0)
  return jnp.einsum("ki,kia->ia", realised, tables)


def mixture_measure(tree: Tree, opponents: dict[str, Tables]
                    ) -> Callable[[jax.Array, jax.Array], dict[str, jax.Array]]:
  """``measure(tables [K, I, A], weights [K]) -> measure_tables(...)`` of the mixture
  (``average_strategy``) of a population's members."""
  return lambda tables, weights: measure_tables(
      tree, split(tree, average_strategy(tree, tables, weights)), opponents)
