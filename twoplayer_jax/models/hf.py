"""Hugging Face checkpoints of Llama and Qwen2: ``config.json`` and safetensors in, the
decoder's parameter tree out, and back.

The table from Hugging Face names to parameters uses transposes and reshapes only (a
linear layer's ``[out, in]`` weight becomes ``[in, heads, head_dim]``): both sides
rotate in the split-half layout, so no permutation is needed. Import reads every tensor
of the checkpoint into a parameter and fills every parameter (a scalar head, which no
language model checkpoint has, starts at zero), or names what is left over. With a
mesh's shardings, each parameter is placed split as it is read, one tensor on
the host at a time, so a model larger than one device's memory loads onto the mesh.

  config = hf.config_from_hf(hf.read_config(directory), max_length=128)
  params = hf.load(directory, config)
  hf.save(out_directory, config, params)
"""

import contextlib
import glob
import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from twoplayer_jax.models import decoder
from twoplayer_jax.models.decoder import DecoderConfig, Llama3Scaling

FAMILIES = ("llama", "qwen2")
_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def read_config(directory: str) -> dict:
  """The ``config.json`` of a Hugging Face model directory."""
  path = os.path.join(directory, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{directory} has no config.json: not a Hugging Face model "
                            "directory")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _rope(hf: dict) -> tuple[float, Llama3Scaling | None]:
  """The rotary base and scaling, spelled as ``rope_parameters`` (transformers 5) or
  ``rope_theta`` and ``rope_scaling`` (before)."""
  rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
  base = float(rope.get("rope_theta", hf.get("rope_theta", 10_000.0)))
  kind = rope.get("rope_type", rope.get("type", "default"))
  if kind == "default":
    return base, None
  if kind != "llama3":
    raise ValueError(f"rope type {kind!r} is not supported (only the default and 'llama3')")
  return base, Llama3Scaling(float(rope["factor"]), float(rope["low_freq_factor"]),
                             float(rope["high_freq_factor"]),
                             int(rope["original_max_position_embeddings"]))


def config_from_hf(hf: dict, *, max_length: int | None = None, dtype: str = "float32",
                   param_dtype: str = "float32", scalar_head: bool = False) -> DecoderConfig:
  """The ``DecoderConfig`` of a Hugging Face ``config.json`` (as a dict).

  Args:
    max_length: the longest sequence to handle (its rotary table and default cache); at
      most the checkpoint's ``max_position_embeddings``, which is the default.
    dtype, param_dtype, scalar_head: as ``DecoderConfig``'s.

  Raises:
    ValueError: the family or a feature of it is not supported, or ``max_length`` exceeds
      the checkpoint's.
  """
  family = hf.get("model_type")
  if family not in FAMILIES:
    raise ValueError(f"model_type {family!r} is not supported; the families are {FAMILIES}")
  if hf.get("mlp_bias") or hf.get("attention_bias"):
    raise ValueError(f"a {family} checkpoint with mlp_bias or attention_bias is not supported")
  if hf.get("use_sliding_window"):
    raise ValueError("sliding-window attention (use_sliding_window) is not supported")
  if hf.get("hidden_act", "silu") != "silu":
    raise ValueError(f"hidden_act {hf['hidden_act']!r} is not supported (only 'silu')")
  longest = int(hf["max_position_embeddings"])
  max_length = longest if max_length is None else int(max_length)
  if not 0 < max_length <= longest:
    raise ValueError(f"max_length={max_length}: must be 1 to the checkpoint's "
                     f"max_position_embeddings={longest}")
  base, scaling = _rope(hf)
  heads = int(hf["num_attention_heads"])
  return DecoderConfig(
      family=family, vocab_size=int(hf["vocab_size"]), num_layers=int(hf["num_hidden_layers"]),
      d_model=int(hf["hidden_size"]), num_heads=heads,
      num_kv_heads=int(hf.get("num_key_value_heads") or heads),
      head_dim=int(hf.get("head_dim") or hf["hidden_size"] // heads),
      d_ff=int(hf["intermediate_size"]), max_length=max_length, rope_base=base,
      rope_scaling=scaling, norm_eps=float(hf["rms_norm_eps"]),
      tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
      qkv_bias=family == "qwen2", dtype=dtype, param_dtype=param_dtype,
      scalar_head=scalar_head)


def config_to_hf(config: DecoderConfig) -> dict:
  """A Hugging Face ``config.json`` (as a dict) for ``config``'s network."""
  hf = {"architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[
            config.family]],
        "model_type": config.family, "vocab_size": config.vocab_size,
        "hidden_size": config.d_model, "intermediate_size": config.d_ff,
        "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads, "head_dim": config.head_dim,
        "max_position_embeddings": config.max_length, "rms_norm_eps": config.norm_eps,
        "hidden_act": "silu", "tie_word_embeddings": config.tie_embeddings,
        "torch_dtype": config.param_dtype, "rope_theta": config.rope_base}
  if config.rope_scaling is not None:
    s = config.rope_scaling
    hf["rope_scaling"] = {"rope_type": "llama3", "factor": s.factor,
                          "low_freq_factor": s.low_freq_factor,
                          "high_freq_factor": s.high_freq_factor,
                          "original_max_position_embeddings": s.original_length}
  if config.family == "llama":
    hf.update(attention_bias=False, mlp_bias=False)
  else:
    hf.update(use_sliding_window=False)
  return hf


# A parameter's path and how its tensor converts: to_params(tensor) and to_hf(param).
_Entry = tuple[tuple[str, ...], Callable, Callable]


