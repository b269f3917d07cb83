"""Build the small *random* Hugging Face checkpoints and tokenizers the JAX tests import.

The test suite reads only the files written here (JSON, safetensors, npz); it needs
neither torch nor transformers. This script does, so run it in the reference venv made
from benchmarks/reference/requirements.txt (see that file), from the repository root:

    .venv-ref/bin/python tests/pretrained/make.py

It is deterministic (fixed built-in corpus, torch.manual_seed, numpy default_rng(0)), and
writes, next to itself:

    tokenizer.json                byte-level BPE (GPT-2 / Llama-3 / Qwen2 style), 320 tokens:
                                  256 byte symbols, ~60 merges trained on a built-in corpus
                                  (multi-digit tokens such as "12" among them), then the
                                  special tokens <|begin_of_text|> <|end_of_text|> <|eot_id|>
                                  <|endoftext|> <|im_end|> at the end of the vocabulary.
    byte_fallback/tokenizer.json  Llama-2 / SentencePiece style BPE with byte_fallback: <unk>
                                  <s> </s>, <0x00>..<0xFF>, single-character pieces (digits,
                                  "+", "=", ASCII letters, "▁") and a few merges. No model.
    llama/                        config.json, generation_config.json, model.safetensors
                                  (float32), tokenizer.json (copy of the byte-level one),
                                  logits.npz: a 2-layer LlamaForCausalLM (grouped-query
                                  attention, llama3 rope scaling, untied lm_head).
    qwen2/                        the same for Qwen2ForCausalLM (q/k/v biases, tied
                                  embeddings, so no lm_head tensor in the checkpoint).

Each logits.npz holds `tokens` int32 [2, 24] (random ids from numpy default_rng(0)),
`logits` float32 [2, 24, vocab] = model(input_ids=tokens).logits (eager attention,
positions 0..23), and `greedy` int32 [2, 8]: the new tokens of
model.generate(tokens[:, :16], max_new_tokens=8, do_sample=False) with the KV cache
(end-of-sequence stopping disabled, so these are 8 plain argmax steps; the script checks
them against 8 cache-free forward passes).

Then it reloads each model directory with AutoModelForCausalLM (the logits must match
bit for bit) and its tokenizer.json with transformers, and prints each checkpoint's
tensors. Notes on transformers 5: config.json spells rope settings as "rope_parameters"
(rope_theta included), not "rope_theta" / "rope_scaling"; and AutoTokenizer on the qwen2
directory builds Qwen2Tokenizer, which replaces tokenizer.json's pre-tokenizer by Qwen2's
own (digits one by one), so use PreTrainedTokenizerFast(tokenizer_file=...) there.
"""

import os
import random
import shutil

import numpy as np
import torch
from safetensors import safe_open
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig,
                          LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>"]
VOCAB_SIZE = 320  # byte-level tokenizer, special tokens included


def corpus():
  """A few hundred lines: sums of two numbers below 100, and short English sentences."""
  rng = random.Random(0)
  lines = []
  for _ in range(300):
    a, b = rng.randrange(100), rng.randrange(100)
    lines.append(f"{a}+{b}={a + b}")
  subjects = ["The cat", "A dog", "The player", "My friend", "The model", "She", "He", "They"]
  verbs = ["sees", "likes", "wants", "takes", "gives", "finds"]
  objects = ["the ball", "a book", "the answer", "three apples", "the red box", "an offer"]
  for s in subjects:
    for v in verbs:
      lines.append(f"{s} {v} {rng.choice(objects)}.")
  return lines


def byte_level_tokenizer():
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(SPECIALS), show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(corpus(), trainer=trainer)
  # Added after training, so that (as in Llama-3 and Qwen2) they end the vocabulary.
  tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
  vocab = tok.get_vocab()
  assert len(vocab) == VOCAB_SIZE, len(vocab)
  # ByteLevel maps the digits, "+" and "=" to themselves: "12" is the token for b"12".
  assert {"10", "11", "12", "13"} <= set(vocab), "expected some multi-digit tokens"
  return tok


def byte_fallback_tokenizer():
  """Llama-2's layout: <unk> <s> </s>, the 256 byte pieces, then the other pieces."""
  pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
  pieces += ["▁"] + [str(d) for d in range(10)] + ["+", "="]
  pieces += [chr(c) for c in range(ord("a"), ord("z") + 1)]
  pieces += [chr(c) for c in range(ord("A"), ord("Z") + 1)]
  merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("i", "n"), ("▁", "a")]
  pieces += [a + b for a, b in merges]
  vocab = {p: i for i, p in enumerate(pieces)}
  tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                             byte_fallback=True))
  # As in Llama-2's tokenizer.json: no pre-tokenizer; the normalizer prepends "▁" and
  # turns spaces into "▁"; the decoder undoes that, turns <0x..> pieces back into bytes.
  tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
  tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
  tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<unk>", "<s>", "</s>"]])
  assert tok.encode("3+4=7").tokens == ["▁", "3", "+", "4", "=", "7"]
  assert tok.encode("é").tokens == ["▁", "<0xC3>", "<0xA9>"]
  assert tok.decode(tok.encode("the 12+3=15 é").ids) == "the 12+3=15 é"
  return tok


