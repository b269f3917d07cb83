"""A pretrained Hugging Face model as a player of the byte-level games, in one call.

  config = models.from_checkpoint("Qwen2-0.5B", max_length=128, param_dtype="bfloat16")
  model = models.make(config)
  params = models.hf.load(config.checkpoint, config)

The network comes from ``config.json`` (``hf.config_from_hf``), the game symbols' tokens
from ``tokenizer.json`` (``bridge.symbols``), and ``checkpoint`` records the directory,
so every training stage that would start from fresh parameters starts from its own.
"""

import dataclasses
import os

from twoplayer_jax.models import bridge, hf
from twoplayer_jax.models.decoder import DecoderConfig


def from_checkpoint(directory: str, *, max_length: int | None = None, dtype: str = "float32",
                    param_dtype: str = "float32", scalar_head: bool = False,
                    bos: str | None = None, eot: str | None = None, eog: str | None = None
                    ) -> DecoderConfig:
  """The ``DecoderConfig`` of the model in ``directory``, playing the game's vocabulary.

  Args:
    directory: holds ``config.json``, ``tokenizer.json`` and ``*.safetensors``.
    max_length, dtype, param_dtype, scalar_head: as ``hf.config_from_hf``'s.
    bos, eot, eog: the tokens for the game's specials (``bridge.symbols``); None: the
      family's chat tokens (``bridge.SPECIALS``).
  """
  config = hf.config_from_hf(hf.read_config(directory), max_length=max_length, dtype=dtype,
                             param_dtype=param_dtype, scalar_head=scalar_head)
  chosen = {k: v for k, v in dict(bos=bos, eot=eot, eog=eog).items() if v}
  symbols = bridge.symbols(bridge.read_tokenizer(directory),
                           **{**bridge.SPECIALS[config.family], **chosen})
  return dataclasses.replace(config, symbols=symbols, checkpoint=os.path.abspath(directory))
