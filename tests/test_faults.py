"""The shell under faults (#13): nothing lost, nothing shared by accident.

A second run into a workdir in use, a failing or damaged ``config.json``, a bad config
value, a full disk, a run that stops learning or diverges, a damaged dataset: each ends
in one line naming the problem, and the workdir's files are as they were.
"""

import errno
import glob
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import imitation
from experiments import launch
from twoplayer_jax import batches, checkpoint, files, models, train
from twoplayer_jax.data import build, sources
from twoplayer_jax.metrics import MetricsWriter
from twoplayer_jax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, JAX_PLATFORMS="cpu")


def snapshot(directory) -> dict[str, bytes]:
  """Every file under ``directory`` (relative path to its bytes)."""
  found = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      found[os.path.relpath(path, directory)] = open(path, "rb").read()
  return found


def python(*args, timeout=120):
  """``python *args`` from the repository root on the CPU."""
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                        text=True, timeout=timeout)


def launched(script: str, workdir, *args, **kwargs):
  """``script`` (which ends in ``launch.run(main)``) run as an experiment is."""
  return python("-c", script, "--config", "configs/imitation.py:smoke", "--workdir",
                str(workdir), *args, **kwargs)


# Workdir lock.

HOLD_LOCK = """
import time
from experiments import launch
def main(argv):
  with launch.lock(launch.WORKDIR.value):
    print("locked", flush=True)
    time.sleep(120)
launch.run(main)
"""


