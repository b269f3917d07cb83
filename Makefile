# make run: set up .venv and run the main job on its default config.
# make test: set up .venv if needed and run the test suite (on 2 workers; tests/conftest.py
# says how --dist loadgroup shares the tests out). make test-fast: the tests that launch no
# process (pytest -m 'not subprocess').
# make results: every experiment's default variant, then RESULTS.md.
# make bench: the benchmarks of BENCHMARKS.md, figures in workdirs/bench/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-fast results bench clean
EXPERIMENTS := pipeline chain_of_thought in_context hallucination red_team twenty_questions \
	exploitability self_play multi_task prompting

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.pipeline --config configs/pipeline.py --workdir workdirs/pipeline

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -rs tests

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -rs -m "not subprocess" tests

results: $(STAMP)
	for name in $(EXPERIMENTS); do \
	  $(PY) -m experiments.$$name --config configs/$$name.py --workdir workdirs/$$name || exit 1; \
	done
	$(PY) -m experiments.report

bench: $(STAMP)
	mkdir -p workdirs/bench
	$(PY) -m benchmarks.rollout --json workdirs/bench/rollout.json
	$(PY) -m benchmarks.pretrained --json workdirs/bench/pretrained.json
	$(PY) -m benchmarks.rl_iteration --json workdirs/bench/rl_iteration.json
	$(PY) -m benchmarks.imitation_step --devices 2 --json workdirs/bench/imitation_step.json
	$(PY) -m benchmarks.compilation_cache --json workdirs/bench/compilation_cache.json

clean:
	rm -rf $(VENV)
