"""Exact game-theoretic measures of small token games (Kuhn, Leduc poker).

  tree = gametheory.build_tree(game, kuhn_poker.ACTIONS)
  strategy_one, strategy_two = gametheory.model_strategy(model, params, tree)
  result = gametheory.evaluate(tree, strategy_one, strategy_two)
  result.exploitability, result.best_responses

``tree``: the extensive form, enumerated by playing the token game. ``strategy``: each
seat's behaviour strategy as a table over its information states (from a model, a
scripted strategy, or uniform). ``exploitability``: values, best responses, NashConv and
exploitability, as OpenSpiel defines them. ``matrix``: games between policies played
out (cross-play), the meta-games' equilibria, ratings and population buffers.
``measure``: these measures logged during training, and a population's mixture.
"""

from twoplayer_jax.gametheory import matrix, measure

from twoplayer_jax.gametheory.exploitability import Evaluation, evaluate
from twoplayer_jax.gametheory.strategy import (model_strategy, scripted_strategy, split,
                                               uniform_strategy)
from twoplayer_jax.gametheory.tree import Tree, build_tree
