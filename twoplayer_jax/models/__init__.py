"""Models: the transformer behind a pure init/apply boundary."""

from twoplayer_jax.models.transformer import Cache, Model, TransformerConfig, make, num_params
