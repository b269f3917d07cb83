"""Llama and Qwen2 checkpoints as players: the imported decoders give the logits
``transformers`` gave (committed with tiny random checkpoints made by
``tests/pretrained/make.py``), with and without the KV cache; import then export
round-trips bitwise, and a stage trained from a checkpoint exports; the vocabulary bridge spells every byte with the tokenizer's own
piece; a bridged model plays a game whose recorded log-probabilities equal the training
pass's; and an experiment starts from a checkpoint."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from twoplayer_jax import checkpoint, games, models, objectives, players, rollout, vocab
from twoplayer_jax.models import bridge, convert, hf
from twoplayer_jax.train import stages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "tests", "pretrained")
FAMILIES = ("llama", "qwen2")


def tensors(directory):
  with safe_open(os.path.join(directory, "model.safetensors"), "numpy") as f:
    return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module", params=FAMILIES)
def imported(request):
  directory = os.path.join(HERE, request.param)
  config = hf.config_from_hf(hf.read_config(directory))
  return directory, config, models.make(config), hf.load(directory, config)


def test_configs_read_as_their_families(imported):
  _, config, _, _ = imported
  assert (config.num_heads, config.num_kv_heads, config.head_dim) == (2, 1, 16)
  if config.family == "llama":
    assert config.rope_scaling is not None and not config.tie_embeddings and not config.qkv_bias
    # Llama 3's scaling leaves the fastest pairs, divides the slowest by the factor, and
    # interpolates between (the ratios transformers computes for this config).
    ratio = config.frequencies / models.decoder.rope_frequencies(16, config.rope_base)
    np.testing.assert_allclose(ratio, [1, 1 / 1.496, 1 / 3.30, 1 / 8, 1 / 8, 1 / 8, 1 / 8, 1 / 8],
                               rtol=2e-3)
  else:
    assert config.rope_scaling is None and config.tie_embeddings and config.qkv_bias


def test_logits_equal_transformers_with_and_without_the_cache(imported):
  directory, config, model, params = imported
  ref = np.load(os.path.join(directory, "logits.npz"))
  tokens = jnp.asarray(ref["tokens"])
  positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
  logits, _, _ = jax.jit(model.apply)(params, tokens, positions)
  np.testing.assert_allclose(logits, ref["logits"], atol=1e-4)

  prefill = 7
  out, _, cache = model.apply(params, tokens[:, :prefill], positions[:, :prefill],
                              model.init_cache(2, tokens.shape[1]))
  step = jax.jit(model.apply)
  outs = [out]
  for t in range(prefill, tokens.shape[1]):
    out, _, cache = step(params, tokens[:, t:t + 1], positions[:, t:t + 1], cache)
    outs.append(out)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), ref["logits"], atol=1e-4)


def test_greedy_decoding_with_the_cache_equals_transformers_generate(imported):
  directory, _, model, params = imported
  ref = np.load(os.path.join(directory, "logits.npz"))
  prompt = jnp.asarray(ref["tokens"][:, :16])
  positions = jnp.broadcast_to(jnp.arange(16), prompt.shape)
  logits, _, cache = model.apply(params, prompt, positions, model.init_cache(2, 24))
  new = []
  for t in range(16, 24):
    token = jnp.argmax(logits[:, -1], -1)
    new.append(token)
    logits, _, cache = model.apply(params, token[:, None], jnp.full((2, 1), t), cache)
  np.testing.assert_array_equal(jnp.stack(new, 1), ref["greedy"])


def test_import_then_export_round_trips_bitwise(imported, tmp_path):
  directory, config, _, params = imported
  hf.save(str(tmp_path), config, params)
  original, exported = tensors(directory), tensors(tmp_path)
  assert sorted(original) == sorted(exported)
  for name, x in original.items():
    assert exported[name].dtype == x.dtype and np.array_equal(exported[name], x), name
  again = hf.config_from_hf(hf.read_config(str(tmp_path)))
  assert again == dataclasses.replace(config, max_length=again.max_length)
  reloaded = hf.load(str(tmp_path), again)
  assert all(jnp.array_equal(a, b) for a, b in zip(jax.tree.leaves(reloaded),
                                                   jax.tree.leaves(params)))


def test_bfloat16_parameters_load_and_give_close_logits(imported):
  directory, config, _, params = imported
  half = dataclasses.replace(config, param_dtype="bfloat16", dtype="bfloat16")
  loaded = hf.load(directory, half)
  for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
    assert x.dtype == jnp.bfloat16 and bool(jnp.all(x == y.astype(jnp.bfloat16)))
  ref = np.load(os.path.join(directory, "logits.npz"))
  tokens = jnp.asarray(ref["tokens"])
  positions = jnp.broadcast_to(jnp.arange(24), tokens.shape)
  logits, _, _ = models.make(half).apply(loaded, tokens, positions)
  assert logits.dtype == jnp.float32
  # bfloat16 keeps 8 bits of mantissa: a few parts in a thousand per product.
  error = np.abs(np.asarray(logits) - ref["logits"])
  assert error.mean() < 0.02 * np.abs(ref["logits"]).mean() and error.max() < 0.3


def test_parameters_load_onto_a_mesh_by_their_logical_axes(imported):
  from twoplayer_jax import sharding  # pylint: disable=import-outside-toplevel
  directory, config, model, params = imported
  mesh = sharding.make_mesh(data=1, fsdp=1, tensor=-1)
  placed = sharding.logical_to_sharding(mesh, model.logical_axes(), params)
  loaded = hf.load(directory, config, placed)
  for x, s, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(placed), jax.tree.leaves(params)):
    assert x.sharding == s and jnp.array_equal(x, y)


def test_a_checkpoint_that_does_not_match_its_config_is_named(imported, tmp_path):
  directory, config, _, _ = imported
  shutil.copy(os.path.join(directory, "config.json"), tmp_path)
  extra = tensors(directory)
  extra["model.layers.2.mlp.up_proj.weight"] = extra["model.layers.1.mlp.up_proj.weight"]
  del extra["model.norm.weight"]
  save_file(extra, str(tmp_path / "model.safetensors"))
  with pytest.raises(ValueError, match=r"model\.layers\.2\.mlp\.up_proj.*model\.norm\.weight"):
    hf.load(str(tmp_path), config)
  with pytest.raises(ValueError, match="max_position_embeddings=64"):
    hf.config_from_hf(hf.read_config(directory), max_length=65)
  with pytest.raises(ValueError, match="model_type 'gpt2'"):
    hf.config_from_hf({**hf.read_config(directory), "model_type": "gpt2"})


def read(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def test_byte_level_bridge_gives_each_byte_its_own_token():
  tokenizer = read(os.path.join(HERE, "tokenizer.json"))
  symbols = bridge.symbols(tokenizer, **bridge.SPECIALS["llama"])
  spelled = bridge.token_bytes(tokenizer)
  assert [spelled[symbols[b]] for b in range(256)] == [bytes([b]) for b in range(256)]
  pieces = {i: p for p, i in tokenizer["model"]["vocab"].items()}
  assert pieces[symbols[ord("3")]] == "3" and pieces[symbols[ord(" ")]] == "Ġ"
  assert symbols[vocab.EOT] == bridge.special_id(tokenizer, "<|eot_id|>")
  assert symbols[vocab.EOG] == symbols[vocab.PAD] == bridge.special_id(tokenizer, "<|end_of_text|>")
  assert symbols[vocab.BOS] == bridge.special_id(tokenizer, "<|begin_of_text|>")


def test_byte_fallback_bridge_prefers_the_character_piece_to_the_byte_piece():
  tokenizer = read(os.path.join(HERE, "byte_fallback", "tokenizer.json"))
  symbols = bridge.symbols(tokenizer, bos="<s>", eot="</s>", eog="<unk>")
  pieces = {i: p for p, i in tokenizer["model"]["vocab"].items()}
  assert pieces[symbols[ord("3")]] == "3"  # Not <0x33>.
  assert pieces[symbols[ord(" ")]] == "▁"
  assert pieces[symbols[ord(".")]] == "<0x2E>"  # No piece of its own: the byte's.
  assert pieces[symbols[0xFF]] == "<0xFF>"


def test_bridge_errors_name_the_problem():
  tokenizer = read(os.path.join(HERE, "tokenizer.json"))
  with pytest.raises(ValueError, match="must be distinct"):
    bridge.symbols(tokenizer, bos="<|begin_of_text|>", eot="<|eot_id|>", eog="<|eot_id|>")
  with pytest.raises(ValueError, match="no token '<\\|im_start\\|>'"):
    bridge.symbols(tokenizer, bos="<|im_start|>", eot="<|eot_id|>", eog="<|end_of_text|>")
  fallback = read(os.path.join(HERE, "byte_fallback", "tokenizer.json"))
  fallback["model"]["vocab"] = {p: i for p, i in fallback["model"]["vocab"].items()
                                if p not in ("<0x2E>", ".")}
  with pytest.raises(ValueError, match="1 bytes have no single token.*0x2e"):
    bridge.symbols(fallback, bos="<s>", eot="</s>", eog="<unk>")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_bridged_model_plays_and_play_records_the_training_pass_logprobs(family):
  game = games.make("arithmetic", num_digits=2)
  config = models.from_checkpoint(os.path.join(HERE, family), max_length=game.max_length)
  model = models.make(config)
  params = stages.pretrained_start(model, 1)
  params = jax.tree.map(lambda x: x[0], params)
  human = games.player("arithmetic", 1, "human", game)
  two = players.model_player(model, game)
  traj = rollout.play(game, (human, two), (None, params), jax.random.key(0), batch_size=8)
  assert bool(traj.played.any())
  positions = jnp.broadcast_to(jnp.arange(game.max_length), traj.tokens.shape)
  logits, _, _ = model.apply(params, traj.tokens, positions)
  assert logits.shape[-1] == vocab.VOCAB_SIZE
  logp = jnp.take_along_axis(objectives.log_policy(logits[:, :-1]), traj.tokens[:, 1:, None], -1)
  played = traj.played[:, 1:]
  np.testing.assert_allclose(jnp.where(played, logp[..., 0], 0), traj.logprob[:, 1:], atol=2e-6)
  # The bridged logits are the full model's at the symbols' tokens.
  full = models.make(dataclasses.replace(config, symbols=None))
  ids = jnp.asarray(config.symbols)[traj.tokens]
  whole, _, _ = full.apply(params, ids, positions)
  np.testing.assert_allclose(logits, whole[..., jnp.asarray(config.symbols)], atol=1e-5)


def test_a_model_of_another_vocabulary_cannot_play_without_the_bridge():
  game = games.make("arithmetic", num_digits=2)
  config = models.from_checkpoint(os.path.join(HERE, "qwen2"), max_length=game.max_length)
  with pytest.raises(ValueError, match="plays through symbols"):
    players.model_player(models.make(dataclasses.replace(config, symbols=None)), game)


@pytest.mark.subprocess
def test_the_pipeline_starts_from_a_checkpoint(tmp_path, smoke_env):
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.pipeline", "--config", "configs/pipeline.py:smoke",
       "--workdir", str(tmp_path / "work"), f"--config.data_dir={tmp_path / 'data'}",
       f"--config.model.checkpoint={os.path.join(HERE, 'llama')}"],
      cwd=ROOT, env=smoke_env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "claim 1:" in proc.stdout
  with open(tmp_path / "work" / "summary.json") as f:
    assert set(json.load(f)["stages"]) >= {"pretrain", "sft", "rl_payoff"}

  # The trained SFT policy, exported: the checkpoint's tensors, seed 1's trained values.
  stage, llama = str(tmp_path / "work" / "sft"), os.path.join(HERE, "llama")
  assert convert.export(stage, llama, str(tmp_path / "out"), seed=1) > 0
  trained, _ = checkpoint.read_params(stage)
  config = hf.config_from_hf(hf.read_config(str(tmp_path / "out")))
  exported = hf.load(str(tmp_path / "out"), config)
  for x, y in zip(jax.tree.leaves(exported), jax.tree.leaves(trained)):
    assert np.array_equal(x, y[1])
  original = tensors(llama)
  assert {k: v.shape for k, v in tensors(tmp_path / "out").items()} == {
      k: v.shape for k, v in original.items()}
  assert not np.array_equal(tensors(tmp_path / "out")["lm_head.weight"], original["lm_head.weight"])
  assert os.path.exists(tmp_path / "out" / "tokenizer.json")
  with pytest.raises(FileExistsError, match="already holds"):
    convert.export(stage, llama, str(tmp_path / "out"))
  with pytest.raises(ValueError, match="--seed=5: the stage holds 2 runs"):
    convert.export(stage, llama, str(tmp_path / "other"), seed=5)


def test_stages_without_a_start_start_from_the_checkpoint():
  game = games.make("arithmetic", num_digits=2)
  directory = os.path.join(HERE, "llama")
  config = models.from_checkpoint(directory, max_length=game.max_length, scalar_head=True)
  model = models.make(config)
  stage = stages.policy("rl", game, model, {"iterations": 1, "learning_rate": 1e-3},
                        games.player("arithmetic", 1, "human", game), seed=0, num_seeds=2)
  states = jax.jit(stage.init)(stage.start)
  loaded = hf.load(directory, config)
  for x, y in zip(jax.tree.leaves(states.params), jax.tree.leaves(loaded)):
    assert x.shape == (2,) + y.shape and bool(jnp.all(x == y))
  assert stages.pretrained_start(models.make(models.TransformerConfig()), 2) is None
