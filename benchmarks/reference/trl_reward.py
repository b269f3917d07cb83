"""The PyTorch reference of the reward-model step (``benchmarks.versus_trl``'s ``reward``):
TRL's RewardTrainer on the same work.

  pip install -r benchmarks/reference/requirements.txt   # a separate venv: torch, trl
  python benchmarks/reference/trl_reward.py [--steps N] [--threads N] [--json PATH]

32 preference pairs an optimiser step, chosen and rejected sequences of exactly 64 random
tokens each, given tokenized; the Bradley-Terry loss on the score at each sequence's last
token. The model is ``trl_common``'s Llama with a scalar head
(``LlamaForSequenceClassification``, one label) in place of the output embedding; the
optimiser, numerics, threads and timing are ``trl_common``'s.
"""

import random

from datasets import Dataset
from transformers import LlamaForSequenceClassification
from trl import RewardConfig, RewardTrainer
from trl_common import (BATCH, WARMUPS, byte_tokenizer, finish, llama_config, parse_args,
                        random_ids, step_seconds, train_config)

LENGTH = 64


def main():
  args = parse_args(__doc__)
  rng = random.Random(0)
  pairs = (WARMUPS + args.steps) * BATCH
  dataset = Dataset.from_dict({"chosen_ids": random_ids(pairs, LENGTH, rng),
                               "rejected_ids": random_ids(pairs, LENGTH, rng)})
  trainer = RewardTrainer(
      model=LlamaForSequenceClassification(llama_config(LENGTH, num_labels=1)),
      args=train_config(RewardConfig, args.steps, max_length=LENGTH),
      train_dataset=dataset, processing_class=byte_tokenizer())
  finish(args, step_seconds(trainer), pairs=BATCH, tokens=2 * BATCH * LENGTH)


if __name__ == "__main__":
  main()