@pytest.mark.subprocess
def test_a_second_run_into_a_workdir_in_use_is_refused_naming_the_holder(tmp_path):
  workdir = tmp_path / "run"
  holder = subprocess.Popen(
      [sys.executable, "-c", HOLD_LOCK, "--config", "configs/imitation.py:smoke", "--workdir",
       str(workdir)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "locked\n"
    (workdir / "metrics.jsonl").write_text('{"step": 1}\n')
    before = snapshot(workdir)
    recorded = json.loads((workdir / ".lock").read_text())
    assert recorded["pid"] == holder.pid and recorded["host"] == socket.gethostname()
    refusal = (f"workdir {workdir} is in use by process {holder.pid} on host "
               f"{socket.gethostname()} (since {recorded['since']}); wait for it to finish or "
               "use another --workdir")

    proc = launched(HOLD_LOCK, workdir)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"WorkdirInUseError: {refusal}"]
    with pytest.raises(files.WorkdirInUseError) as error:
      with files.lock(workdir):
        pass
    assert str(error.value) == refusal
    assert snapshot(workdir) == before
  finally:
    holder.kill()  # SIGKILL: it never releases the lock itself.
    holder.communicate()
  # The operating system released the dead holder's lock: it does not block.
  with files.lock(workdir):
    assert json.loads((workdir / ".lock").read_text())["pid"] == os.getpid()


# config.json.

def smoke(**changes):
  config = imitation.get_config("smoke")
  config.update(changes)
  return config


def test_config_json_is_rewritten_only_when_it_changes(tmp_path):
  path = tmp_path / "config.json"
  launch.prepare_workdir(smoke(), str(tmp_path))
  first = os.stat(path)
  launch.prepare_workdir(smoke(), str(tmp_path))  # A resume: nothing to write.
  again = os.stat(path)
  assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
  launch.prepare_workdir(smoke(log_every=7), str(tmp_path))  # A resumable change.
  assert json.loads(path.read_text())["log_every"] == 7


@pytest.mark.parametrize("damaged", ["", '{"seed": 0, "dataset'])
def test_a_damaged_config_json_is_one_line_naming_it(tmp_path, damaged):
  path = tmp_path / "config.json"
  path.write_text(damaged)
  before = snapshot(tmp_path)
  with pytest.raises(launch.ConfigError) as error:
    launch.prepare_workdir(smoke(), str(tmp_path))
  message = str(error.value)
  assert re.fullmatch(rf"{path} is damaged \(.+\); delete it and run again to record this "
                      r"config in it \(checkpoints and metrics are kept\)", message)
  assert "\n" not in message
  assert snapshot(tmp_path) == before


FAILING_WRITE = """
import resource, signal, sys
from configs import imitation
from experiments import launch
config = imitation.get_config("smoke")
config.log_every = 7  # A change a resumed run may make: config.json is rewritten.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # A write past the limit fails (EFBIG).
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
launch.prepare_workdir(config, sys.argv[1])
"""


@pytest.mark.subprocess
def test_a_failing_write_of_config_json_leaves_the_earlier_one_whole(tmp_path):
  launch.prepare_workdir(smoke(), str(tmp_path))
  before = snapshot(tmp_path)
  proc = python("-c", FAILING_WRITE, str(tmp_path))
  assert proc.returncode == 1 and "OSError: [Errno 27] File too large" in proc.stderr
  assert snapshot(tmp_path) == before  # No temporary file left either.


# Validation before anything is written.

@pytest.mark.subprocess
@pytest.mark.parametrize("override, message", [
    ("--config.dataset=game_transcripts/chess_expert",
     "ConfigError: config.dataset = 'game_transcripts/chess_expert': not a dataset the data "
     "package knows; known: game_transcripts/arithmetic_expert, "),
    ("--config.num_steps=-5", "ConfigError: config.num_steps = -5: must be a positive integer"),
    ("--config.batch_size=-8", "ConfigError: config.batch_size = -8: must be a positive integer"),
])
def test_a_bad_config_value_is_one_line_and_writes_nothing(tmp_path, override, message):
  workdir = tmp_path / "run"
  proc = python("-m", "experiments.imitation", "--config", "configs/imitation.py:smoke",
                "--workdir", str(workdir), f"--config.data_dir={tmp_path / 'data'}", override)
  assert proc.returncode == 1 and proc.stdout == ""
  [line] = proc.stderr.splitlines()
  assert line.startswith(message)
  assert not workdir.exists() and not (tmp_path / "data").exists()


@pytest.mark.subprocess
@pytest.mark.parametrize("experiment, override, message", [
    ("red_team", "--config.rounds=0", "ConfigError: need rounds >= 1 (got 0)"),
    ("pipeline", "--config.reward_model_from=rlhf",
     "ConfigError: config.reward_model_from must be 'pretrain' or 'sft', got 'rlhf'"),
    ("chain_of_thought", "--config.token_budget=1", "ConfigError: token_budget=1 buys no step"),
])
def test_an_experiments_own_check_is_one_line_and_writes_nothing(tmp_path, experiment, override,
                                                                 message):
  workdir = tmp_path / "run"
  proc = python("-m", f"experiments.{experiment}", "--config",
                f"configs/{experiment}.py:smoke", "--workdir", str(workdir),
                f"--config.data_dir={tmp_path / 'data'}", override)
  assert proc.returncode == 1 and proc.stdout == ""
  [line] = proc.stderr.splitlines()
  assert line.startswith(message)
  assert not workdir.exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("field, value, message", [
    ("sft.batch_size", 0, "config.sft.batch_size = 0: must be a positive integer"),
    ("log_every", True, "config.log_every = True: must be a positive integer"),
    ("in_context.num_examples", 0, "config.in_context.num_examples = 0: must be a positive "
     "integer"),
    ("num_examples.sft", 0, "config.num_examples.sft = 0: must be a positive integer"),
    ("rl.group_size", 2.0, "config.rl.group_size = 2.0: must be a positive integer"),
    ("rl.warmup_steps", -1, "config.rl.warmup_steps = -1: must be a non-negative integer"),
    ("rl.learning_rate", float("nan"), "config.rl.learning_rate = nan: must be a positive "
     "number"),
    ("mesh.data", 0, "config.mesh.data = 0: must be a positive integer, or -1 for all the "
     "devices left"),
])
def test_check_config_names_the_field_by_its_path(tmp_path, field, value, message):
  def config(*bad):
    fields = {"log_every": 5, "sft": {"batch_size": 16}, "num_examples": {"sft": 64},
              "rl": {"group_size": 4, "warmup_steps": 0, "learning_rate": 1e-3},
              "mesh": {"data": -1, "fsdp": 1}, "in_context": {"num_examples": (0, 1, 4)}}
    if bad:
      parent, _, name = field.rpartition(".")
      (fields[parent] if parent else fields)[name] = bad[0]
    return ml_collections.ConfigDict(fields)

  launch.check_config(config())
  with pytest.raises(launch.ConfigError) as error:
    launch.prepare_workdir(config(value), str(tmp_path / "run"))
  assert str(error.value) == message
  assert not (tmp_path / "run").exists()


def test_every_shipped_config_passes_the_checks():
  for path in glob.glob(os.path.join(ROOT, "configs", "*.py")):
    spec = importlib.util.spec_from_file_location("config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for variant in ("", "smoke"):
      launch.check_config(module.get_config(variant))


# A full disk.

OUT_OF_SPACE = """
import errno, os, threading, time
from experiments import launch
def main(argv):
  # A background thread like Orbax's saves: a normal exit would wait for it.
  threading.Thread(target=time.sleep, args=(600,)).start()
  try:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "checkpoints/24/state")
  except OSError as e:
    raise ValueError("TensorStore failed to write the array") from e
launch.run(main)
"""


@pytest.mark.subprocess
def test_a_full_disk_is_one_line_naming_the_last_complete_checkpoint(tmp_path):
  workdir = tmp_path / "run"
  for step, mtime in (("checkpoints/8", 1), ("sft/checkpoints/12", 2),
                      ("sft/checkpoints/16.orbax-checkpoint-tmp-3", 3)):
    os.makedirs(workdir / step)
    os.utime(workdir / step, (mtime, mtime))
  before = snapshot(workdir)
  proc = launched(OUT_OF_SPACE, workdir, timeout=60)
  assert proc.returncode == 1
  assert proc.stderr.splitlines() == [
      f"No space left on device while writing the run in {workdir}; the last complete "
      f"checkpoint is {workdir}/sft/checkpoints/12; free space and run the same command to "
      "resume"]
  assert snapshot(workdir) == before


def test_a_full_disk_is_recognised_in_the_chain_or_the_message(tmp_path):
  # pylint: disable=protected-access
  try:
    try:
      raise OSError(errno.ENOSPC, "full")
    except OSError:
      raise RuntimeError("saving failed")  # Raised during the other: its __context__.
  except RuntimeError as e:
    assert launch._out_of_space(e)
  assert launch._out_of_space(ValueError("write: No space left on device [OS error 28]"))
  assert not launch._out_of_space(OSError(errno.EACCES, "denied"))
  assert launch.last_checkpoint(str(tmp_path)) is None


# Health checks in fit.

def tiny_state(learning_rate=1e-2):
  tx = train.optimizer(learning_rate, 100)
  return train.create({"w": jnp.ones(4)}, tx, jax.random.key(0)), tx


class Batches:
  """Batches of nothing, with the iterator state a checkpoint stores."""

  def __init__(self):
    self.index = 0

  def __next__(self):
    self.index += 1
    return {}

  def get_state(self):
    return {"next_index": self.index}


def test_gradients_of_exactly_zero_stop_the_run_naming_the_step(tmp_path):
  state, tx = tiny_state()

  @jax.jit
  def update(state, batch):
    del batch
    # Gradients die from step 5 on.
    grads = {"w": jnp.where(state.step + 1 >= 5, 0.0, 1.0) * jnp.ones(4)}
    return train.apply_gradients(state, grads, tx), {"loss": jnp.float32(1.0),
                                                     "grad_norm": optax.tree.norm(grads)}

  ckpt = checkpoint.Checkpoints(tmp_path, every=2, keep=5, async_save=False)
  writer = MetricsWriter(tmp_path, every=2, progress=False)
  with pytest.raises(loop.TrainingError) as error:
    loop.fit(update, state, Batches(), 20, writer=writer, checkpoints=ckpt, sync_every=2)
  writer.close()
  assert str(error.value) == (
      "step 7: grad_norm has been exactly 0 for 3 steps in a row (zero_grad_steps): the "
      "parameters no longer learn; stopping, the last good checkpoint is kept")
  assert isinstance(error.value, FloatingPointError)
  # Step 8 (the sync after step 7) was never saved; the checkpoints before it were.
  assert ckpt.steps() == [2, 4, 6]
  ckpt.close()


def test_health_warn_only_logs_and_trains_on(tmp_path, caplog):
  state, tx = tiny_state()
  update = jax.jit(lambda state, batch: (
      train.apply_gradients(state, {"w": jnp.zeros(4)}, tx),
      {"loss": jnp.float32(1.0), "grad_norm": jnp.float32(0.0)}))
  writer = MetricsWriter(tmp_path, every=1, progress=False)
  state, stopped = loop.fit(update, state, Batches(), 4, writer=writer,
                            health=loop.Health(warn_only=True))
  writer.close()
  assert int(state.step) == 4 and not stopped
  assert "UNHEALTHY RUN" in caplog.text and "step 3: grad_norm" in caplog.text


def test_a_diverging_run_stops_naming_max_param_rms(tmp_path):
  config = models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64,
                                    max_length=16)
  model = models.make(config)
  tx = train.optimizer(1e6, 10)  # No warmup: the first step is at the full rate.
  state = train.create(model.init(jax.random.key(0)), tx, jax.random.key(1))
  tokens = jax.random.randint(jax.random.key(2), (4, 16), 0, 256)
  stream = iter(lambda: batches.Turns(tokens, jnp.ones((4, 16))), None)
  update = jax.jit(train.imitation_step(model, tx))
  writer = MetricsWriter(tmp_path, every=1, progress=False)
  with pytest.raises(loop.TrainingError, match=(
      r"^step 1: the parameters' root-mean-square is \S+, above max_param_rms=1000: the run "
      r"diverged \(is the learning rate too high\?\); stopping, the last good checkpoint is "
      r"kept$")):
    loop.fit(update, state, stream, 10, writer=writer, sync_every=1)
  writer.close()


# A damaged dataset.

def records(dataset, data_dir):
  source = sources.load(dataset, "train", data_dir)
  return sorted(source.__getitems__(range(len(source))), key=lambda r: r["example_id"])


def delete_info(data_dir):
  os.remove(os.path.join(data_dir, "dataset_info.json"))


def truncate_shard(data_dir):
  name = next(f for f in os.listdir(data_dir) if ".array_record-" in f)
  os.truncate(os.path.join(data_dir, name), 70_000)


def test_a_damaged_dataset_names_the_command_that_repairs_it(tmp_path, capsys):
  dataset, data_dir = "game_transcripts/arithmetic_expert", str(tmp_path)
  built = build.build(dataset, data_dir, num_examples=64, batch_size=64)
  want = records(dataset, data_dir)
  command = (f"python -m twoplayer_jax.data.build --dataset {dataset} --num_examples 64 "
             f"--num_validation 0 --seed 0 --batch_size 64 --data_dir {data_dir}")
  for damage in (delete_info, truncate_shard):
    damage(built.data_dir)
    with pytest.raises(sources.NotBuiltError) as error:
      sources.load(dataset, "train", data_dir)
    message = str(error.value)
    assert message.startswith(f"dataset {dataset} in {data_dir} is damaged: ")
    assert message.endswith(f"; build it again with: {command}") and "\n" not in message
    capsys.readouterr()
    # The command, as a person would paste it.
    build.FLAGS.unparse_flags()
    build.FLAGS(["build", *shlex.split(command.removeprefix("python -m twoplayer_jax.data.build "))])
    build.main([])
    out = capsys.readouterr().out
    assert out.startswith(f"repairing {dataset}/1.1.0 in {data_dir}: ")
    assert out.count("repairing") == 1
    for got, expected in zip(records(dataset, data_dir), want, strict=True):
      jax.tree.map(np.testing.assert_array_equal, got, expected)
  build.FLAGS.unparse_flags()


def test_dataset_messages_are_quiet(tmp_path, capsys, caplog):
  """No "Downloading ... Unknown size", no "Using custom data configuration"."""
  from twoplayer_jax.data import configs  # pylint: disable=import-outside-toplevel
  config = configs.transcripts_config("arithmetic", {"expert": 1.0}, "quiet_sums")
  build.build("game_transcripts", str(tmp_path), num_examples=64, batch_size=64, config=config)
  sources.load("game_transcripts", "train", str(tmp_path), config=config)
  out = capsys.readouterr().out
  assert "Unknown size" not in out and "downloaded" not in out
  assert out.startswith("Building game_transcripts/quiet_sums/1.1.0 in ")
  assert "Using custom data configuration" not in caplog.text

