"""The benchmark scripts run for real in their quick mode and print every value they promise as a number (or as
`n/a (reason)` where a variant cannot run here). Speeds are never asserted: benchmarks print ratios."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import REPO

pytest.importorskip(
    "stable_baselines3", reason="stable-baselines3 (the bench extra) is not installed: pip install -e '.[bench]'"
)

KEY_LINE = re.compile(r"([a-z0-9_]+): (.+)")


def run_benchmark(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )


def printed_values(module: str) -> dict[str, str]:
    result = run_benchmark(module, "--quick", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    return {m[1]: m[2] for line in result.stdout.splitlines() if (m := KEY_LINE.fullmatch(line))}


def number(values: dict[str, str], key: str) -> float:
    assert key in values, f"{key} not printed; printed: {sorted(values)}"
    return float(values[key])


def number_or_reason(values: dict[str, str], key: str) -> float | None:
    """A number, or None where the line says why the variant did not run."""
    assert key in values, f"{key} not printed; printed: {sorted(values)}"
    if values[key].startswith("n/a ("):
        return None
    return float(values[key])


def test_update_throughput_prints_every_ratio() -> None:
    values = printed_values("update_throughput")
    assert number(values, "update_ratio_vs_sb3") > 0
    assert number(values, "fraction_of_limit") > 0
    assert number(values, "monitoring_cost") < 1  # a share of the update (noise can make it slightly negative)
    bf16 = number_or_reason(values, "update_ratio_vs_sb3_bf16")
    assert bf16 is None or bf16 > 0
    bf16_cost = number_or_reason(values, "monitoring_cost_bf16")
    assert bf16_cost is None or bf16_cost < 1
    assert values.get("cuda_graph_speedup") == "n/a (needs CUDA)"  # --device cpu


def test_replay_memory_counts_the_stored_frames() -> None:
    values = printed_values("replay_memory")
    # at least the one 84x84 uint8 frame each transition stores: the count found the frame array
    assert number(values, "replay_bytes_per_transition") >= 84 * 84
    for key in ("memory_saving_vs_sb3", "memory_saving_vs_sb3_optmem",
                "sample_speedup_vs_sb3", "sample_speedup_vs_sb3_optmem"):
        assert number(values, key) > 0


def test_a_bad_override_is_one_line_and_exit_code_2() -> None:
    result = run_benchmark("update_throughput", "--quick", "agent.batch_size=0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "agent.batch_size" in lines[0], result.stderr


def test_mlp_update_benchmark_prices_monitoring_on_the_update_and_on_the_whole_step() -> None:
    result = run_benchmark("mlp_update", "--quick")
    assert result.returncode == 0, result.stderr[-3000:]
    values = {m[1]: m[2] for line in result.stdout.splitlines() if (m := KEY_LINE.fullmatch(line))}
    ratio, update, loop = (number(values, k) for k in (
        "update_ratio_vs_sb3_mlp", "monitoring_cost_update_mlp", "monitoring_cost_loop_mlp"))
    assert ratio > 0
    # the same monitoring time over a longer step (update + act, env step, replay add): a smaller share
    assert abs(loop) < abs(update) or update == loop == 0
    assert "cpu capability:" in result.stdout
