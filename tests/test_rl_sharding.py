"""The policy-learning iteration sharded: its games split over the devices for play and
for the update give the parameters of one device, on 8 devices of one process and on 2
processes of 4 (tests/rl_sharding_check.py runs each in processes of its own)."""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.subprocess

CHECK = pathlib.Path(__file__).with_name("rl_sharding_check.py")


def start(out, workdir, devices, *multiprocess):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices),
         # Two processes compiling on two busy cores can reach their first collective far
         # apart; give gloo five minutes. (After the session's XLA_FLAGS: see conftest.py.)
         "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_cpu_collective_timeout_seconds=300"}
  return subprocess.Popen([sys.executable, str(CHECK), str(out), str(workdir), *multiprocess],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(*procs):
  for proc in procs:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]


@pytest.fixture(scope="module")
def params(tmp_path_factory):
  root = tmp_path_factory.mktemp("rl_sharding")
  finish(start(root / "one.npz", root / "one", 1))
  finish(start(root / "eight.npz", root / "eight", 8))
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{s.getsockname()[1]}"
  finish(*[start(root / "pair.npz", root / "pair", 4, address, "2", str(i)) for i in range(2)])
  return {name: dict(np.load(root / f"{name}.npz")) for name in ("one", "eight", "pair")}


def test_the_games_were_split_over_the_devices_and_learning_moved_the_parameters(params):
  assert int(params["one"]["devices"]) == 1 and str(params["one"]["games_axes"]) == ""
  assert float(params["one"]["moved"]) > 100 * 1e-5  # Far more than the tolerance.
  for name in ("eight", "pair"):
    assert int(params[name]["devices"]) == 8 and str(params[name]["games_axes"]) == "data"


@pytest.mark.parametrize("name", ["eight", "pair"])
def test_sharded_iterations_give_the_parameters_of_one_device(params, name):
  leaves = [k for k in params["one"] if k not in ("devices", "games_axes", "moved")]
  for key in leaves:
    np.testing.assert_allclose(params[name][key], params["one"][key], atol=1e-5, rtol=0,
                               err_msg=key)