def names(config: DecoderConfig) -> dict[str, _Entry]:
  """Hugging Face tensor name -> (parameter path, to parameter, to tensor)."""
  d, h, kv, k = config.d_model, config.num_heads, config.num_kv_heads, config.head_dim
  same = (lambda x: x, lambda x: x)
  linear = (lambda x: x.T, lambda x: x.T)  # [out, in] <-> [in, out]
  heads = lambda n: (lambda x: x.T.reshape(d, n, k), lambda x: x.reshape(d, n * k).T)
  table = {"model.embed_tokens.weight": (("embed",),) + same,
           "model.norm.weight": (("final_norm", "scale"),) + same}
  if not config.tie_embeddings:
    table["lm_head.weight"] = (("unembed",),) + linear
  for i in range(config.num_layers):
    hf, ours = f"model.layers.{i}.", f"block_{i}"
    table.update({
        hf + "input_layernorm.weight": ((ours, "attn_norm", "scale"),) + same,
        hf + "post_attention_layernorm.weight": ((ours, "mlp_norm", "scale"),) + same,
        hf + "self_attn.q_proj.weight": ((ours, "q"),) + heads(h),
        hf + "self_attn.k_proj.weight": ((ours, "k"),) + heads(kv),
        hf + "self_attn.v_proj.weight": ((ours, "v"),) + heads(kv),
        hf + "self_attn.o_proj.weight": (
            (ours, "out"),
            lambda x: x.T.reshape(h, k, d), lambda x: x.reshape(h * k, d).T),
        hf + "mlp.gate_proj.weight": ((ours, "gate"),) + linear,
        hf + "mlp.up_proj.weight": ((ours, "up"),) + linear,
        hf + "mlp.down_proj.weight": ((ours, "down"),) + linear,
    })
    if config.qkv_bias:
      for name, n in (("q", h), ("k", kv), ("v", kv)):
        table[f"{hf}self_attn.{name}_proj.bias"] = (
            (ours, f"{name}_bias"), lambda x, n=n: x.reshape(n, k), lambda x: x.reshape(-1))
  return table


def _files(directory: str) -> list[str]:
  files = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
  if not files:
    raise FileNotFoundError(f"{directory} holds no *.safetensors file")
  return files


def load(directory: str, config: DecoderConfig, shardings: Any = None) -> Any:
  """The parameters of ``config``'s decoder from ``directory``'s safetensors, in
  ``config.param_dtype``: on the default device, or placed by ``shardings`` (a pytree of
  ``jax.sharding.Sharding`` matching the parameters, e.g. ``sharding.logical_to_sharding``
  of ``decoder.make(config).logical_axes()``) as each is read.

  Raises:
    ValueError: a tensor of the checkpoint has no parameter, a parameter no tensor, or a
      shape differs; each message names them.
  """
  with contextlib.ExitStack() as stack:  # Each file opened once, its tensors read lazily.
    found = {name: f for path in _files(directory)
             for f in [stack.enter_context(safe_open(path, framework="numpy"))]
             for name in f.keys()}
    return _read(directory, config, found, shardings)


def _read(directory: str, config: DecoderConfig, found: dict, shardings: Any) -> Any:
  """``load``'s parameters from ``found``: tensor name -> its open safetensors file."""
  abstract = jax.eval_shape(decoder.make(config).init, jax.random.key(0))
  table = names(config)
  unused = sorted(set(found) - set(table))
  missing = sorted(set(table) - set(found))
  if unused or missing:
    raise ValueError(f"{directory} does not match the {config.family} config: "
                     f"{len(unused)} tensors without a parameter {unused[:5]}, "
                     f"{len(missing)} parameters without a tensor {missing[:5]}")
  params = jax.tree.map(lambda x: None, abstract)
  for name, (path, to_params, _) in table.items():
    target = _at(abstract, path)
    tensor = found[name].get_tensor(name)
    value = np.asarray(to_params(tensor)).astype(_DTYPES[config.param_dtype])
    if value.shape != target.shape:
      raise ValueError(f"tensor {name} of shape {tensor.shape} gives {value.shape}; the "
                       f"parameter {'/'.join(path)} is {target.shape}")
    if shardings is None:
      leaf = jnp.asarray(value)
    else:
      leaf = jax.make_array_from_callback(value.shape, _at(shardings, path),
                                          lambda index, v=value: v[index])
    _put(params, path, leaf)
  if config.scalar_head:  # A language model has none: it starts at zero.
    params["scalar_head"] = jnp.zeros((config.d_model,), config.param_dtype)
    if shardings is not None:
      params["scalar_head"] = jax.device_put(params["scalar_head"], shardings["scalar_head"])
  return params


def save(directory: str, config: DecoderConfig, params: Any) -> None:
  """Writes ``params`` (one model's, no seed axis) as ``model.safetensors`` and
  ``config.json`` in the Hugging Face layout, readable by ``transformers``; a scalar head
  is left out (no Hugging Face class has one)."""
  os.makedirs(directory, exist_ok=True)
  tensors = {}
  for name, (path, _, to_hf) in names(config).items():
    tensors[name] = np.ascontiguousarray(to_hf(np.asarray(jax.device_get(_at(params, path)))))
  save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
  with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
    json.dump(config_to_hf(config), f, indent=2)


def _at(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def _put(tree, path, value):
  for key in path[:-1]:
    tree = tree[key]
  tree[path[-1]] = value
