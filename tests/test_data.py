"""TFDS builders of game records and text: built small, read back, replayed, rebuilt."""

import functools
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twoplayer_jax import game as game_lib
from twoplayer_jax import vocab
from twoplayer_jax.data import build, configs, corpus, generate, sources

MIXTURE = "arithmetic_mixture"
SETTINGS = dict(num_examples=96, num_validation=32, seed=3, batch_size=64)
INVALID_UTF8 = b"caf\xc3\xa9 \xff\xfe broken \xc3( and \xe2\x82 \x80\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("data")
  build.build(f"game_transcripts/{MIXTURE}", str(root), **SETTINGS)
  build.build(f"game_preferences/{MIXTURE}", str(root), num_examples=64, batch_size=64)
  return str(root)


def read_all(source) -> list[dict]:
  return sorted(source.__getitems__(range(len(source))), key=lambda r: r["example_id"])


@functools.partial(jax.jit, static_argnums=0)
@functools.partial(jax.vmap, in_axes=(None, 0, 0, 0, 0, 0))
def replay(game, tokens, owner, opening_length, length, hidden):
  """Re-plays recorded games with ``game.step``: the final state, whether every played
  token was written by the player to move, and the reward of each step."""
  pos = jnp.arange(game.max_opening_length)
  opening = pos < opening_length
  state = game_lib.new_state(
      game, jnp.where(opening, tokens[:game.max_opening_length], vocab.PAD),
      jnp.where(opening, owner[:game.max_opening_length], 0), opening_length,
      to_move=owner[opening_length], turn=jnp.sum(opening & (tokens[pos] == vocab.EOT)),
      hidden=hidden)

  def body(carry, t):
    state, ok = carry
    played = (t >= opening_length) & (t < length)
    next_state, reward = game_lib.step(game, state, tokens[t])
    ok = ok & (~played | ((state.to_move == owner[t]) & ~state.done))
    state = jax.tree.map(lambda a, b: jnp.where(played, a, b), next_state, state)
    return (state, ok), jnp.where(played, reward, 0.0)

  (state, ok), rewards = jax.lax.scan(body, (state, jnp.bool_(True)), jnp.arange(game.max_length))
  return state, ok, rewards


def check_replay(game, records, prefix=""):
  """Records match a replay of their tokens: owners, per-step rewards, payoffs, the end."""
  t = game.max_length
  tokens = np.stack([np.pad(r[prefix + "tokens"], (0, t - len(r[prefix + "tokens"])),
                            constant_values=vocab.PAD) for r in records])
  owner = np.stack([np.pad(r[prefix + "owner"], (0, t - len(r[prefix + "owner"])))
                    for r in records])
  hidden = generate.unflatten_hidden(game, {k: np.stack([r["hidden"][k] for r in records])
                                            for k in records[0]["hidden"]})
  state, ok, rewards = replay(game, tokens, owner, np.array([r["opening_length"] for r in records]),
                              np.array([r[prefix + "length"] for r in records]), hidden)
  assert np.asarray(ok).all()
  assert np.asarray(state.done).all()
  np.testing.assert_array_equal(state.length, [r[prefix + "length"] for r in records])
  np.testing.assert_allclose(state.returns, [r[prefix + "payoff"] for r in records])
  for r, rew in zip(records, np.asarray(rewards)):
    np.testing.assert_allclose(rew[:len(r[prefix + "reward"])], r[prefix + "reward"])


def test_transcripts_have_their_fields_and_replay_to_their_payoffs(data_dir):
  source = sources.load(f"game_transcripts/{MIXTURE}", "train", data_dir)
  records = read_all(source)
  assert [r["example_id"] for r in records] == list(range(96))
  game, _ = generate.setup(configs.transcripts_config("arithmetic", configs.MIXES["mixture"],
                                                      MIXTURE))
  for r in records:
    n = int(r["length"])
    assert r["tokens"].shape == r["owner"].shape == (n,) and r["reward"].shape == (n, 2)
    assert r["tokens"].dtype == np.int32 and r["payoff"].shape == (2,)
    assert r["tokens"][0] == vocab.BOS and r["owner"][0] == game_lib.CHANCE
    assert (r["owner"][1:r["opening_length"]] == game_lib.ONE).all()
    assert (r["owner"][r["opening_length"]:] == game_lib.TWO).all()
    a, b = r["hidden"]["operands"]
    assert vocab.render(r["tokens"], r["owner"]).startswith(f"one> {a}+{b}=")
  check_replay(game, records)
  # Player two is drawn from the mix; the expert (index 0) always wins the payoff.
  drawn = np.array([r["player_two"] for r in records])
  assert set(drawn) == {0, 1, 2}
  assert all(r["payoff"][0] == 1 for r in records if r["player_two"] == 0)
  assert source.metadata["settings"]["num_examples"] == {"train": 96, "validation": 32}
  assert source.metadata["settings"]["config"]["player_two"] == [
      ["expert", 0.4], ["average", 0.4], ["noisy", 0.2]]
  assert len(sources.load(f"game_transcripts/{MIXTURE}", "validation", data_dir)) == 32


