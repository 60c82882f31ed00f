"""debug.inject_nonfinite_at end to end: a real run with a NaN planted in one update skips and counts it, and the
stability report on that run says NO-GO because of it."""

from __future__ import annotations

from pathlib import Path

from .conftest import TINY, read_scalars, run_td3exp
from .test_report import run_report


def test_a_planted_nan_is_skipped_counted_and_makes_the_report_say_no_go(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_td3exp([*TINY, "debug.inject_nonfinite_at=5", "logger.wandb.mode=disabled",
                         "logger.progress_bar=false", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]  # one skipped update does not stop the run
    nonfinite = read_scalars(run_dir)["alerts/nonfinite"]
    assert nonfinite[-1][1] == 1.0  # counted once, cumulative
    report = run_report(run_dir, "--out", tmp_path / "report")
    assert report.returncode == 1, report.stdout + report.stderr
    verdicts = (tmp_path / "report" / "report.md").read_text()
    assert "NO-GO" in verdicts and "nonfinite" in verdicts
