# make train  - set up .venv (first run only) and train with the default config (ARGS="..." adds overrides)
# make test   - set up .venv and run the test suite
# make lint   - ruff + mypy
# make bench  - update throughput vs Stable-Baselines3 and the bare-math limit (pixels and state vectors), replay memory, training throughput
#               of the real loop with 1 and N envs (ARGS="--quick" etc.)
# make gpu-check - on a CUDA machine (~10 min): CUDA tests, CUDA-graph speed-up, train throughput with 1/4/8 runs on
#               the GPU, a 20K-step default run; one dated results file in benchmarks/results (exit 2 without CUDA)
PY := .venv/bin/python
ARGS ?=
export SDL_VIDEODRIVER ?= dummy
export WANDB_MODE ?= offline

.PHONY: setup train test lint bench gpu-check clean

setup: .venv/.installed

# torch first and explicitly: the pinned CPU wheel; an unpinned resolve would pull a multi-GB CUDA build.
# bench (stable-baselines3 alone, 2 MB installed, no new dependencies) comes along: the test suite runs the benchmarks.
.venv/.installed: pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -e ".[dev,bench]" --config-settings editable_mode=compat
	touch $@

train: setup
	$(PY) -m td3exp $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

lint: setup
	$(PY) -m ruff check td3exp hydra_plugins tests benchmarks
	$(PY) -m mypy

bench: setup
	$(PY) -m benchmarks.update_throughput $(ARGS)
	$(PY) -m benchmarks.replay_memory $(ARGS)
	$(PY) -m benchmarks.train_throughput $(ARGS)
	$(PY) -m benchmarks.mlp_update $(ARGS)

gpu-check: setup
	$(PY) -m benchmarks.gpu_check $(ARGS)

clean:
	rm -rf .venv outputs multirun .pytest_cache .mypy_cache .ruff_cache
