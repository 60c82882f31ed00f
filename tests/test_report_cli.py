"""``python -m td3exp.report`` end to end on real event files: a sweep with mixed provenance and a corrupt run, its
exported table read back, and inputs it cannot use."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from td3exp.report.__main__ import main as report_main
from td3exp.report.runs import load_run

from .test_report import healthy_history, run_report, write_run

H100 = {"commit": "abc1234def", "dirty": False, "device": "cuda", "device_name": "NVIDIA H100 80GB HBM3"}
CPU = {"commit": "abc1234def", "dirty": False, "device": "cpu", "device_name": "2-core CPU"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One report over a sweep: three seeds of a healthy condition (two on a GPU, one on a CPU), an alerted run and
    a corrupt one; its scalars exported to a table."""
    root = tmp_path_factory.mktemp("sweep")
    for seed in range(3):
        write_run(root / "runs" / str(seed), healthy_history(3000, seed=seed), 3000, ["clip=norm1"], seed=seed,
                  provenance=H100 if seed < 2 else CPU)
    history = healthy_history(3000)
    history["alerts/critical"][-1] = (history["alerts/critical"][-1][0], 3.0)
    write_run(root / "runs" / "3", history, 3000, ["clip=none"])
    bad = root / "runs" / "bad" / "tb"
    bad.mkdir(parents=True)
    (bad / "events.out.tfevents.1.host.1.0").write_bytes(np.random.default_rng(0).bytes(4096))
    result = run_report(root / "runs", "--out", root / "out", "--bootstrap-reps", "200", "--export",
                        root / "scalars.parquet")
    return root, result


def test_command_compares_runs_writes_report_and_exits_1_on_no_go(sweep) -> None:
    root, result = sweep
    assert result.returncode == 1, result.stderr
    assert re.search(r"^clip=none seed=0 +NO-GO +critical_alerts=3$", result.stdout, re.MULTILINE)
    report = (root / "out" / "report.md").read_text()
    assert "critical_alerts" in report and "**NO-GO**" in report
    page = (root / "out" / "report.html").read_text()
    assert "<table>" in page and "critical_alerts" in page
    for png in ("grad_norms", "losses_q", "alerts", "diagnostics", "episodes", "performance_profiles"):
        assert (root / "out" / f"{png}.png").stat().st_size > 3_000  # a drawn plot, not an empty canvas
        assert f'src="{png}.png"' in page


def test_runs_are_named_by_condition_and_grouped_by_seed(sweep) -> None:
    root, result = sweep
    names = sorted(line.split("  ")[0] for line in result.stdout.splitlines()[1:5])
    assert names == ["clip=none seed=0", "clip=norm1 seed=0", "clip=norm1 seed=1", "clip=norm1 seed=2"]
    report = (root / "out" / "report.md").read_text()
    # three runs: their values, the mean and the range, called so; never an IQM or a 95% CI
    row = next(line for line in report.splitlines() if line.startswith("| `clip=norm1` | final eval/return"))
    assert "| 3 | 50 ; 51 ; 52 | mean 51, range [50, 52] (n=3) |" in row and "3 runs (< 5)" in row
    assert "IQM" not in row and "CI" not in row
    # the ablation table: one row per configuration, each criterion seed by seed
    row = next(line for line in report.splitlines() if line.startswith("| `clip=norm1` | 0, 1, 2 |"))
    cells = row.split(" | ")
    assert cells[-1] == "GO ; GO ; GO |" and all(len(c.split(" ; ")) == 3 for c in cells[2:])
    # a comparison of the two conditions that says what three runs against one can and cannot show
    row = next(line for line in report.splitlines() if line.startswith("| `clip=none` | `clip=norm1`"))
    # seed 0 is the only seed both have: one seed pair, compared by the sign test, whose floor (p = 1) is said
    assert "0/1 vs 1/1 GO, sign test on 1 seed pairs" in row and "not distinguishable from seed noise" in row
    assert "floor p = 1 with 1 pairs" in row


def test_device_and_commit_per_run_and_a_warning_for_mixed_devices(sweep) -> None:
    root, result = sweep
    warning = "`clip=norm1` mixes devices cuda (NVIDIA H100 80GB HBM3): seed 0, 1; cpu (2-core CPU): seed 2"
    assert f"warning: {warning}" in result.stdout
    report = (root / "out" / "report.md").read_text()
    assert warning in report and "| `clip=norm1 seed=2` | cpu (2-core CPU) | abc1234def |" in report
    assert "| `clip=none seed=0` | unknown | unknown |" in report  # no provenance.json: said, not guessed
    assert "commits" not in warning


def test_corrupt_event_file_is_reported_and_skipped(sweep) -> None:
    _, result = sweep
    line = next(line for line in result.stderr.splitlines() if "corrupt" in line)
    assert "bad" in line and "Traceback" not in result.stderr


def test_an_exported_table_reads_back_as_the_same_runs(sweep) -> None:
    root, result = sweep
    again = run_report(root / "scalars.parquet", "--out", root / "again", "--bootstrap-reps", "200")
    assert again.returncode == result.returncode
    assert again.stdout.splitlines()[:5] == result.stdout.splitlines()[:5]  # the verdict table, run by run
    assert (root / "again" / "report.md").read_text().count("mixes devices") == 1


def test_export_needs_a_parquet_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path / "run", healthy_history(3000), 3000)
    code = report_main([str(tmp_path / "run"), "--export", str(tmp_path / "scalars.csv"), "--out", str(tmp_path)])
    stderr = capsys.readouterr().err
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and ".parquet" in stderr


@pytest.mark.parametrize("case", ["empty", "no_events", "missing"])
def test_unusable_input_exits_2_with_one_line(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / case
    if case != "missing":
        target.mkdir()
    if case == "no_events":
        (target / "notes.txt").write_text("not a run")
    assert report_main([str(target), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2  # the path's problem, then "no usable runs"
    assert {"empty": "is empty", "no_events": "no TensorBoard event files", "missing": "no such file or directory"}[
        case] in lines[0]


def test_truncated_and_in_progress_runs(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", healthy_history(5000), 5000)
    events = next((run_dir / "tb").iterdir())
    data = events.read_bytes()
    events.write_bytes(data[: len(data) // 2])  # cut mid-record
    old = time.time() - 3600
    os.utime(events, (old, old))
    run = load_run(run_dir)
    assert run.last_step < 5000 and run.notes and "incomplete" in run.notes[0]
    os.utime(events, None)  # just written: a run still in progress
    result = run_report(run_dir, "--out", tmp_path / "out")
    assert result.returncode == 2 and "still being written" in result.stderr