def test_preferences_share_an_opening_and_prefer_the_higher_payoff(data_dir):
  records = read_all(sources.load(f"game_preferences/{MIXTURE}", "train", data_dir))
  assert [r["example_id"] for r in records] == list(range(64))
  game, _ = generate.setup(configs.preferences_config("arithmetic", configs.MIXES["mixture"],
                                                      MIXTURE))
  for r in records:
    n = int(r["opening_length"])
    np.testing.assert_array_equal(r["chosen_tokens"][:n], r["rejected_tokens"][:n])
    assert r["chosen_payoff"][0] != r["rejected_payoff"][0]  # Ties are dropped.
  agree = np.mean([r["chosen_payoff"][0] > r["rejected_payoff"][0] for r in records])
  assert agree > 0.85  # Temperature 0.25: a margin of 1 is preferred with p = 0.98.
  check_replay(game, records, "chosen_")
  check_replay(game, records, "rejected_")


def test_label_is_bradley_terry_and_drops_ties():
  a = jnp.array([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]] * 2000)
  b = jnp.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]] * 2000)
  label = jax.jit(generate.label, static_argnums=3)
  keep, a_chosen = label(jax.random.key(0), a, b, 0.0)
  np.testing.assert_array_equal(keep[:3], [True, True, False])
  np.testing.assert_array_equal(a_chosen[:2], [True, False])
  keep, a_chosen = label(jax.random.key(0), a, b, 1.0)
  assert abs(np.mean(a_chosen[0::3]) - jax.nn.sigmoid(1.0)) < 0.03
  assert abs(np.mean(a_chosen[1::3]) - jax.nn.sigmoid(-1.0)) < 0.03


def test_preferences_of_players_that_always_tie_are_an_error():
  config = configs.preferences_config("arithmetic", {"expert": 1.0}, "always_ties")
  with pytest.raises(RuntimeError, match="all ties; choose a player-two mix"):
    next(generate.preferences(config, 4, seed=0, batch_size=4))


def test_generation_is_deterministic_and_a_prefix_of_a_larger_build():
  config = configs.transcripts_config("arithmetic", configs.MIXES["mixture"], MIXTURE)
  small = list(generate.transcripts(config, 40, seed=3, batch_size=64))
  large = list(generate.transcripts(config, 96, seed=3, batch_size=64))
  other = list(generate.transcripts(config, 40, seed=4, batch_size=64))
  for x, y in zip(small, large):
    jax.tree.map(np.testing.assert_array_equal, x, y)
  assert any(not np.array_equal(x["tokens"], y["tokens"]) for x, y in zip(small, other))


def test_rebuilding_reuses_same_settings_and_refuses_others(data_dir, tmp_path):
  name = f"game_transcripts/{MIXTURE}"
  builder = build.build(name, data_dir, **SETTINGS)  # Same settings: reused, not rebuilt.
  files = sorted(os.listdir(builder.data_dir))
  digest = {f: hashlib.sha256(open(os.path.join(builder.data_dir, f), "rb").read()).hexdigest()
            for f in files}
  with pytest.raises(FileExistsError, match="other settings.*seed"):
    build.build(name, data_dir, **{**SETTINGS, "seed": 4})
  assert digest == {f: hashlib.sha256(open(os.path.join(builder.data_dir, f), "rb").read())
                    .hexdigest() for f in files}
  # Data built before the game had a field (here: as if it had no num_digits) is reused,
  # the field taken at its default; a stored value is still compared.
  path = os.path.join(builder.data_dir, "metadata.json")
  metadata = json.load(open(path))
  del metadata["settings"]["game"]["num_digits"]
  json.dump(metadata, open(path, "w"))
  build.build(name, data_dir, **SETTINGS)
  metadata["settings"]["game"]["num_digits"] = 2
  json.dump(metadata, open(path, "w"))
  with pytest.raises(FileExistsError, match="other settings.*num_digits"):
    build.build(name, data_dir, **SETTINGS)
  metadata["settings"]["game"]["num_digits"] = 3
  json.dump(metadata, open(path, "w"))
  # A fresh build with the same settings writes the same records (in the same order).
  again = build.build(name, str(tmp_path), **SETTINGS)
  for x, y in zip(read_all(sources.load(name, "train", data_dir)),
                  read_all(sources.load(name, "train", str(tmp_path)))):
    jax.tree.map(np.testing.assert_array_equal, x, y)
  # Another version's directory next to it is left alone.
  other = os.path.join(os.path.dirname(again.data_dir), "0.9.0")
  os.makedirs(other)
  open(os.path.join(other, "keep.txt"), "w").write("old")
  build.build(name, str(tmp_path), **SETTINGS, overwrite=True)
  assert open(os.path.join(other, "keep.txt")).read() == "old"


