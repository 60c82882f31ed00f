"""A run judged by its own gate at a horizon: the report's verdict on the logs so far, the horizon's report in the run
directory, the metrics to log, and when it stops.  Real tiny runs of the entrypoint (a state task), real event files,
the real report code."""

from __future__ import annotations

from pathlib import Path

import pytest

from td3exp.report.gate import load_gate
from td3exp.self_gate import GateStopped, SelfGate, summary_line

from .conftest import read_scalars, run_td3exp

TINY = ["env=gymnasium", "env.id=Pendulum-v1", "agent=fujimoto", "total_steps=200", "agent.start_steps=60",
        "agent.batch_size=16", "agent.buffer_size=500", "eval.every=200", "eval.episodes=1", "logger.log_every=20",
        "logger.wandb.mode=disabled", "logger.progress_bar=false", "checkpoint.every=0"]


def tiny_run(tmp_path: Path, *extra: str) -> Path:
    run_dir = tmp_path / "run"
    result = run_td3exp([*TINY, *extra, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode in (0, 3), result.stderr[-3000:]
    return run_dir


def test_a_planted_nan_makes_the_run_judge_itself_nogo_and_stop(tmp_path: Path) -> None:
    lines: list[str] = []
    gate = SelfGate(tiny_run(tmp_path, "debug.inject_nonfinite_at=5"), load_gate("seed"), [100], "nogo",
                    note=lines.append)
    assert gate.due(80, 100) == 100 and gate.due(100, 120) is None and gate.due(0, 60) is None
    verdict, metrics = gate.judge(100)
    assert verdict.verdict == "NO-GO" and gate.stops(verdict)
    assert metrics["gate/verdict"] == 2.0
    assert lines == [summary_line(100, verdict)] and lines[0].startswith("gate at step 100: NO-GO - ")
    assert "nonfinite" in lines[0] and "\n" not in lines[0]
    report = (tmp_path / "run" / "gate" / "step_100" / "report.md").read_text()
    assert "NO-GO" in report and "judged at step 100 of 200" in report
    stopped = GateStopped(100, verdict.verdict, gate.reason(verdict), "ckpt")
    assert "gate.stop_on=never" in str(stopped) and "nonfinite" in str(stopped)


@pytest.mark.parametrize(("stop_on", "stops"), [("nogo", False), ("hold", True), ("never", False)])
def test_stop_on_decides_which_verdicts_end_the_run(tmp_path: Path, stop_on: str, stops: bool) -> None:
    # the seed gate's episode-length criterion needs steps past 10,000: a 200-step run is at best HOLD or GO
    gate = SelfGate(tiny_run(tmp_path), load_gate("seed"), [200], stop_on, note=lambda _: None)
    verdict, _ = gate.judge(200)
    assert verdict.verdict in ("GO", "HOLD")
    assert gate.stops(verdict) == (stops and verdict.verdict == "HOLD")


def test_stop_on_must_be_known() -> None:
    with pytest.raises(ValueError, match="gate.stop_on must be one of nogo, hold, never"):
        SelfGate(Path("."), load_gate("seed"), [1], "sometimes")


def test_a_run_stops_on_its_own_nogo_and_goes_on_only_when_told(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*TINY, "debug.inject_nonfinite_at=5", "gate.at=[100]", "gate.stop_on=nogo", f"hydra.run.dir={run_dir}"]
    first = run_td3exp(args, cwd=tmp_path)
    lines = first.stderr.strip().splitlines()
    assert first.returncode == 7, first.stderr[-3000:]
    assert lines[-1].startswith("td3exp: stopped at step 100 on its gate verdict NO-GO") and \
        "gate.stop_on=never" in lines[-1]
    assert any(line.startswith("td3exp: gate at step 100: NO-GO") for line in lines)
    scalars = read_scalars(run_dir)
    assert scalars["gate/verdict"] == [(100, 2.0)] and max(s for s, _ in scalars["loss/critic"]) <= 100
    assert (run_dir / "gate" / "step_100" / "report.md").is_file()

    again = run_td3exp(args, cwd=tmp_path)  # the same command: the same verdict stops it again
    assert again.returncode == 7 and "stopped at step 100" in again.stderr, again.stderr[-3000:]
    on = run_td3exp([*args[:-2], "gate.stop_on=never", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert on.returncode == 0, on.stderr[-3000:]
    assert "resumed from" in on.stderr
    steps = [s for s, _ in read_scalars(run_dir)["loss/critic"]]
    assert steps == sorted(set(steps)) and steps[-1] == 200  # one stream: 100 steps more, no step twice
