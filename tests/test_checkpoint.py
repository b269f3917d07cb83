"""Checkpoints: bitwise round trips of a real train state, retention, async saves, damage."""

import dataclasses
import gc
import glob
import json
import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import checkpoint, models, train

CONFIG = models.TransformerConfig(num_layers=1, d_model=32, num_heads=2, d_ff=64, max_length=16)


def make_state(config=CONFIG, seed=0):
  """A train state after two updates, so Adam's moments and counts are not zeros."""
  model = models.make(config)
  tx = train.optimizer(1e-3, 10, warmup_steps=2)
  state = train.create(model.init(jax.random.key(seed)), tx, jax.random.key(seed + 1))

  @jax.jit
  def update(state):
    key, sub = jax.random.split(state.rng)
    leaves, treedef = jax.tree.flatten(state.params)
    keys = jax.random.split(sub, len(leaves))
    grads = treedef.unflatten([jax.random.normal(k, x.shape, x.dtype)
                               for k, x in zip(keys, leaves)])
    return train.apply_gradients(state, grads, tx, key)

  return update(update(state))


@pytest.fixture(scope="module")
def state():
  return make_state()


def bits(x):
  x = jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x
  return np.asarray(x).tobytes()


def assert_bitwise_equal(got, want):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert bits(a) == bits(b)


def test_empty_workdir_restores_none(tmp_path, state):
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=1)
  assert ckpt.restore(state) is None
  assert ckpt.latest_step() is None
  ckpt.close()


def test_train_state_and_data_state_round_trip_bitwise(tmp_path, state):
  data_state = {"next_index": 7, "parents": [{"epoch": 1, "seed": 3}], "name": "turns"}
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=2, async_save=False)
  assert ckpt.save(2, state, data_state)
  ckpt.close()

  # A new manager, as after a restart, from the abstract state the caller can build.
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=2)
  restored, restored_data, step = ckpt.restore(jax.eval_shape(lambda: state))
  ckpt.close()
  assert step == 2
  assert restored_data == data_state
  assert isinstance(restored, train.TrainState)
  assert jnp.issubdtype(restored.rng.dtype, jax.dtypes.prng_key)
  assert_bitwise_equal(restored, state)
  # The restored key draws the same numbers.
  np.testing.assert_array_equal(jax.random.uniform(restored.rng, (4,)),
                                jax.random.uniform(state.rng, (4,)))


def test_maybe_save_every_n_steps_and_keep_last_n_deletes_older(tmp_path, state):
  ckpt = checkpoint.Checkpoints(tmp_path, every=2, keep=2)
  assert ckpt.every == 2
  saved = [step for step in range(1, 10) if ckpt.maybe_save(step, state, {"i": step})]
  ckpt.wait()
  assert saved == [2, 4, 6, 8]
  assert ckpt.steps() == [6, 8]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["6", "8"]
  ckpt.close()


def test_forced_save_between_intervals_but_never_over_a_newer_step(tmp_path, state):
  ckpt = checkpoint.Checkpoints(tmp_path, every=100, keep=3)
  assert not ckpt.maybe_save(3, state, {"i": 3})
  assert ckpt.save(3, state, {"i": 3}, force=True)
  assert not ckpt.save(3, state, {"i": 3}, force=True)
  assert not ckpt.save(2, state, {"i": 2}, force=True)
  ckpt.close()
  assert checkpoint.Checkpoints(tmp_path, every=100, keep=3).restore(state)[1:] == ({"i": 3}, 3)


def test_async_save_survives_donating_the_state_right_after(tmp_path, state):
  # The loop donates the state to the next update while the save is still writing.
  # A 16 MB leaf makes the write outlast the (compiled beforehand) update, so a save
  # that kept the caller's buffers pinned would have the donation refused.
  def live_state():
    return {"params": state.params, "opt_state": state.opt_state,
            "big": jnp.arange(4 * 2**20, dtype=jnp.float32)}
  live = jax.tree.map(jnp.copy, live_state())
  want = jax.tree.map(bits, live)
  update = jax.jit(lambda t: jax.tree.map(lambda x: x + 1, t), donate_argnums=0)
  update = update.lower(jax.eval_shape(live_state)).compile()
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=1, async_save=True)
  assert ckpt.maybe_save(5, live, {"i": 5})
  jax.block_until_ready(update(live))
  assert all(x.is_deleted() for x in jax.tree.leaves(live))
  del live
  ckpt.wait()
  restored, _, step = ckpt.restore(jax.eval_shape(live_state))
  ckpt.close()
  assert step == 5
  assert jax.tree.map(bits, restored) == want


