"""twoplayer_jax: language model training as agent learning in a two-player token game."""

from twoplayer_jax import batches, game, games, players, rollout, vocab
from twoplayer_jax.game import GameState, Trajectory
from twoplayer_jax.models import TransformerConfig
from twoplayer_jax.players import Move, Player
from twoplayer_jax.rollout import play

__version__ = "0.1.0"
