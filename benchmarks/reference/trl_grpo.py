"""The PyTorch reference of ``benchmarks.rl_iteration``: TRL's GRPOTrainer on the same work.

  pip install -r benchmarks/reference/requirements.txt   # a separate venv: torch, trl
  python benchmarks/reference/trl_grpo.py [--steps N] [--json PATH]

8 prompts x 8 generations = 64 games per step, completions of up to 8 tokens, a 2-layer
d=128 Llama-style model built from its config (float32, 2 CPU threads), one gradient step
per generation, no reference model (beta=0), no gradient checkpointing. A step is timed
from its start to its end (generation, reward and update), the first 3 left out.
"""

import argparse
import json
import random
import statistics
import time

import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

GAMES = 64


def byte_tokenizer() -> PreTrainedTokenizerFast:
  """One token per printable character, as in twoplayer_jax's byte vocabulary."""
  vocab = {chr(i): i for i in range(32, 127)} | {"<pad>": 0, "<s>": 1, "</s>": 2}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
  tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
  tok.decoder = decoders.Fuse()
  return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                 eos_token="</s>")


def right_sum(completions, prompts, **_):
  """Payoff 1 for the sum of the prompt's two numbers, else 0."""
  return [float(c.strip() == str(sum(map(int, p[:-1].split("+")))))
          for p, c in zip(prompts, completions)]


class StepTimer(TrainerCallback):
  def __init__(self):
    self.times = []

  def on_step_begin(self, args, state, control, **_):
    self.start = time.perf_counter()

  def on_step_end(self, args, state, control, **_):
    self.times.append(time.perf_counter() - self.start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--json", help="write the figures to this JSON file")
  args = parser.parse_args()
  torch.manual_seed(0)
  model = LlamaForCausalLM(LlamaConfig(
      vocab_size=260, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64, pad_token_id=0,
      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False))
  rng = random.Random(0)
  prompts = [f"{rng.randrange(1000)}+{rng.randrange(1000)}=" for _ in range(8 * args.steps)]
  timer = StepTimer()
  config = GRPOConfig(
      output_dir="/tmp/trl_grpo", per_device_train_batch_size=GAMES, num_generations=8,
      max_completion_length=8, beta=0.0, learning_rate=1e-4, max_steps=args.steps,
      save_strategy="no", report_to=[], use_cpu=True, gradient_checkpointing=False,
      temperature=1.0, disable_tqdm=True, logging_steps=10 ** 6)
  GRPOTrainer(model=model, reward_funcs=right_sum, args=config,
              train_dataset=Dataset.from_dict({"prompt": prompts}),
              processing_class=byte_tokenizer(), callbacks=[timer]).train()
  seconds = statistics.median(timer.times[3:])
  figures = {"torch_threads": torch.get_num_threads(), "s_per_iteration": seconds,
             "games_per_s": GAMES / seconds}
  print(figures)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(figures, f, indent=1)


if __name__ == "__main__":
  main()
