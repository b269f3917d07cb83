"""The pipeline experiment (claim 1) as a user launches it: its table and summary, its
report, and the one runner's guarantees across stages: SIGTERM during an imitation stage
and during a policy stage saves the current step and exits 0, ``kill -9`` loses only the
steps after the last checkpoint, and the resumed run ends with every stage's parameters
bitwise equal to an uninterrupted run's, reusing the stages it finished."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments import common, pipeline, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("pretrain", "sft", "reward_model", "rlhf", "rl_payoff")
# Stages long enough that a signal sent after a few steps lands inside them.
LONGER = ("--config.sft.steps=200", "--config.rl.iterations=12", "--config.checkpoint_every=4",
          "--config.log_every=1", "--config.sync_every=1")


def launch(workdir, data_dir, env):
  return subprocess.Popen(
      [sys.executable, "-m", "experiments.pipeline", "--config", "configs/pipeline.py:smoke",
       "--workdir", str(workdir), f"--config.data_dir={data_dir}", *LONGER],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  return out


def wait_for(proc, path, found=lambda f: True):
  """Waits until file ``path`` exists and ``found(open file)``, the run still running."""
  deadline = time.time() + 300
  while True:
    assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
    if os.path.exists(path):
      with open(path) as f:
        if found(f):
          return
    time.sleep(0.02)


def wait_for_row(proc, workdir, stage, step):
  """Waits until ``stage`` has logged ``step`` (the run is then inside that stage)."""
  wait_for(proc, os.path.join(workdir, stage, "metrics.jsonl"),
           lambda f: any(json.loads(l)["step"] >= step for l in f if l.endswith("\n")))


def final_states(workdir):
  """Every stage's last checkpointed state, as saved."""
  out = {}
  for stage in STAGES:
    directory = os.path.join(workdir, stage, "checkpoints")
    last = max(map(int, os.listdir(directory)))
    state = ocp.StandardCheckpointer().restore(os.path.join(directory, str(last), "state"))
    out[stage] = (last, jax.tree.map(
        lambda x: np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
            x.dtype, jax.dtypes.prng_key) else x), state))
  return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, smoke_env):
  """An uninterrupted run, and one preempted in sft and in rlhf, killed in rl_payoff and
  resumed to the end each time: ``(root, whole, cut, outputs, stage.json mtimes)``."""
  root = tmp_path_factory.mktemp("pipeline")
  data, whole, cut = root / "data", str(root / "whole"), str(root / "cut")
  outputs = {"whole": finish(launch(whole, data, smoke_env))}
  for stage, stop in (("sft", signal.SIGTERM), ("rlhf", signal.SIGTERM),
                      ("rl_payoff", signal.SIGKILL)):
    proc = launch(cut, data, smoke_env)
    if stop == signal.SIGKILL:  # Once the checkpoint of step 4 is complete.
      wait_for(proc, os.path.join(cut, stage, "checkpoints", "4", "commit_success.txt"))
    else:
      wait_for_row(proc, cut, stage, 5)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=300)
    saved = [n for n in os.listdir(os.path.join(cut, stage, "checkpoints")) if n.isdigit()]
    with open(os.path.join(cut, stage, "metrics.jsonl")) as f:
      rows = f.read()
    outputs[stage] = (proc.returncode, out, err, sorted(saved, key=int), rows)
  mtimes = {s: os.path.getmtime(os.path.join(cut, s, "stage.json")) for s in STAGES[:4]}
  outputs["resumed"] = finish(launch(cut, data, smoke_env))
  return root, whole, cut, outputs, mtimes


@pytest.mark.parametrize("stage, after", [("sft", "rlhf"), ("rlhf", "rl_payoff")])
def test_sigterm_saves_the_current_step_and_the_rerun_resumes_there(runs, stage, after):
  _, _, cut, outputs, _ = runs
  code, out, err, saved, rows = outputs[stage]
  assert code == 0, err[-3000:]
  line = next(l for l in out.splitlines() if l.startswith("preempted in stage"))
  assert line.startswith(f"preempted in stage {stage}: saved step ")
  assert "run the same command again to resume" in line
  step = int(line.split("saved step ")[1].split(";")[0])
  assert step >= 5 and saved[-1] == str(step)
  # The next run resumed at exactly that step, and its rows continue the saved ones.
  assert f"stage {stage}: resumed at step {step}\n" in outputs[after][1]
  kept = "".join(l for l in rows.splitlines(keepends=True) if json.loads(l)["step"] <= step)
  with open(os.path.join(cut, stage, "metrics.jsonl")) as f:
    final = f.read()
  assert final.startswith(kept)
  assert [json.loads(l)["step"] for l in final.splitlines()] == list(range(1, 1 + len(
      final.splitlines())))


