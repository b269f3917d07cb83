"""The training shell end to end: an experiment launched from its config, on 1 and 8
devices and as 2 processes, preempted on 8 devices and resumed on 1, and refusing bad
input. (Preemption and kill -9 of a multi-stage run: tests/test_exp_pipeline.py.)

Each run is a real subprocess (``python -m experiments.imitation``), as a user or a
TPU VM launches it; its one stage, ``imitation``, lives in ``workdir/imitation``.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from experiments import common
from twoplayer_jax import checkpoint
from twoplayer_jax.train import stages

pytestmark = pytest.mark.subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 120  # Long enough that a signal sent at step 8 or 16 lands mid-run.


def command(workdir, data_dir, *overrides):
  return [sys.executable, "-m", "experiments.imitation",
          "--config", os.path.join(ROOT, "configs/imitation.py:smoke"), "--workdir", workdir,
          f"--config.data_dir={data_dir}", f"--config.num_steps={STEPS}",
          "--config.checkpoint_every=8", "--config.log_every=4", "--config.eval_games=8",
          *overrides]


def environment(devices=1):
  # Every compiled program kept in the persistent cache (see conftest.py), small ones too.
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  # Two processes compiling on two busy cores can reach a collective minutes apart; give
  # them five. (After the session's XLA_FLAGS: see conftest.py.)
  env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                      f" --xla_force_host_platform_device_count={devices}"
                      " --xla_cpu_collective_timeout_seconds=300")
  return env


def launch(workdir, data_dir, *overrides, devices=1, **kwargs):
  return subprocess.Popen(command(workdir, data_dir, *overrides), cwd=ROOT,
                          env=environment(devices), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)


def run(workdir, data_dir, *overrides, devices=1):
  proc = launch(workdir, data_dir, *overrides, devices=devices)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  return out


def wait_for_checkpoint(proc, workdir, step):
  deadline = time.time() + 240
  while not os.path.isdir(os.path.join(workdir, "imitation", "checkpoints", str(step))):
    assert proc.poll() is None and time.time() < deadline, proc.communicate()[0][-3000:]
    time.sleep(0.05)


def preempt(proc):
  """SIGTERM, as a TPU VM is told of its preemption: the run saves and exits cleanly.
  Returns the step it saved."""
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0 and "preempted in stage imitation: saved step" in out, out[-3000:]
  return int(out.split("saved step ")[1].split(";")[0])


def final_params(workdir):
  """The parameters of the run's latest checkpoint, on this process's one device."""
  from configs import imitation  # pylint: disable=import-outside-toplevel
  c = imitation.get_config("smoke")
  model = common.model(c.model)
  block = dict(steps=STEPS, batch_size=c.batch_size, **c.optimizer)
  stage = stages.imitation("imitation", model, block, None, seed=0, num_seeds=1,
                           seq_len=c.seq_len)
  ckpt = checkpoint.Checkpoints(os.path.join(workdir, "imitation"), every=8, keep=3)
  state, _, step = ckpt.restore(jax.eval_shape(stage.init, None), with_data=False)
  ckpt.close()
  assert step == STEPS
  return jax.device_get(state.params)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
  """An uninterrupted run on one device, compiling into a cache of its own."""
  workdir = str(tmp_path_factory.mktemp("reference"))
  out = run(workdir, data_dir, f"--compilation_cache={workdir}/jit-cache")
  assert f'"steps": {STEPS}' in out
  return workdir


def assert_same(a, b, **tolerance):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tolerance), a, b)


def test_a_run_writes_its_config_metrics_checkpoints_and_summary(reference):
  assert {"config.json", "summary.json", "imitation"} <= set(os.listdir(reference))
  # --compilation_cache, not the session's cache the environment names, has its programs.
  compiled = os.listdir(os.path.join(reference, "jit-cache"))
  assert any(n.startswith("jit_step-") for n in compiled), compiled
  stage = os.path.join(reference, "imitation")
  names = set(os.listdir(stage))
  assert {"metrics.jsonl", "stage.json", "checkpoints"} <= names
  assert any(n.startswith("events.out.tfevents") for n in names)
  assert sorted(os.listdir(os.path.join(stage, "checkpoints"))) == ["104", "112", "120"]


def test_a_run_preempted_on_eight_devices_resumes_on_one(tmp_path, data_dir, reference):
  """The checkpoint of an 8-device mesh restores onto a 1-device one."""
  workdir = str(tmp_path)
  proc = launch(workdir, data_dir, "--config.sync_every=1", devices=8)
  wait_for_checkpoint(proc, workdir, 8)
  step = preempt(proc)
  assert os.path.isdir(os.path.join(workdir, "imitation", "checkpoints", str(step)))
  assert f"stage imitation: resumed at step {step}\n" in run(workdir, data_dir, devices=1)
  assert_same(final_params(workdir), final_params(reference), atol=2e-5, rtol=1e-4)


def launch_pair(workdir, data_dir, *overrides):
  """The launcher as 2 processes of 4 CPU devices on this machine, gloo between them."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  return [launch(workdir, data_dir, f"--coordinator_address=127.0.0.1:{port}",
                 "--num_processes=2", f"--process_id={i}", *overrides, devices=4)
          for i in range(2)]