def test_a_config_of_ones_own_is_built_and_read_by_object(tmp_path):
  config = configs.transcripts_config("arithmetic", {"average": 1.0}, "my_sums",
                                      game_settings={"num_digits": 1},
                                      player_settings={"average": {"error_rate": 0.5}})
  with pytest.raises(sources.NotBuiltError):
    sources.load("game_transcripts", "train", str(tmp_path), config=config)
  build.build("game_transcripts", str(tmp_path), num_examples=64, batch_size=64, config=config)
  source = sources.load("game_transcripts", "train", str(tmp_path), config=config)
  assert source.name == "game_transcripts/my_sums" and len(source) == 64
  assert source.metadata["settings"]["config"]["player_settings"] == {
      "average": {"error_rate": 0.5}}
  assert 0.2 < np.mean([r["payoff"][1] for r in read_all(source)]) < 0.8
  with pytest.raises(ValueError, match="name the config once"):
    sources.load("game_transcripts/arithmetic_expert", "train", str(tmp_path), config=config)


def test_a_mixture_of_games_is_built_and_its_records_replay(tmp_path):
  """Datasets of a game mixture: each record is an episode of its drawn game (the
  flattened hidden information names it), and replays to its payoff in the mixture."""
  settings = {"components": (("arithmetic", {"num_digits": 1}), ("in_context", {})),
              "weights": (1.0, 1.0)}
  config = configs.transcripts_config("mixture", {"expert": 1.0}, "two_games",
                                      game_settings=settings)
  build.build("game_transcripts", str(tmp_path), num_examples=64, batch_size=64, config=config)
  records = read_all(sources.load("game_transcripts", "train", str(tmp_path), config=config))
  game, _ = generate.setup(config)
  assert {int(r["hidden"]["game"]) for r in records} == {0, 1}
  assert all(r["payoff"][1] == 1 for r in records)  # Both experts are always right.
  check_replay(game, records)


def test_a_dataset_never_built_names_the_build_command(tmp_path):
  with pytest.raises(sources.NotBuiltError, match=(
      r"python -m twoplayer_jax\.data\.build --dataset game_transcripts/arithmetic_noisy "
      r"--num_examples N --data_dir " + str(tmp_path))):
    sources.load("game_transcripts/arithmetic_noisy", "train", str(tmp_path))
  os.makedirs(tmp_path / "game_transcripts" / "arithmetic_noisy" / "0.9.0")
  with pytest.raises(sources.NotBuiltError, match=r"found versions \['0.9.0'\], this code reads"):
    sources.load("game_transcripts/arithmetic_noisy", "train", str(tmp_path))
  with pytest.raises(KeyError, match="unknown dataset"):
    sources.load("no_such_dataset", "train", str(tmp_path))