def test_kill_9_loses_only_the_steps_after_the_last_checkpoint(runs):
  _, _, _, outputs, _ = runs
  code, _, _, saved, _ = outputs["rl_payoff"]
  assert code == -signal.SIGKILL and saved[-1] == "4"
  assert "stage rl_payoff: resumed at step 4" in outputs["resumed"]


def test_the_resumed_run_equals_an_uninterrupted_one_bitwise(runs):
  _, whole, cut, outputs, mtimes = runs
  expected, found = final_states(whole), final_states(cut)
  for stage in STAGES:
    assert found[stage][0] == expected[stage][0]
    jax.tree.map(np.testing.assert_array_equal, found[stage][1], expected[stage][1])
  # The stages finished before the last run were reused, not trained again.
  assert {s: os.path.getmtime(os.path.join(cut, s, "stage.json")) for s in mtimes} == mtimes
  with open(os.path.join(whole, "summary.json")) as f, open(os.path.join(cut, "summary.json")) as g:
    a, b = json.load(f), json.load(g)
  for name, stage in a["stages"].items():
    assert b["stages"][name]["payoff"] == stage["payoff"]
    assert b["stages"][name]["tokens"] == stage["tokens"]
  # Training seconds add up over the runs that trained a stage.
  assert all(b["stages"][n]["seconds"] > 0 for n in a["stages"])


def test_pipeline_writes_its_table_and_summary(runs):
  root, whole, _, outputs, _ = runs
  out = outputs["whole"]
  assert "| policy |" in out and "KL to SFT" in out and "claim 1: " in out
  with open(os.path.join(whole, "summary.json")) as f:
    summary = json.load(f)
  assert summary["command"].startswith("python -m experiments.pipeline --config")
  lines = ["rlhf_kl0.1", "rlhf_kl1"]  # The smoke variant's KL sweep.
  assert list(summary["stages"]) == ["pretrain", "sft", *lines, "rl_payoff"]
  for stage in summary["stages"].values():
    for key in ("payoff", "payoff_greedy"):
      assert set(stage[key]) == {"all", *pipeline.SPLITS}
      for split in stage[key].values():
        assert len(split["seeds"]) == 2 and all(0 <= x <= 1 for x in split["seeds"])
        assert split["low"] <= split["mean"] <= split["high"]
      for i in range(2):  # The whole is between its parts.
        parts = [stage[key][split]["seeds"][i] for split in pipeline.SPLITS]
        assert min(parts) - 1e-9 <= stage[key]["all"]["seeds"][i] <= max(parts) + 1e-9
    for key in ("reward_model_score", "kl_to_sft"):
      assert len(stage[key]["seeds"]) == 2 and np.all(np.isfinite(stage[key]["seeds"]))
    assert stage["tokens"] > 0 and stage["seconds"] > 0
  # The sft policy is the KL's reference: its KL to itself is zero (exactly, up to float).
  assert abs(summary["stages"]["sft"]["kl_to_sft"]["mean"]) < 1e-4
  demo = summary["demonstrators"]
  assert demo["expert"] == {"all": 1.0, "carry": 1.0, "no_carry": 1.0}
  assert demo["careless"]["no_carry"] == 1.0 and 0.05 < demo["careless"]["carry"] < 0.4
  assert 0 < summary["reward_model"]["problems"] <= 64
  assert 0 <= summary["reward_model"]["accuracy"]["mean"] <= 1
  # The judged line is the best on validation, and differences are paired by seed.
  validation = summary["validation_payoff"]
  assert set(validation) == set(lines) and all(0 <= x <= 1 for x in validation.values())
  judged = summary["judged"]
  assert validation[judged] == max(validation.values())
  stages, d = summary["stages"], summary["differences"]
  np.testing.assert_allclose(d["rlhf - sft"]["seeds"], np.subtract(
      stages[judged]["payoff"]["all"]["seeds"], stages["sft"]["payoff"]["all"]["seeds"]))
  np.testing.assert_allclose(d["rlhf greedy carry - demonstrator"]["seeds"], np.subtract(
      stages[judged]["payoff_greedy"]["carry"]["seeds"], demo["careless"]["carry"]))
  for name, game in summary["example_games"].items():
    assert game.startswith("one> ") and "\ntwo> " in game, name
  tokens = [stages[n]["tokens"] for n in ("pretrain", "sft", "rlhf_kl0.1")]
  assert tokens == sorted(tokens) and len(set(tokens)) == 3  # Stages add up.
  assert stages["rlhf_kl1"]["tokens"] == stages["rlhf_kl0.1"]["tokens"]
  curves = summary["curves"]
  assert set(curves) == {*lines, "rl_payoff"}
  for line in lines:
    steps = curves[line]["step"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 4
    for key in ("payoff_two", "reward_model_score", "kl_to_reference"):
      band = curves[line][key]
      assert all(len(band[k]) == len(steps) for k in ("mean", "low", "high"))
      assert all(lo <= m <= hi for lo, m, hi in zip(band["low"], band["mean"], band["high"]))
  assert summary["verdict"]["outcome"] in ("confirmed", "not confirmed",
                                           "inconclusive: not learned")
  for stage in STAGES:
    assert os.path.exists(os.path.join(whole, stage, "metrics.jsonl"))
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(whole, stage)))


