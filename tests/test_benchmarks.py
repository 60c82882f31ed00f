"""The benchmark scripts run for real in their quick mode and print every value they promise as a number (or as
`n/a (reason)` where a variant cannot run here). Speeds are never asserted: benchmarks print ratios."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from td3exp.build import NATIVE_BF16

from .conftest import REPO

pytest.importorskip(
    "stable_baselines3", reason="stable-baselines3 (the bench extra) is not installed: pip install -e '.[bench]'"
)

KEY_LINE = re.compile(r"([a-z0-9_]+): (.+)")
TABLE_ROW = re.compile(r"((?:td3exp|sb3|limit)[a-z0-9_ ]*?)\s+((?:-?[\d,.]+\s*)+)")


def run_benchmark(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )


def printed_values(module: str) -> tuple[dict[str, str], dict[str, list[float]]]:
    """The ``key: value`` lines, and the numbers of each table row by its variant name."""
    result = run_benchmark(module, "--quick", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    values = {m[1]: m[2] for line in result.stdout.splitlines() if (m := KEY_LINE.fullmatch(line))}
    rows = {m[1]: [float(x.replace(",", "")) for x in m[2].split()]
            for line in result.stdout.splitlines() if (m := TABLE_ROW.fullmatch(line))}
    return values, rows


def number(values: dict[str, str], key: str) -> float:
    assert key in values, f"{key} not printed; printed: {sorted(values)}"
    return float(values[key])


def number_or_reason(values: dict[str, str], key: str) -> float | None:
    """A number, or None where the line says why the variant did not run."""
    assert key in values, f"{key} not printed; printed: {sorted(values)}"
    if values[key].startswith("n/a ("):
        return None
    return float(values[key])


def test_update_throughput_prints_every_ratio_of_the_variants_it_timed() -> None:
    values, rows = printed_values("update_throughput")
    ms = {name: row[0] for name, row in rows.items()}  # ms/update of each variant

    def ratio(numerator: str, denominator: str) -> float:
        return ms[numerator] / ms[denominator]

    # each ratio is of the variants its name says, in the direction it says (> 1: td3exp faster)
    assert number(values, "update_ratio_vs_sb3") == pytest.approx(ratio("sb3 fp32", "td3exp fp32"), rel=0.02)
    assert number(values, "fraction_of_limit") == pytest.approx(ratio("limit fp32 channels_last", "td3exp fp32"),
                                                                rel=0.02)
    assert number(values, "monitoring_cost") == pytest.approx(
        1 - ratio("td3exp fp32 unmonitored", "td3exp fp32"), abs=0.02)
    bf16 = number_or_reason(values, "update_ratio_vs_sb3_bf16")
    assert bf16 is None or bf16 == pytest.approx(ratio("sb3 fp32", "td3exp bf16"), rel=0.02)
    assert values.get("cuda_graph_speedup") == "n/a (needs CUDA)"  # --device cpu


def test_replay_memory_counts_the_stored_frames() -> None:
    values, rows = printed_values("replay_memory")
    # one 84x84 uint8 frame per transition, plus a few small arrays: the count found the frame array and no stack
    assert 84 * 84 <= number(values, "replay_bytes_per_transition") < 2 * 84 * 84
    # SB3 stores two 4-frame stacks per transition (one with optimize_memory_usage): 8x and 4x the frames
    assert number(values, "memory_saving_vs_sb3") > 6 and number(values, "memory_saving_vs_sb3_optmem") > 3
    for sb3, suffix in (("sb3 default", ""), ("sb3 optimize_memory_usage", "_optmem")):
        assert number(values, f"memory_saving_vs_sb3{suffix}") == pytest.approx(
            rows[sb3][0] / rows["td3exp"][0], rel=0.01)
        assert number(values, f"sample_speedup_vs_sb3{suffix}") == pytest.approx(
            rows[sb3][-1] / rows["td3exp"][-1], rel=0.05)  # sample ms


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
    # the fp32 floor is below every measured fp32 update: it counts only the FLOPs, at the best matmul rate
    floor_ms = number(values, "update_floor_ms_fp32")
    timed = [float(m[1]) for m in re.finditer(r"^(?:td3exp|td3exp unmonitored|sb3) +([\d.]+) ms/update$",
                                              result.stdout, re.M)]
    assert len(timed) == 3 and 0 < floor_ms < min(timed)
    assert number(values, "step_ratio_ceiling_vs_sb3") > 1


def test_learning_benchmark_runs_td3exp_in_bf16_as_a_third_condition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not any(torch.cpu.get_capabilities().get(f) for f in NATIVE_BF16):
        pytest.skip("this CPU has no native bf16: agent.precision=bf16 is a config error here")
    result = run_benchmark("learning_vs_sb3", "--envs", "Pendulum-v1", "--seeds", "0", "--steps", "300",
                           "--eval-every", "150", "--eval-episodes", "1", "--out", str(tmp_path),
                           "--frameworks", "td3exp,td3exp_bf16", "agent.start_steps=200")
    assert result.returncode == 0, result.stderr[-3000:]
    values = {m[1]: m[2] for line in result.stdout.splitlines() if (m := KEY_LINE.fullmatch(line.strip()))}
    assert number(values, "steps_per_s_vs_sb3") > 0 and number(values, "steps_per_s_vs_sb3_td3exp_bf16") > 0
    assert "final_return_iqm_td3exp_bf16" in values
    summary = json.loads((tmp_path / "Pendulum-v1" / "summary.json").read_text())
    assert set(summary["final_return"]) == {"td3exp", "td3exp_bf16", "sb3"}
    table = pd.read_parquet(tmp_path / "Pendulum-v1" / "scalars.parquet")
    assert set(table["condition"]) == {"framework=td3exp", "framework=td3exp_bf16", "framework=sb3"}
    # the bf16 condition really ran in bf16; the fp32 one did not
    configs = {fw: (tmp_path / "runs" / "Pendulum-v1" / fw / "seed0" / ".hydra" / "config.yaml").read_text()
               for fw in ("td3exp", "td3exp_bf16")}
    assert "precision: bf16" in configs["td3exp_bf16"] and "precision: fp32" in configs["td3exp"]