def common(vocab_size):
  return dict(vocab_size=vocab_size, hidden_size=32, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, intermediate_size=64, num_hidden_layers=2, max_position_embeddings=64,
        rms_norm_eps=1e-5, initializer_range=0.2, dtype="float32")


def llama(tok):
  v = tok.get_vocab()
  config = LlamaConfig(**common(len(v)), tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                         bos_token_id=v["<|begin_of_text|>"], eos_token_id=v["<|end_of_text|>"],
                         # transformers 5 keeps rope_theta and rope scaling in rope_parameters.
                         rope_parameters={"rope_type": "llama3", "rope_theta": 100.0, "factor": 8.0,
                                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 32})
  torch.manual_seed(0)
  return LlamaForCausalLM(config)


def qwen2(tok):
  v = tok.get_vocab()
  config = Qwen2Config(**common(len(v)), tie_word_embeddings=True, use_sliding_window=False,
                         bos_token_id=v["<|endoftext|>"], eos_token_id=v["<|endoftext|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
  torch.manual_seed(1)
  model = Qwen2ForCausalLM(config)
  with torch.no_grad():  # the default init zeroes the q/k/v biases
    for layer in model.model.layers:
      for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
        proj.bias.normal_(0.0, 0.2)
  return model


def reference_outputs(model, vocab_size):
  tokens = np.random.default_rng(0).integers(0, vocab_size, size=(2, 24)).astype(np.int32)
  ids = torch.from_numpy(tokens).long()
  with torch.no_grad():
    logits = model(input_ids=ids).logits.float().numpy()
    # No eos stopping: eos would pad the rest of a row rather than take the argmax.
    gen = GenerationConfig(do_sample=False, max_new_tokens=8, use_cache=True, eos_token_id=None,
                               pad_token_id=0, bos_token_id=None)
    out = model.generate(ids[:, :16], attention_mask=torch.ones_like(ids[:, :16]), generation_config=gen)
    greedy = out[:, 16:].numpy().astype(np.int32)
    # The same 8 steps without the cache, from full forward passes.
    seq = ids[:, :16]
    for _ in range(8):
      seq = torch.cat([seq, model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
  assert greedy.shape == (2, 8) and (seq[:, 16:].numpy() == greedy).all()
  return dict(tokens=tokens, logits=logits, greedy=greedy)


def save_model(model, name, tok_path):
  out = os.path.join(HERE, name)
  os.makedirs(out, exist_ok=True)
  model.set_attn_implementation("eager")
  model.eval()
  ref = reference_outputs(model, model.config.vocab_size)
  model.save_pretrained(out, safe_serialization=True)
  shutil.copyfile(tok_path, os.path.join(out, "tokenizer.json"))
  np.savez_compressed(os.path.join(out, "logits.npz"), **ref)
  return out


def check(out):
  """Reload with transformers and compare; print the checkpoint's tensors."""
  ref = np.load(os.path.join(out, "logits.npz"))
  model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
  with torch.no_grad():
    logits = model(input_ids=torch.from_numpy(ref["tokens"]).long()).logits.numpy()
  np.testing.assert_array_equal(logits, ref["logits"])
  np.testing.assert_array_equal(reference_outputs(model, model.config.vocab_size)["greedy"], ref["greedy"])
  raw = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
  text = "<|begin_of_text|>The cat sees 12+13=25 apples.<|eot_id|>"
  hfs = [PreTrainedTokenizerFast(tokenizer_file=os.path.join(out, "tokenizer.json"))]
  # AutoTokenizer on a qwen2 directory always builds transformers 5's Qwen2Tokenizer,
  # which swaps in Qwen2's own pre-tokenizer (digits one by one, NFC), whatever
  # tokenizer_config.json says; on a llama one it keeps tokenizer.json as it is.
  if model.config.model_type == "llama":
    hfs.append(AutoTokenizer.from_pretrained(out))
  for hf in hfs:
    assert hf.encode(text) == raw.encode(text).ids, type(hf)
  print(f"{os.path.relpath(out)}: logits reproduce; |logits| mean {np.abs(ref['logits']).mean():.3f}; "
          f"greedy {ref['greedy'].tolist()}")
  with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
    for k in f.keys():
      t = f.get_tensor(k)
      print(f"  {k:45s} {tuple(t.shape)} {t.dtype}")


def main():
  tok = byte_level_tokenizer()
  tok_path = os.path.join(HERE, "tokenizer.json")
  tok.save(tok_path)
  os.makedirs(os.path.join(HERE, "byte_fallback"), exist_ok=True)
  byte_fallback_tokenizer().save(os.path.join(HERE, "byte_fallback", "tokenizer.json"))
  for name, build in (("llama", llama), ("qwen2", qwen2)):
    check(save_model(build(tok), name, tok_path))


if __name__ == "__main__":
  main()
