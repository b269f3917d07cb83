"""The PyTorch reference of ``benchmarks.rollout``'s play figures: Hugging Face ``generate``.

  pip install -r benchmarks/reference/requirements.txt   # a separate venv: torch, transformers
  python benchmarks/reference/hf_generate.py [--device cpu|cuda] [--repeats N] [--json PATH]
      [--only small_b64,large_b64] [--threads N]

The same models as ``benchmarks.rollout``: Llama-style (RMSNorm, rotary positions, untied
output embedding) 2-layer d=128 (4 heads, d_ff 512) and 6-layer d=512 (8 heads, d_ff 2048),
built from their configs, random init, float32, eval mode, under ``torch.inference_mode``.
Batches of random 16-token prompts, each given exactly 16 new tokens by sampling (no top-k,
no top-p, temperature 1, end-of-sequence suppressed until the 16th), with the KV cache.
Figures are medians of ``--repeats`` timed calls after 2 warm-ups; tokens are new ones.
On CPU, 2 threads unless ``--threads``.

Llama's MLP is gated (three matrices, SiLU) where the library's has two (ReLU): its
width is 2/3 of d_ff, so that both do the same matrix work per token.
"""

import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB_SIZE = 260  # twoplayer_jax.vocab.VOCAB_SIZE: 256 bytes and 4 special tokens.
MAX_LENGTH = 32  # benchmarks.rollout's GAME.max_length: the models' position range.
PROMPT_TOKENS = 16  # The arithmetic game's 6-digit openings.
NEW_TOKENS = 16  # The play that fills them.
PAD, BOS, EOS = 256, 257, 259  # twoplayer_jax.vocab's PAD, BOS, EOG.
WARMUPS = 2

MODELS = {  # name: (layers, d_model, heads, d_ff), as benchmarks.rollout's SMALL and LARGE.
    "small": (2, 128, 4, 512),
    "large": (6, 512, 8, 2048),
}
FIGURES = {"small_b1": ("small", 1), "small_b64": ("small", 64),
           "small_b512": ("small", 512), "large_b64": ("large", 64)}


def make_model(name: str, device: str) -> LlamaForCausalLM:
  layers, d_model, heads, d_ff = MODELS[name]
  config = LlamaConfig(
      vocab_size=VOCAB_SIZE, hidden_size=d_model, intermediate_size=2 * d_ff // 3,
      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
      max_position_embeddings=MAX_LENGTH, rms_norm_eps=1e-6, tie_word_embeddings=False,
      pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
  torch.manual_seed(0)
  return LlamaForCausalLM(config).to(device=device, dtype=torch.float32).eval()


def sync(device: str) -> None:
  if device == "cuda":
    torch.cuda.synchronize()


def bench_generate(name: str, batch: int, repeats: int, device: str) -> dict:
  model = make_model(name, device)
  gen = torch.Generator().manual_seed(1)
  prompts = torch.randint(32, 127, (batch, PROMPT_TOKENS), generator=gen).to(device)
  mask = torch.ones_like(prompts)

  def call():
    out = model.generate(
        input_ids=prompts, attention_mask=mask, max_new_tokens=NEW_TOKENS,
        min_new_tokens=NEW_TOKENS, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
        use_cache=True, pad_token_id=PAD, eos_token_id=EOS)
    sync(device)
    return out

  with torch.inference_mode():
    for _ in range(WARMUPS):
      out = call()
    if out.shape != (batch, PROMPT_TOKENS + NEW_TOKENS):
      raise RuntimeError(f"generate returned {tuple(out.shape)}, expected "
                         f"{(batch, PROMPT_TOKENS + NEW_TOKENS)}")
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      call()
      times.append(time.perf_counter() - start)
  median = statistics.median(times)
  return {"tokens_per_s": batch * NEW_TOKENS / median, "games_per_s": batch / median}


def report(figures: dict, json_path: str | None) -> None:
  """As benchmarks.common.report (not imported: this venv has no jax)."""
  for name, value in figures.items():
    print(f"{name:>32}: {value:.4g}" if isinstance(value, float) else f"{name:>32}: {value}")
  if json_path:
    with open(json_path, "w") as f:
      json.dump(figures, f, indent=1)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
  parser.add_argument("--threads", type=int, help="torch threads on CPU (default 2)")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--only", help=f"comma-separated figures among {', '.join(FIGURES)}")
  parser.add_argument("--json", help="write the figures to this JSON file")
  args = parser.parse_args()
  only = args.only.split(",") if args.only else list(FIGURES)
  unknown = set(only) - set(FIGURES)
  if unknown:
    parser.error(f"unknown figures {sorted(unknown)}; choose among {list(FIGURES)}")
  if args.device == "cpu":
    torch.set_num_threads(args.threads or 2)
  elif args.threads:
    torch.set_num_threads(args.threads)
  figures = {"torch": torch.__version__, "transformers": transformers.__version__,
             "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
             "torch_threads": torch.get_num_threads()}
  t0 = time.perf_counter()
  for key in only:
    name, batch = FIGURES[key]
    for figure, value in bench_generate(name, batch, args.repeats, args.device).items():
      figures[f"hf_{key}_{figure}"] = value
  figures["wall_s"] = time.perf_counter() - t0
  report(figures, args.json)


if __name__ == "__main__":
  main()