def test_the_kl_lines_are_the_rlhf_stage_split_in_order(runs):
  """rlhf trains every KL weight side by side: line k is runs [k*S, (k+1)*S) of the
  stage, and its curves are those runs' per-run metrics."""
  _, whole, _, _, _ = runs
  with open(os.path.join(whole, "summary.json")) as f:
    summary = json.load(f)
  with open(os.path.join(whole, "rlhf", "metrics.jsonl")) as f:
    first = json.loads(f.readline())
  for k, line in enumerate(("rlhf_kl0.1", "rlhf_kl1")):
    mean = np.mean([first[f"kl_to_reference_seed{2 * k + i}"] for i in range(2)])
    assert summary["curves"][line]["kl_to_reference"]["mean"][0] == pytest.approx(mean)


def test_report_writes_results_from_the_summaries(runs, tmp_path):
  root, whole, _, _, _ = runs
  os.rename(whole, os.path.join(root, "pipeline"))  # The workdir report reads.
  try:
    with open(os.path.join(root, "pipeline", "summary.json")) as f:
      summary = json.load(f)
    text = report.results(str(root), str(tmp_path))
  finally:
    os.rename(os.path.join(root, "pipeline"), whole)
  assert "## pipeline" in text and summary["command"] in text
  assert "Not run yet: `python -m experiments.red_team" in text
  assert f"{summary['stages']['sft']['payoff']['all']['mean']:.3f}" in text
  assert summary["rule"] in text
  assert f"Claim 1 by this rule: **{summary['verdict']['outcome']}**" in text
  for stem in ("kl", "stages", "curves"):
    assert (tmp_path / "results" / f"pipeline_{stem}.png").stat().st_size > 1000


def _summary(sft_gain=(0.2, 0.3, 0.25), rlhf_gain=(0.1, 0.15, 0.12), beyond=(0.3, 0.2, 0.4),
             sft_carry=0.22, rm_accuracy=(0.9, 0.85, 0.95)):
  """Claim 1's inputs: the paired differences per seed, SFT's payoff on problems with a
  carry (its demonstrator's: 0.2) and the reward model's ranking accuracy per seed."""
  interval = common.interval
  return {
      "verdict_settings": {"learned_tolerance": 0.1, "rm_accuracy": 0.7},
      "stages": {"sft": {"payoff": {"carry": {"mean": sft_carry}, "no_carry": {"mean": 1.0}}}},
      "demonstrators": {"careless": {"carry": 0.2, "no_carry": 1.0}},
      "differences": {"sft - pretrain": interval(sft_gain), "rlhf - sft": interval(rlhf_gain),
                      "rlhf greedy carry - demonstrator": interval(beyond)},
      "reward_model": {"accuracy": interval(rm_accuracy)}}


def test_verdict_confirmed_when_each_paired_gain_clears_its_interval():
  v = pipeline.verdict(_summary())
  assert v["outcome"] == "confirmed" and all(v["checks"].values())
  assert v["sft_gap_to_demonstrator"] == pytest.approx({"carry": 0.02, "no_carry": 0.0})


@pytest.mark.parametrize("field, seeds, failed", [
    ("rlhf_gain", (0.1, -0.05, 0.2), "(b) rlhf > sft"),  # Mean above 0, interval not.
    ("sft_gain", (0.0, 0.0, 0.0), "(a) sft > pretrain"),
    ("beyond", (0.05, -0.2, 0.1), "(c) rlhf greedy > demonstrator on carries")])
def test_verdict_not_confirmed_when_a_gain_does_not_clear_its_interval(field, seeds, failed):
  v = pipeline.verdict(_summary(**{field: seeds}))
  assert v["outcome"] == "not confirmed"
  assert [k for k, ok in v["checks"].items() if not ok] == [failed]


@pytest.mark.parametrize("changes", [dict(sft_carry=0.35), dict(rm_accuracy=(0.6, 0.7, 0.65))])
def test_verdict_inconclusive_when_sft_or_the_reward_model_did_not_learn(changes):
  """Whatever the gains: SFT off its demonstrator on carries by more than the tolerance,
  or a reward model that ranks right answers first too rarely, judges nothing."""
  v = pipeline.verdict(_summary(**changes))
  assert v["outcome"] == "inconclusive: not learned" and all(v["checks"].values())
