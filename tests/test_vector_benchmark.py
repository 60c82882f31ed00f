"""benchmarks/train_throughput.py runs for real in its quick mode (the real entrypoint with one and two env processes)
and prints every value it promises. Speeds are never asserted: benchmarks print ratios."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from .conftest import REPO

KEY_LINE = re.compile(r"([a-z0-9_]+): (.+)")
RATES = re.compile(r"update only ([\d.]+) updates/s; loop 1 env ([\d.]+) steps/s; loop \d+ envs ([\d.]+) steps/s")


def test_train_throughput_prints_rates_overlap_and_the_ratio_to_the_update_alone() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "-m", "benchmarks.train_throughput", "--quick", "--device", "cpu"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    values = {m[1]: m[2] for line in result.stdout.splitlines() if (m := KEY_LINE.fullmatch(line))}
    rates = RATES.search(result.stdout)
    assert rates, result.stdout
    update, one, many = (float(rates[i]) for i in (1, 2, 3))  # updates/s of the update alone, steps/s of the loops
    assert float(values["steps_per_s_1env"]) == pytest.approx(one, abs=0.01)
    assert float(values["steps_per_s_nenv"]) == pytest.approx(many, abs=0.01)
    # the loop over the update alone: the loop's steps per second against the update's updates per second
    assert float(values["end_to_end_vs_update_only"]) == pytest.approx(one / update, rel=0.02, abs=0.002)
    assert float(values["end_to_end_vs_update_only_nenv"]) == pytest.approx(many / update, rel=0.02, abs=0.002)
    for key in ("env_overlap", "env_overlap_nenv"):
        # 1 - exposed / alone: at most 1 (exposed time is never negative); how far below 0 is the machine's noise
        overlap = float(values[key])
        assert math.isfinite(overlap) and overlap <= 1.0, (key, result.stdout)


def test_a_bad_override_is_one_line_and_exit_code_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "-m", "benchmarks.train_throughput", "--quick", "env.num_envs=0"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "env.num_envs" in lines[0], result.stderr
