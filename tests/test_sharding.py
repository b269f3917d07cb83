"""Sharded, pmapped and shard_mapped update steps against the single-device step.

The measurements run on 8 fake CPU devices in one subprocess (tests/sharding_check.py):
the device count is fixed when JAX starts, and the rest of the suite runs on one device.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess

CHECK = pathlib.Path(__file__).with_name("sharding_check.py")
TOL = 1e-5
RUNS = ("data8", "data2_fsdp4", "data4_tensor2", "pmap", "shard_map")
SPECS = {
    "data8": {"embed": [None, None], "qkv": [None] * 4, "out": [None] * 3,
              "mlp_in": [None, None]},
    "data2_fsdp4": {"embed": [None, "fsdp"], "qkv": [None, "fsdp", None, None],
                    "out": [None, None, "fsdp"], "mlp_in": ["fsdp", None]},
    "data4_tensor2": {"embed": ["tensor", None], "qkv": [None, None, "tensor", None],
                      "out": ["tensor", None, None], "mlp_in": [None, "tensor"]},
}


@pytest.fixture(scope="module")
def measured():
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": "8", "JAX_PLATFORMS": "cpu"}
  done = subprocess.run([sys.executable, str(CHECK)], env=env, capture_output=True,
                        text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  return json.loads(done.stdout.splitlines()[-1])


def test_the_check_ran_on_8_devices_and_the_step_moved_the_parameters(measured):
  assert measured["devices"] == 8
  # Equality within TOL means something only if the step moves parameters far more.
  assert measured["moved"] > 100 * TOL


@pytest.mark.parametrize("run", RUNS)
def test_step_matches_the_single_device_step(measured, run):
  got, single = measured[run], measured["single"]
  assert got["param_diff"] < TOL, got
  # Adam's first steps barely depend on the gradient's scale, so the loss and gradient
  # norm are compared too: a sum instead of a mean over devices shows there.
  for name in ("loss", "grad_norm"):
    assert got[name] == pytest.approx(single[name], rel=TOL), name
  assert got["tokens"] == single["tokens"]


@pytest.mark.parametrize("mesh", SPECS)
def test_parameters_and_adam_moments_are_sharded_by_the_rules(measured, mesh):
  assert measured[mesh]["specs"] == SPECS[mesh]
  assert measured[mesh]["mu_specs"] == SPECS[mesh]
  assert measured[mesh]["count_spec"] == [] and measured[mesh]["rng_spec"] == []


def test_a_dimension_the_mesh_does_not_divide_stays_replicated(measured):
  # tensor=8: 4 heads and a 260-token vocabulary stay whole, the 64 MLP units split.
  assert measured["tensor8_specs"] == {"embed": [None, None], "qkv": [None] * 4,
                                       "out": [None] * 3, "mlp_in": [None, "tensor"]}


def test_a_mesh_over_some_of_the_devices(measured):
  assert measured["subset_mesh"] == {"data": 1, "fsdp": 4, "tensor": 1}


@pytest.mark.parametrize("case, words", [
    ("mesh_too_small", ["data=3", "8 devices"]),
    ("mesh_not_dividing", ["fsdp=3", "8 devices"]),
    ("two_free_axes", ["at most one of them -1"]),
    ("batch_not_dividing", ["entry .tokens", "12 rows", "data * fsdp = 8"]),
    ("unknown_logical_axis", ["'width'"]),
])
def test_bad_input_gives_a_clear_error(measured, case, words):
  message = measured["errors"][case]
  assert message is not None, f"{case} raised no ValueError"
  for word in words:
    assert word in message, message
