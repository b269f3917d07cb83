"""The offline update steps against TRL's trainers on the same work, timed in one command.

  python -m benchmarks.versus_trl [--python PATH] [--rounds N] [--repeats N]
      [--only grpo,sft,reward,dpo] [--threads N] [--json PATH]

Alternates ``--rounds`` rounds, each figure's library side then its reference, run as a
subprocess with the reference venv's python (default ``.venv-ref/bin/python``; see
``benchmarks/reference/requirements.txt``), all on the CPU. The model is the 2-layer d=128
transformer (4 heads, d_ff 512; in TRL a Llama of the same matrix work), float32, updated
by AdamW at learning rate 1e-4 with gradients clipped to norm 1:

  grpo: one GRPO iteration (``benchmarks.rl_iteration``'s figure): 8 openings x 8 sampled
    continuations of up to 8 tokens on 3-digit sums, scored, and one gradient step, against
    ``reference/trl_grpo.py`` (GRPOTrainer, beta 0, the same prompts and completion length).
  sft: ``train.imitation_step`` (``benchmarks.imitation_step``'s figure) on 32 sequences of
    128 tokens, every token learned, against ``reference/trl_sft.py`` (SFTTrainer).
  reward: ``train.reward_model_step`` (Bradley-Terry, a scalar head) on 32 pairs of
    64-token sequences, against ``reference/trl_reward.py`` (RewardTrainer).
  dpo: ``train.preference_step`` (DPO, beta 0.1) on 32 pairs of 64-token sequences, 16 of
    prompt and 48 learned, the reference's log-probabilities from ``train.with_reference``
    computed once before the timing, against ``reference/trl_dpo.py`` (DPOTrainer, its
    reference log-probabilities precomputed the same way).

A library figure is a median of ``--repeats`` timed steps (each on the same state) after
a compiling one; a reference's, of ``--repeats`` steps after 3 warm-ups, the batching left
out. A ratio is the median over rounds of the library's throughput over the median over
rounds of TRL's, and each round's ratio is kept as well. JAX uses every core; torch
``--threads`` (default 2).
"""

import dataclasses
import os
import time
from pathlib import Path

from benchmarks.versus_hf import compare, parse_versus, run_reference, versus_parser

REFERENCES = Path(__file__).resolve().parent / "reference"
# Figure: (library step, reference script, what a step holds, ratio's name).
FIGURES = {"grpo": ("rl_iteration", "trl_grpo.py", "games", "grpo_vs_trl"),
           "sft": ("imitation_step", "trl_sft.py", "sequences", "sft_vs_trl"),
           "reward": ("reward_model_step", "trl_reward.py", "pairs", "reward_vs_trl"),
           "dpo": ("preference_step", "trl_dpo.py", "pairs", "dpo_vs_trl")}
ARGS = parse_versus(versus_parser(__doc__, FIGURES), FIGURES) if __name__ == "__main__" else None
if ARGS:
  os.environ["JAX_PLATFORMS"] = "cpu"  # Before JAX is imported: the references' device.

import jax  # noqa: E402  (after the platform is set)
import jax.numpy as jnp  # noqa: E402

from benchmarks import imitation_step, rl_iteration  # noqa: E402
from benchmarks.common import report, time_call  # noqa: E402
from twoplayer_jax import batches, models, train, vocab  # noqa: E402

PAIRS, LENGTH, PROMPT = 32, 64, 16
SMALL = imitation_step.SIZES["small"]


def fresh_state(model) -> tuple:
  """The optimiser and a train state of ``model`` at step 0."""
  tx = train.optimizer(1e-4, 1000)
  return tx, train.create(model.init(jax.random.key(0)), tx, jax.random.key(1))


def pairs(key: jax.Array, weights: jax.Array | None = None) -> batches.Pairs:
  """``PAIRS`` chosen and rejected sequences of ``LENGTH`` random bytes, ``weights`` on
  the learned tokens of each."""
  chosen, rejected = jax.random.randint(key, (2, PAIRS, LENGTH), 0, vocab.NUM_BYTES)
  length = jnp.full((PAIRS,), LENGTH)
  return batches.Pairs(chosen, rejected, length, length, weights, weights)


def grpo_per_s(repeats: int) -> float:
  """Games a second of the GRPO iteration."""
  _, iteration, state = rl_iteration.learner()
  _, seconds = time_call(jax.jit(iteration), state, train.Frozen(), repeats=repeats)
  return rl_iteration.GAMES / seconds


def sft_per_s(repeats: int) -> float:
  """Sequences a second of the imitation step."""
  seconds, _, _ = imitation_step.bench(SMALL, repeats)
  return imitation_step.BATCH / seconds


def reward_per_s(repeats: int) -> float:
  """Pairs a second of the reward-model step."""
  model = models.make(dataclasses.replace(SMALL, scalar_head=True))
  tx, state = fresh_state(model)
  batch = pairs(jax.random.key(2))
  _, seconds = time_call(jax.jit(train.reward_model_step(model, tx)), state, batch,
                         repeats=repeats)
  return PAIRS / seconds


def dpo_per_s(repeats: int) -> float:
  """Pairs a second of the DPO step."""
  model = models.make(SMALL)
  tx, state = fresh_state(model)
  mask = jnp.broadcast_to(jnp.arange(LENGTH) >= PROMPT, (PAIRS, LENGTH)).astype(jnp.float32)
  batch = pairs(jax.random.key(2), mask)
  batch = train.with_reference(model, state.params, batch)  # The initial policy's, once.
  _, seconds = time_call(jax.jit(train.preference_step(model, tx, beta=0.1)), state, batch,
                         repeats=repeats)
  return PAIRS / seconds


BENCHES = {"grpo": grpo_per_s, "sft": sft_per_s, "reward": reward_per_s, "dpo": dpo_per_s}


def main():
  args = ARGS
  ours = {key: [] for key in args.only}
  theirs = {key: [] for key in args.only}
  reference = {}
  t0 = time.perf_counter()
  for i in range(args.rounds):
    for key in args.only:
      _, script, unit, _ = FIGURES[key]
      ours[key].append(BENCHES[key](args.repeats))
      reference = run_reference(args, REFERENCES / script, "--steps", str(args.repeats))
      theirs[key].append(reference[f"{unit}_per_s"])
      print(f"round {i + 1} {key}: {ours[key][-1]:.1f} against TRL's {theirs[key][-1]:.1f} "
            f"{unit}/s", flush=True)

  figures = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
             "torch": reference["torch"], "transformers": reference["transformers"],
             "trl": reference["trl"], "torch_threads": reference["torch_threads"],
             "rounds": args.rounds, "repeats": args.repeats}
  for key in args.only:
    step, _, unit, ratio = FIGURES[key]
    compare(figures, ratio, f"{step}_{unit}_per_s", f"trl_{key}_{unit}_per_s", ours[key],
            theirs[key])
  figures["wall_s"] = time.perf_counter() - t0
  report(figures, args.json)


if __name__ == "__main__":
  main()
