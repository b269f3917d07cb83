"""The PyTorch reference of the DPO step (``benchmarks.versus_trl``'s ``dpo``): TRL's
DPOTrainer on the same work.

  pip install -r benchmarks/reference/requirements.txt   # a separate venv: torch, trl
  python benchmarks/reference/trl_dpo.py [--steps N] [--threads N] [--json PATH]

32 preference pairs an optimiser step: a prompt of 16 random characters and chosen and
rejected completions of 47 and the end-of-sequence token TRL appends, 64 tokens a
sequence, the loss (sigmoid, beta 0.1) on the 48 completion tokens. The model is
``trl_common``'s Llama; the optimiser, numerics, threads and timing are its too.
The reference is the initial model, frozen, and its log-probabilities are precomputed
(``precompute_ref_log_probs``) before training, outside the timed steps, as
``train.with_reference`` computes the library's once before ``train.preference_step``.
"""

import random
import string

from datasets import Dataset
from transformers import LlamaForCausalLM
from trl import DPOConfig, DPOTrainer
from trl_common import (BATCH, WARMUPS, byte_tokenizer, finish, llama_config, parse_args,
                        step_seconds, train_config)

PROMPT, COMPLETION = 16, 48
LENGTH = PROMPT + COMPLETION


def main():
  args = parse_args(__doc__)
  rng = random.Random(0)
  text = lambda n: "".join(rng.choices(string.ascii_letters + string.digits, k=n))
  pairs = (WARMUPS + args.steps) * BATCH
  dataset = Dataset.from_dict({"prompt": [text(PROMPT) for _ in range(pairs)],
                               "chosen": [text(COMPLETION - 1) for _ in range(pairs)],
                               "rejected": [text(COMPLETION - 1) for _ in range(pairs)]})
  trainer = DPOTrainer(
      model=LlamaForCausalLM(llama_config(LENGTH)),
      args=train_config(DPOConfig, args.steps, beta=0.1, max_length=LENGTH,
                        precompute_ref_log_probs=True),
      train_dataset=dataset, processing_class=byte_tokenizer())
  first = trainer.train_dataset[0]
  lengths = tuple(len(first[key]) for key in ("prompt_ids", "chosen_ids", "rejected_ids"))
  if lengths != (PROMPT, COMPLETION, COMPLETION):
    raise RuntimeError(f"prompt, chosen and rejected of {lengths} tokens, expected "
                       f"{(PROMPT, COMPLETION, COMPLETION)}")
  finish(args, step_seconds(trainer), pairs=BATCH, tokens=2 * BATCH * LENGTH)


if __name__ == "__main__":
  main()
