"""Models behind one pure interface (``Model``): the library's own transformer, and the
Llama and Qwen2 decoders that Hugging Face checkpoints load into (``hf``), playing the
byte-level games through a vocabulary ``bridge``."""

from twoplayer_jax.models import bridge, decoder, hf, transformer
from twoplayer_jax.models.decoder import DecoderConfig
from twoplayer_jax.models.interface import Cache, Model
from twoplayer_jax.models.pretrained import from_checkpoint
from twoplayer_jax.models.transformer import TransformerConfig, num_params


def make(config: TransformerConfig | DecoderConfig) -> Model:
  """The pure functions of a model configuration (equal configs give the same Model)."""
  if isinstance(config, DecoderConfig):
    return decoder.make(config)
  return transformer.make(config)
