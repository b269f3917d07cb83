"""The PyTorch reference of ``benchmarks.rl_iteration`` (``benchmarks.versus_trl``'s
``grpo``): TRL's GRPOTrainer on the same work.

  pip install -r benchmarks/reference/requirements.txt   # a separate venv: torch, trl
  python benchmarks/reference/trl_grpo.py [--steps N] [--threads N] [--json PATH]

8 prompts x 8 generations = 64 games per step ("123+456=" prompts, the reward 1 for the
right sum), sampled completions of up to 8 tokens, one gradient step per generation, no
reference model (beta 0); the model, optimiser and timing of ``trl_common``. A step is
timed from its start to its end: generation, reward and update.
"""

import random

from datasets import Dataset
from transformers import LlamaForCausalLM
from trl import GRPOConfig, GRPOTrainer
from trl_common import (WARMUPS, byte_tokenizer, finish, llama_config, parse_args,
                        step_seconds, train_config)

GAMES, GENERATIONS, COMPLETION = 64, 8, 8


def right_sum(completions, prompts, **_):
  """Payoff 1 for the sum of the prompt's two numbers, else 0."""
  return [float(c.strip() == str(sum(map(int, p[:-1].split("+")))))
          for p, c in zip(prompts, completions)]


def main():
  args = parse_args(__doc__)
  rng = random.Random(0)
  prompts = [f"{rng.randrange(1000)}+{rng.randrange(1000)}="
             for _ in range((WARMUPS + args.steps) * GAMES // GENERATIONS)]
  trainer = GRPOTrainer(
      model=LlamaForCausalLM(llama_config(64)), reward_funcs=right_sum,
      args=train_config(GRPOConfig, args.steps, batch=GAMES, num_generations=GENERATIONS,
                        max_completion_length=COMPLETION, beta=0.0, temperature=1.0),
      train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=byte_tokenizer())
  finish(args, step_seconds(trainer), games=GAMES)


if __name__ == "__main__":
  main()
