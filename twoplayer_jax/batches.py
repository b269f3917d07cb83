"""The batches the update steps read: one type per kind, from the input pipeline to the step.

``data.pipeline`` yields them, ``train.steps`` reads them, and nothing renames a field on
the way. Each is a ``NamedTuple`` of arrays, so a pytree: ``jax.tree.map`` reshapes,
places or stacks every field at once, and an optional field left None is no leaf.
Per-token fields follow one convention: ``weights[b, t]`` is the loss weight of
predicting ``tokens[b, t]`` from the tokens before it, so position 0 never counts.
"""

from typing import Any, NamedTuple


class Turns(NamedTuple):
  """Transcripts to clone (pre-training, SFT).

  Attributes:
    tokens: ``[B, T]`` int32, PAD after each row's games.
    weights: ``[B, T]`` bool or float, the loss weight of each token (the cloned roles').
    positions: ``[B, T]`` int32, each token's position in its own game; None: ``0..T-1``
      (one game a row).
    segments: ``[B, T]`` int32, which game of the row each token is of (1, 2, ...; 0 on
      padding), so that a game attends only to itself; None: one game a row.
  """
  tokens: Any
  weights: Any
  positions: Any = None
  segments: Any = None


class Pairs(NamedTuple):
  """Preference pairs of transcripts on one opening (reward modelling, DPO, IPO).

  Attributes:
    chosen, rejected: ``[B, T]`` int32 transcripts, PAD after each game.
    chosen_length, rejected_length: ``[B]`` int32 tokens of each game.
    chosen_weights, rejected_weights: ``[B, T]`` the learner's tokens of each (what a
      preference step scores); None for a reward model, which scores whole games.
    ref_chosen, ref_rejected: ``[B]`` the reference policy's log-probability of those
      tokens (``train.with_reference``); None until computed.
  """
  chosen: Any
  rejected: Any
  chosen_length: Any
  rejected_length: Any
  chosen_weights: Any = None
  rejected_weights: Any = None
  ref_chosen: Any = None
  ref_rejected: Any = None


class Scored(NamedTuple):
  """Transcripts with an observed payoff (a reward model by regression).

  Attributes:
    tokens: ``[B, T]`` int32 transcripts.
    length: ``[B]`` int32 tokens of each game.
    payoff: ``[B]`` float32 the payoff to regress on.
  """
  tokens: Any
  length: Any
  payoff: Any
