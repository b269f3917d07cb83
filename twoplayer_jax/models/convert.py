"""Exports a model trained here to the Hugging Face layout: ``python -m
twoplayer_jax.models.convert``.

  python -m twoplayer_jax.models.convert --stage workdirs/pipeline/rlhf_kl1 \\
      --checkpoint Qwen2-0.5B --seed 0 --out exported/

reads the latest checkpoint of a stage whose model started from the Hugging Face
directory ``--checkpoint`` (``--config.model.checkpoint`` of the experiment), takes seed
``--seed``'s parameters and writes ``model.safetensors``, ``config.json`` and the
checkpoint's tokenizer files to ``--out``: a directory ``transformers`` loads with
``AutoModelForCausalLM.from_pretrained``. A scalar head (a reward model's or a value
head) is left out; the export refuses to write over a directory that holds a model.
"""

import argparse
import os
import shutil

from absl import logging
import jax

from twoplayer_jax import checkpoint
from twoplayer_jax.models import hf

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json")


def export(stage: str, checkpoint_dir: str, out: str, seed: int = 0,
           step: int | None = None) -> int:
  """Writes seed ``seed`` of ``stage``'s checkpoint to ``out``; returns the step."""
  if os.path.exists(os.path.join(out, "model.safetensors")):
    raise FileExistsError(f"{out} already holds a model.safetensors; choose another --out")
  params, step = checkpoint.read_params(stage, step)
  runs = jax.tree.leaves(params)[0].shape[0]
  if not 0 <= seed < runs:
    raise ValueError(f"--seed={seed}: the stage holds {runs} runs (0 to {runs - 1})")
  params = jax.tree.map(lambda x: x[seed], params)
  config = hf.config_from_hf(hf.read_config(checkpoint_dir),
                             param_dtype=str(params["embed"].dtype))
  hf.save(out, config, params)
  for name in TOKENIZER_FILES:
    if os.path.exists(os.path.join(checkpoint_dir, name)):
      shutil.copy(os.path.join(checkpoint_dir, name), out)
  return step


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--stage", required=True, help="a stage's directory, e.g. "
                      "workdirs/pipeline/sft")
  parser.add_argument("--checkpoint", required=True,
                      help="the Hugging Face directory the stage started from")
  parser.add_argument("--out", required=True, help="where to write the Hugging Face model")
  parser.add_argument("--seed", type=int, default=0, help="which of the stage's seeds")
  parser.add_argument("--step", type=int, help="the checkpoint's step; the latest by default")
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)  # Orbax reports every read at INFO.
  try:
    step = export(args.stage, args.checkpoint, args.out, args.seed, args.step)
  except (OSError, ValueError) as e:
    parser.error(str(e))
  print(f"wrote seed {args.seed} of {args.stage} at step {step} to {args.out}")


if __name__ == "__main__":
  main()