def test_restore_onto_an_explicit_single_device_sharding(tmp_path, state):
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=1, async_save=False)
  ckpt.save(1, state, {})
  device = jax.devices()[-1]
  sharding = jax.sharding.SingleDeviceSharding(device)
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                        state)
  restored, _, _ = ckpt.restore(target)
  ckpt.close()
  for leaf in jax.tree.leaves(restored):
    assert isinstance(leaf, jax.Array) and leaf.sharding == sharding
  assert_bitwise_equal(restored, state)


def settle_abandoned_reads():
  """Lets the reads Orbax abandons on a failed restore finish and be collected.

  Python reports them as unraisable exceptions; this makes that happen in the test
  that failed the restore, under its warning filter, not in whichever test runs next.
  """
  time.sleep(0.5)
  gc.collect()


def _truncate(step_dir):
  for name in glob.glob(f"{step_dir}/state/ocdbt.process_0/d/*"):
    os.truncate(name, os.path.getsize(name) // 2)


def _flip_one_byte(step_dir):
  # Orbax reads changed bytes without noticing; the stored checksums catch them.
  name = max(glob.glob(f"{step_dir}/state/ocdbt.process_0/d/*"), key=os.path.getsize)
  data = bytearray(open(name, "rb").read())
  data[len(data) // 2] ^= 0x01
  open(name, "wb").write(bytes(data))


def _empty_metadata(step_dir):
  open(f"{step_dir}/state/_METADATA", "w").close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", [_truncate, _flip_one_byte, _empty_metadata])
def test_damaged_latest_checkpoint_raises_naming_step_and_path(tmp_path, state, damage):
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=3, async_save=False)
  ckpt.save(1, state, {"i": 1})
  ckpt.save(2, state, {"i": 2})
  ckpt.close()
  step_dir = tmp_path / "checkpoints" / "2"
  damage(step_dir)

  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=3)
  with pytest.raises(checkpoint.CheckpointError, match="step 2") as error:
    ckpt.restore(state)
  assert str(step_dir) in str(error.value)
  del error
  settle_abandoned_reads()
  # The documented way out: delete the damaged step, then the one before restores.
  shutil.rmtree(step_dir)
  ckpt.close()
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=3)
  restored, data_state, step = ckpt.restore(state)
  ckpt.close()
  assert (data_state, step) == ({"i": 1}, 1)
  assert_bitwise_equal(restored, state)


def snapshot(directory) -> dict[str, bytes]:
  """Every file under ``directory`` (relative path to its bytes)."""
  return {os.path.relpath(os.path.join(root, n), directory): open(os.path.join(root, n), "rb").read()
          for root, _, names in os.walk(directory) for n in names}


def test_an_edited_data_position_raises_naming_the_step_and_the_file(tmp_path, state):
  data_state = {"next_index": 7, "parents": [{"epoch": 1, "seed": 3}], "name": "turns"}
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=3, async_save=False)
  ckpt.save(1, state, data_state)
  ckpt.save(2, state, {**data_state, "next_index": 9})
  ckpt.close()
  step_dir = tmp_path / "checkpoints" / "2"
  data_file = step_dir / "data" / "process_0-of-1.json"
  saved = json.loads(data_file.read_text())
  assert saved["next_index"] == 9
  data_file.write_text(json.dumps({**saved, "next_index": 8}))
  before = snapshot(tmp_path)

  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=3)
  with pytest.raises(checkpoint.CheckpointError) as error:
    ckpt.restore(state)
  ckpt.close()
  assert str(error.value) == (
      f"the checkpoint of step 2 at {step_dir} is corrupt: its data position {data_file} does "
      f"not match its checksum. To resume from the step before (1), delete {step_dir}.")
  assert snapshot(tmp_path) == before
  shutil.rmtree(step_dir)
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=3)
  assert ckpt.restore(state)[1:] == (data_state, 1)
  ckpt.close()


@pytest.mark.parametrize("other", [dataclasses.replace(CONFIG, d_model=64),
                                   dataclasses.replace(CONFIG, num_layers=2)])
def test_checkpoint_of_another_model_says_so_and_deletes_nothing(tmp_path, state, other):
  ckpt = checkpoint.Checkpoints(tmp_path, every=1, keep=2, async_save=False)
  ckpt.save(1, state, {})
  ckpt.save(2, state, {})
  before = snapshot(tmp_path)
  target = jax.eval_shape(lambda: make_state(other))
  with pytest.raises(checkpoint.CheckpointError) as error:
    ckpt.restore(target)
  ckpt.close()
  message = str(error.value)
  assert message.startswith(f"the checkpoints in {tmp_path / 'checkpoints'} were written for a "
                            "different model or optimiser (state.")
  assert message.endswith("); resume them with the config that wrote them, or use another "
                          "--workdir for this one")
  assert "delete" not in message  # An older step of the same shapes would not do either.
  assert snapshot(tmp_path) == before
