"""The shared byte vocabulary: 256 bytes plus four special tokens.

Every game is written in this vocabulary, so every transcript is text. ``decode`` and
``encode`` are exact inverses on any token sequence: special tokens are shown as
``⟨bos⟩``, ``⟨eot⟩`` (followed by a line break), ``⟨eog⟩`` and ``⟨pad⟩``; bytes that are
not valid UTF-8 as ``⟨xHH⟩``; and a literal ``⟨`` is doubled. ``render`` adds turn
markers for people reading a transcript.
"""

import re

import numpy as np

NUM_BYTES = 256
PAD = 256  # Padding after the end of a transcript; never written by a player.
BOS = 257  # Beginning of a transcript; written by chance at position 0.
EOT = 258  # End of turn: the mover hands the move to the other player.
EOG = 259  # End of game.
VOCAB_SIZE = 260

SPECIAL_NAMES = {PAD: "pad", BOS: "bos", EOT: "eot", EOG: "eog"}
_SPECIAL_TEXT = {tok: f"⟨{name}⟩" for tok, name in SPECIAL_NAMES.items()}
_SPECIAL_TEXT[EOT] += "\n"
_MARK = re.compile(r"⟨(⟨|pad⟩|bos⟩|eot⟩\n?|eog⟩|x[0-9a-f]{2}⟩)")
ROLE_NAMES = {0: "chance", 1: "one", 2: "two"}


def writable() -> np.ndarray:
  """``[VOCAB_SIZE]`` bool: the tokens a player may write (every byte, end-of-turn and
  end-of-game; never PAD or BOS)."""
  token = np.arange(VOCAB_SIZE)
  return (token < PAD) | (token >= EOT)


def _check_tokens(tokens) -> np.ndarray:
  tokens = np.asarray(tokens)
  if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
    raise ValueError(f"tokens must be a 1-D integer array, got {tokens.dtype}{tokens.shape}")
  bad = (tokens < 0) | (tokens >= VOCAB_SIZE)
  if bad.any():
    i = int(np.argmax(bad))
    raise ValueError(f"token {int(tokens[i])} at position {i} is outside the vocabulary [0, {VOCAB_SIZE})")
  return tokens


def from_bytes(data: bytes) -> np.ndarray:
  """Tokenizes raw bytes, one token per byte: ``[len(data)]`` int32."""
  return np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int32)


def to_bytes(tokens) -> bytes:
  """The bytes of a token sequence, specials dropped; inverse of ``from_bytes``."""
  tokens = _check_tokens(tokens)
  return tokens[tokens < NUM_BYTES].astype(np.uint8).tobytes()


def _decode_bytes(data: bytes) -> str:
  text = data.decode("utf-8", errors="surrogateescape").replace("⟨", "⟨⟨")
  return re.sub("[\udc80-\udcff]", lambda m: f"⟨x{ord(m.group()) - 0xDC00:02x}⟩", text)


def decode(tokens) -> str:
  """Text of a token sequence ``[T]``; ``encode(decode(t))`` equals ``t`` exactly."""
  tokens = _check_tokens(tokens)
  parts, start = [], 0
  for i in np.flatnonzero(tokens >= NUM_BYTES):
    parts += [_decode_bytes(to_bytes(tokens[start:i])), _SPECIAL_TEXT[int(tokens[i])]]
    start = i + 1
  parts.append(_decode_bytes(to_bytes(tokens[start:])))
  return "".join(parts)


def encode(text: str) -> np.ndarray:
  """Tokens of a text as written by ``decode``: ``[T]`` int32."""
  specials = {name: tok for tok, name in SPECIAL_NAMES.items()}
  out, start = [], 0
  for m in _MARK.finditer(text):
    out.append(from_bytes(text[start:m.start()].encode("utf-8")))
    mark = m.group(1).rstrip("\n").rstrip("⟩")
    if mark == "⟨":
      out.append(from_bytes("⟨".encode("utf-8")))
    elif mark.startswith("x") and len(mark) == 3:
      out.append(np.array([int(mark[1:], 16)], np.int32))
    else:
      out.append(np.array([specials[mark]], np.int32))
    start = m.end()
  out.append(from_bytes(text[start:].encode("utf-8")))
  return np.concatenate(out)


def render(tokens, owner, length: int | None = None) -> str:
  """A transcript for people: one line per turn, prefixed by its author.

  Args:
    tokens: ``[T]`` token ids.
    owner: ``[T]`` author of each token (0 chance, 1 player one, 2 player two).
    length: number of tokens written; defaults to everything before the first PAD.

  Returns:
    Lines such as ``two> 362⟨eot⟩``; the opening's chance tokens (BOS) are left out.
  """
  tokens, owner = _check_tokens(tokens), np.asarray(owner)
  if length is None:
    length = int(np.argmax(np.append(tokens, PAD) == PAD))
  lines, start = [], 0
  for i in range(1, length + 1):
    if i == length or owner[i] != owner[start] or tokens[i - 1] == EOT:
      keep = tokens[start:i][tokens[start:i] != BOS]
      if len(keep):
        lines.append(f"{ROLE_NAMES[int(owner[start])]}> {decode(keep).rstrip(chr(10))}")
      start = i
  return "\n".join(lines)
