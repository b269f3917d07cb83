# make run: set up .venv and run the main job on its default config.
# make test: set up .venv if needed and run the test suite.
# make bench: the benchmarks of BENCHMARKS.md, figures in workdirs/bench/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.play --config configs/play.py

test: $(STAMP)
	$(PY) -m pytest tests

bench: $(STAMP)
	mkdir -p workdirs/bench
	$(PY) -m benchmarks.rollout --json workdirs/bench/rollout.json
	$(PY) -m benchmarks.rl_iteration --json workdirs/bench/rl_iteration.json
	$(PY) -m benchmarks.imitation_step --devices 2 --json workdirs/bench/imitation_step.json

clean:
	rm -rf $(VENV)
