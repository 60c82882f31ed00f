"""`make gpu-check` (benchmarks/gpu_check.py): refuses in one line without CUDA; its extrapolation reads a real run's
TensorBoard wall times."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import extrapolated_seconds, learning_rate

from .conftest import REPO, read_scalars


def test_without_cuda_it_exits_2_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a GPU machine
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path / "results")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "NVIDIA GPU" in lines[0]
    assert not (tmp_path / "results").exists()


def test_the_learning_rate_comes_from_the_logged_updates_of_a_real_run(tiny_run: Path) -> None:
    learned = learning_rate(tiny_run)
    assert learned is not None
    steps = [step for step, _ in read_scalars(tiny_run)["loss/critic"]]
    assert learned[0] == steps[-1]  # up to the last logged update, not the run's last step
    # 20K steps in 100 s, then 80K more at 80 steps/s
    assert extrapolated_seconds(100.0, 20_000, 80.0) == pytest.approx(1100.0)
    assert extrapolated_seconds(100.0, 20_000, 80.0, target=20_000) == pytest.approx(100.0)
