"""The PyTorch reference of the imitation step (``benchmarks.versus_trl``'s ``sft``): TRL's
SFTTrainer on the same work.

  pip install -r benchmarks/reference/requirements.txt   # a separate venv: torch, trl
  python benchmarks/reference/trl_sft.py [--steps N] [--threads N] [--json PATH]

32 sequences of exactly 128 random tokens an optimiser step, given tokenized (no packing,
no padding), the loss on every token; the model, optimiser and timing of ``trl_common``.
A step is forward, backward, clipping and optimiser, batching left out.
"""

import random

from datasets import Dataset
from transformers import LlamaForCausalLM
from trl import SFTConfig, SFTTrainer
from trl_common import (BATCH, WARMUPS, byte_tokenizer, finish, llama_config, parse_args,
                        random_ids, step_seconds, train_config)

LENGTH = 128


def main():
  args = parse_args(__doc__)
  ids = random_ids((WARMUPS + args.steps) * BATCH, LENGTH, random.Random(0))
  trainer = SFTTrainer(
      model=LlamaForCausalLM(llama_config(LENGTH)),
      args=train_config(SFTConfig, args.steps, max_length=LENGTH, packing=False),
      train_dataset=Dataset.from_dict({"input_ids": ids}), processing_class=byte_tokenizer())
  finish(args, step_seconds(trainer), sequences=BATCH, tokens=BATCH * LENGTH)


if __name__ == "__main__":
  main()
