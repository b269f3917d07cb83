"""The vocabulary bridge: a model with a tokenizer of its own plays the byte-level games.

Games stay in the library's vocabulary (256 bytes, end-of-turn, end-of-game, BOS, PAD).
``symbols`` gives each game symbol one token id of the model, built once from the
model's ``tokenizer.json``: a byte's token is the one the tokenizer has for that
character alone where there is one (the piece ``3``, not the byte-fallback piece
``<0x33>``), else the byte's own token, which byte-level BPE vocabularies (GPT-2,
Llama 3, Qwen2) and byte-fallback ones (Llama 2, SentencePiece) hold for every byte.
End-of-turn and end-of-game are special tokens of one's choice; BOS and PAD are only
read. ``DecoderConfig(symbols=...)`` then reads game tokens through the table and
computes the logits of the symbols' tokens only, so sampling under a game's legal mask
is sampling from the model's own distribution restricted to the legal symbols, and
payoffs read bytes inside jit as for any other player.

  tokenizer = bridge.read_tokenizer(directory)
  symbols = bridge.symbols(tokenizer, **bridge.SPECIALS["qwen2"])
"""

import json
import os
import re

import numpy as np

from twoplayer_jax import vocab

# Chat models' special tokens for the game's specials, per family (see ``symbols``).
SPECIALS = {
    "llama": {"bos": "<|begin_of_text|>", "eot": "<|eot_id|>", "eog": "<|end_of_text|>"},
    "qwen2": {"bos": "<|endoftext|>", "eot": "<|im_end|>", "eog": "<|endoftext|>"},
}
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def read_tokenizer(directory: str) -> dict:
  """The ``tokenizer.json`` of a Hugging Face model directory."""
  path = os.path.join(directory, "tokenizer.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{directory} has no tokenizer.json (a fast tokenizer's file)")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def byte_alphabet() -> dict[int, str]:
  """Byte-level BPE's printable stand-in for each byte (GPT-2's ``bytes_to_unicode``):
  printable Latin-1 bytes stand for themselves, the others for code points from 256."""
  kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
  others = [b for b in range(256) if b not in kept]
  return {**{b: chr(b) for b in kept}, **{b: chr(256 + i) for i, b in enumerate(others)}}


def _byte_level(tokenizer: dict) -> bool:
  decoder = tokenizer.get("decoder") or {}
  parts = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
  return any(p.get("type") == "ByteLevel" for p in parts)


def token_bytes(tokenizer: dict) -> dict[int, bytes]:
  """The bytes each ordinary (not added, not special) token of ``tokenizer`` stands for.

  Raises:
    ValueError: the tokenizer is neither byte-level nor byte-fallback BPE.
  """
  model = tokenizer["model"]
  added = {t["id"] for t in tokenizer.get("added_tokens", [])}
  pieces = {i: p for p, i in model["vocab"].items() if i not in added}
  if _byte_level(tokenizer):
    inverse = {c: b for b, c in byte_alphabet().items()}
    return {i: bytes(inverse[c] for c in p) for i, p in pieces.items()
            if all(c in inverse for c in p)}
  if model.get("byte_fallback"):
    out = {}
    for i, p in pieces.items():
      match = _BYTE_PIECE.fullmatch(p)
      out[i] = bytes([int(match.group(1), 16)]) if match else p.replace("▁", " ").encode()
    return out
  raise ValueError(f"a {model.get('type')} tokenizer without byte-level pieces or byte "
                   "fallback cannot spell every byte")


def special_id(tokenizer: dict, text: str) -> int:
  """The id of the token ``text`` (an added or ordinary token)."""
  for token in tokenizer.get("added_tokens", []):
    if token["content"] == text:
      return token["id"]
  if text in tokenizer["model"]["vocab"]:
    return tokenizer["model"]["vocab"][text]
  raise ValueError(f"the tokenizer has no token {text!r}")


def symbols(tokenizer: dict, *, bos: str, eot: str, eog: str, pad: str | None = None
            ) -> tuple[int, ...]:
  """``[vocab.VOCAB_SIZE]`` the model token id of each game symbol.

  Args:
    tokenizer: a ``tokenizer.json`` (``read_tokenizer``).
    bos, eot, eog: the tokens that stand for the beginning of a transcript, the end of a
      turn and the end of the game (e.g. ``SPECIALS["qwen2"]``).
    pad: the token padding reads as; None: ``eog``'s (padding follows the game's end and
      is never written).

  Raises:
    ValueError: a byte has no token of its own, a special token is missing, or two
      symbols a player writes share a token; the message names them.
  """
  fallback = {i for p, i in tokenizer["model"]["vocab"].items() if _BYTE_PIECE.fullmatch(p)}
  ids = [None] * vocab.VOCAB_SIZE
  # A piece that is the character itself before a byte-fallback piece; then the lowest id.
  for i, data in sorted(token_bytes(tokenizer).items(), key=lambda x: (x[0] in fallback, x[0])):
    if len(data) == 1 and ids[data[0]] is None:
      ids[data[0]] = i
  missing = [b for b in range(vocab.NUM_BYTES) if ids[b] is None]
  if missing:
    raise ValueError(f"{len(missing)} bytes have no single token in this tokenizer, e.g. "
                     f"{[hex(b) for b in missing[:8]]}: it cannot play byte-level games")
  ids[vocab.BOS] = special_id(tokenizer, bos)
  ids[vocab.EOT] = special_id(tokenizer, eot)
  ids[vocab.EOG] = special_id(tokenizer, eog)
  ids[vocab.PAD] = special_id(tokenizer, pad) if pad is not None else ids[vocab.EOG]
  written = [ids[t] for t in np.flatnonzero(vocab.writable())]
  if len(set(written)) != len(written):
    raise ValueError(f"end-of-turn {eot!r} and end-of-game {eog!r} must be distinct tokens, "
                     "and neither a byte's")
  return tuple(ids)