def damaged(builder, damage):
  """The train file of ``builder``'s dataset, damaged: cut to a third, or bytes flipped
  among its first records (padding and a footer follow them)."""
  path = next(os.path.join(builder.data_dir, f) for f in os.listdir(builder.data_dir)
              if "train.array_record" in f)
  data = bytearray(open(path, "rb").read())
  if damage == "truncate":
    data = data[:len(data) // 3]
  else:
    data[1024:1088] = bytes(b ^ 0xFF for b in data[1024:1088])
  open(path, "wb").write(bytes(data))
  return path


def test_a_truncated_file_is_found_at_load_naming_the_file_and_the_command(tmp_path):
  name = f"game_transcripts/{MIXTURE}"
  path = damaged(build.build(name, str(tmp_path), **SETTINGS), "truncate")
  with pytest.raises(sources.NotBuiltError) as error:
    sources.load(name, "train", str(tmp_path))
  assert str(error.value).startswith(f"dataset {name} in {tmp_path} is damaged: {path} cannot "
                                     "be read (")
  assert str(error.value).endswith(
      f"; build it again with: python -m twoplayer_jax.data.build --dataset {name} "
      f"--num_examples 96 --num_validation 32 --seed 3 --batch_size 64 --data_dir {tmp_path}")


def test_a_corrupted_record_names_the_file_the_record_and_the_command(tmp_path):
  name = f"game_transcripts/{MIXTURE}"
  path = damaged(build.build(name, str(tmp_path), **SETTINGS), "corrupt")
  source = sources.load(name, "train", str(tmp_path))
  with pytest.raises(sources.RecordError, match=rf"record \d+ of {path} \(index \d+\)") as error:
    source.__getitems__(range(len(source)))
  # The footer is whole, so only --overwrite builds it again.
  assert str(error.value).endswith(
      f"--seed 3 --batch_size 64 --data_dir {tmp_path} --overwrite")


def write_corpus(root) -> dict[str, bytes]:
  files = {"a.txt": INVALID_UTF8 * 30, "sub/b.txt": b"\x00\x01 second \xf0\x9f\x98\x80 file",
           "c.jsonl": b'{"text": "first \\u27e8 doc"}\n\n{"text": "bad byte \\udcff"}\n',
           "empty.txt": b""}
  for name, data in files.items():
    os.makedirs(os.path.dirname(root / name), exist_ok=True)
    (root / name).write_bytes(data)
  os.symlink(root / "missing.txt", root / "broken.txt")
  return files


def test_text_corpus_round_trips_every_byte(tmp_path):
  files = write_corpus(tmp_path / "corpus")
  config = corpus.CorpusConfig(name="tiny_chunks", chunk_bytes=100)
  builder = corpus.TextCorpus(data_dir=str(tmp_path / "data"), config=config,
                              corpus=[str(tmp_path / "corpus")])
  builder.download_and_prepare()
  source = sources.load("text_corpus/tiny_chunks", "train", str(tmp_path / "data"))
  settings = source.metadata["settings"]
  paths = [os.path.relpath(f["path"], tmp_path / "corpus") for f in settings["files"]]
  assert paths == ["a.txt", "c.jsonl", "empty.txt", "sub/b.txt"]
  assert [os.path.basename(s["path"]) for s in settings["skipped"]] == ["broken.txt"]
  records = read_all(source)
  for i, path in enumerate(paths):
    if path.endswith(".txt"):
      parts = sorted((r["part"], r["tokens"]) for r in records if r["file"] == i)
      data = b"".join(vocab.to_bytes(t) for _, t in parts)
      assert data == files[path]
  docs = [vocab.to_bytes(r["tokens"]) for r in records if paths[r["file"]] == "c.jsonl"]
  assert docs == ["first ⟨ doc".encode(), b"bad byte \xff"]
  assert max(len(r["tokens"]) for r in records) == 100
  for r in records:
    np.testing.assert_array_equal(vocab.encode(vocab.decode(r["tokens"])), r["tokens"])


def test_bad_corpora_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="empty corpus: no .txt or .jsonl"):
    corpus.corpus_files([str(tmp_path)])
  with pytest.raises(FileNotFoundError, match="does not exist"):
    corpus.corpus_files([str(tmp_path / "nowhere")])
  os.symlink(tmp_path / "missing.txt", tmp_path / "broken.txt")
  with pytest.raises(ValueError, match="no readable files: .*broken.txt"):
    corpus.describe(corpus.corpus_files([str(tmp_path)]))
  (tmp_path / "empty.txt").write_bytes(b"")
  with pytest.raises(ValueError, match="no text"):
    corpus.describe(corpus.corpus_files([str(tmp_path)]))
  (tmp_path / "lines.jsonl").write_bytes(b'{"text": "ok"}\n{"txt": "no"}\n')
  with pytest.raises(ValueError, match=r"lines.jsonl:2: not a JSON object with a text field"):
    list(corpus.documents(str(tmp_path / "lines.jsonl"), "text"))
  with pytest.raises(ValueError, match="needs a corpus"):
    build.build("text_corpus", str(tmp_path / "data"))


def test_command_builds_and_shows_records(data_dir, capsys):
  build.FLAGS(["build", f"--dataset=game_transcripts/{MIXTURE}", f"--data_dir={data_dir}",
               "--num_examples=96", "--num_validation=32", "--seed=3", "--batch_size=64",
               "--show=2"])
  build.main([])
  out = capsys.readouterr().out
  assert "{'train': 96, 'validation': 32}" in out
  assert out.count("one> ") == 2 and out.count("two> ") == 2