def finish(procs):
  outs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def test_two_processes_train_as_one_mesh_and_stop_together_when_one_is_preempted(
    tmp_path, data_dir, reference):
  """SIGTERM to process 1 only: both processes save the same step (they agree every
  ``sync_every`` steps; a save is collective) and stop cleanly before the end; run again,
  they resume there, and the run ends as the uninterrupted one on one device did."""
  workdir = str(tmp_path)
  procs = launch_pair(workdir, data_dir, "--config.sync_every=1")
  wait_for_checkpoint(procs[0], workdir, 8)
  procs[1].send_signal(signal.SIGTERM)
  outs = finish(procs)
  assert not any(f'"steps": {STEPS}' in out for out in outs)  # Neither ran to the end.
  step = int(outs[0].split("preempted in stage imitation: saved step ")[1].split(";")[0])
  assert 8 <= step < STEPS
  assert os.path.isdir(os.path.join(workdir, "imitation", "checkpoints", str(step)))
  outs = finish(launch_pair(workdir, data_dir))
  assert f"stage imitation: resumed at step {step}\n" in outs[0]  # Process 0 prints.
  assert all(f'"steps": {STEPS}' in out for out in outs)
  # Only process 0 writes metrics, and the resumed run appends after the step it resumed
  # at: each logged step appears once.
  with open(os.path.join(workdir, "imitation", "metrics.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == list(range(4, STEPS + 1, 4))
  assert_same(final_params(workdir), final_params(reference), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("overrides, message", [
    (["--config.no_such_field=1"], "no_such_field"),
    (["--config.batch_size=ten"], "batch_size"),
    (["--config.batch_size=12", "--config.mesh.data=8"],
     "ConfigError: config.batch_size: 12 games per seed and step do not divide over the 8 "
     "devices"),
    (["--config.mesh.data=3"], "does not fit the 8 devices"),
])
def test_bad_input_is_named_before_any_work(tmp_path, data_dir, overrides, message):
  proc = launch(str(tmp_path / "run"), data_dir, *overrides, devices=8)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode != 0 and message in out, out[-3000:]
  assert not os.path.exists(tmp_path / "run")  # Nothing written: no config.json either.


def test_workdir_of_another_config_is_refused_and_kept(tmp_path, data_dir, reference):
  config_before = open(os.path.join(reference, "config.json")).read()
  proc = launch(reference, data_dir, "--config.seed=7")
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode != 0 and "different config" in out and "seed" in out, out[-3000:]
  assert open(os.path.join(reference, "config.json")).read() == config_before
