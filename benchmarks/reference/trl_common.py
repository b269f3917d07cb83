"""What the TRL references share: their options, the model, the trainer settings, timing.

The model is the library's 2-layer d=128 (4 heads, d_ff 512, its 260-token vocabulary) as
a Llama built from its config: RMSNorm, rotary positions, untied output embedding, the
gated MLP 2/3 as wide so that both do the same matrix work; float32 (no bf16), no
gradient checkpointing, ``--threads`` CPU threads (default 2). AdamW as
``train.optimizer(1e-4, ...)``: learning rate 1e-4, beta2 0.99, no weight decay, gradients
clipped to norm 1. A step is timed by a callback, from its start to its end; figures are
medians of ``--steps`` steps after 3 warm-ups.
"""

import argparse
import random
import statistics
import time

import torch
import transformers
import trl
from hf_generate import VOCAB_SIZE, report
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, PreTrainedTokenizerFast, TrainerCallback

BATCH = 32  # Sequences (or pairs) an optimiser step.
WARMUPS = 3


def byte_tokenizer() -> PreTrainedTokenizerFast:
  """One token per printable character, as in twoplayer_jax's byte vocabulary."""
  vocab = {chr(i): i for i in range(32, 127)} | {"<pad>": 0, "<s>": 1, "</s>": 2}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
  tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
  tok.decoder = decoders.Fuse()
  return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                 eos_token="</s>")


class StepTimer(TrainerCallback):
  def __init__(self):
    self.times = []

  def on_step_begin(self, args, state, control, **_):
    self.start = time.perf_counter()

  def on_step_end(self, args, state, control, **_):
    self.times.append(time.perf_counter() - self.start)


def parse_args(doc: str) -> argparse.Namespace:
  """The options every TRL reference takes; sets torch's threads and seed."""
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("--steps", type=int, default=20, help="timed steps, after 3 warm-ups")
  parser.add_argument("--threads", type=int, default=2, help="torch threads")
  parser.add_argument("--json", help="write the figures to this JSON file")
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  return args


def llama_config(max_length: int, **kwargs) -> LlamaConfig:
  """The library's 2-layer d=128 model as a Llama; ids as ``trl_grpo.byte_tokenizer``'s."""
  return LlamaConfig(
      vocab_size=VOCAB_SIZE, hidden_size=128, intermediate_size=2 * 512 // 3,
      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
      max_position_embeddings=max_length, rms_norm_eps=1e-6, tie_word_embeddings=False,
      pad_token_id=0, bos_token_id=1, eos_token_id=2, **kwargs)


def random_ids(count: int, length: int, rng: random.Random) -> list[list[int]]:
  """``count`` sequences of ``length`` printable-character ids (no special token)."""
  return [[rng.randrange(32, 127) for _ in range(length)] for _ in range(count)]


def train_config(config_cls, steps: int, batch: int = BATCH, **settings):
  """``config_cls`` (a TRL config) for ``steps`` timed steps after the warm-ups, batches of
  ``batch``, float32 on the CPU, AdamW as the library's, no logging or checkpoints."""
  return config_cls(
      output_dir="/tmp/trl_reference", per_device_train_batch_size=batch,
      max_steps=WARMUPS + steps, learning_rate=1e-4, lr_scheduler_type="constant",
      adam_beta2=0.99, weight_decay=0.0, max_grad_norm=1.0, bf16=False,
      activation_checkpointing=False, use_cpu=True, save_strategy="no", report_to=[],
      disable_tqdm=True, logging_steps=10 ** 6, **settings)


def step_seconds(trainer) -> float:
  """Trains ``trainer``: the median seconds of its steps after the warm-ups."""
  timer = StepTimer()
  trainer.add_callback(timer)
  trainer.train()
  return statistics.median(timer.times[WARMUPS:])


def finish(args, seconds: float, **per_step: int) -> None:
  """Reports ``seconds`` a step and, for each of ``per_step``'s counts, its rate."""
  figures = {"torch": torch.__version__, "transformers": transformers.__version__,
             "trl": trl.__version__, "device": "cpu", "torch_threads": torch.get_num_threads(),
             "s_per_step": seconds}
  figures |= {f"{name}_per_s": count / seconds for name, count in per_step.items()}
  report(figures, args.json)
