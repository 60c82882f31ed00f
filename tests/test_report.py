"""Stability report on real TensorBoard event files: planted histories, bad inputs, and a real tiny run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from td3exp.metrics import CONTRACT
from td3exp.report.__main__ import main as report_main
from td3exp.report.gate import actor_loss_growth, evaluate, load_gate
from td3exp.report.runs import load_run

from .conftest import REPO

UPDATE_TAGS = [t for t in CONTRACT if t.split("/")[0] in ("grad", "grad_clipped", "loss", "q", "alerts")]


def healthy_history(steps: int, start: int = 1000, seed: int = 0) -> dict[str, list[tuple[int, float]]]:
    rng = np.random.default_rng(seed)
    history: dict[str, list[tuple[int, float]]] = {t: [] for t in UPDATE_TAGS}
    for step in range(start, steps + 1, 10):
        for tag in UPDATE_TAGS:
            value = 0.0 if tag.startswith("alerts/") else float(rng.uniform(0.5, 2.0))
            history[tag].append((step, value))
    history["q/q1"] = [(s, 20 + 50 * s / steps) for s, _ in history["q/q1"]]
    history["q/q2"] = [(s, 20 + 50 * s / steps) for s, _ in history["q/q2"]]
    history["loss/actor"] = [(s, -(20 + 50 * s / steps)) for s, _ in history["loss/actor"]]
    lengths = [(s, 100.0 + s / 100) for s in range(500, steps + 1, 500)]  # episodes get longer
    history["episode/length"] = lengths
    history["episode/return"] = [(s, v / 10) for s, v in lengths]
    history["eval/return"] = [(steps, 50.0 + seed)]
    return history


def write_run(run_dir: Path, history: dict[str, list[tuple[int, float]]], total_steps: int,
              overrides: list[str] | None = None, seed: int = 0) -> Path:
    writer = SummaryWriter(str(run_dir / "tb"))
    for step, tag, value in sorted((s, t, v) for t, points in history.items() for s, v in points):
        writer.add_scalar(tag, value, step)  # in step order, as a training run writes
    writer.close()
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "total_steps": total_steps, "clip": {"max_norm": None}, "logger": {"wandb": {}}}
    for o in overrides or []:
        key, value = o.split("=")
        config[key] = value
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*(overrides or []), f"seed={seed}"]))
    old = time.time() - 3600  # finished an hour ago
    for f in (run_dir / "tb").iterdir():
        os.utime(f, (old, old))
    return run_dir


def verdict_of(run_dir: Path, gate: str = "seed"):
    return evaluate(load_run(run_dir), load_gate(gate))


def test_explosion_is_no_go_naming_the_failing_criteria(tmp_path: Path) -> None:
    history = healthy_history(5000)
    updates = [s for s, _ in history["grad/actor_cnn"]]
    growth = np.geomspace(3.5e4, 8.2e6, len(updates))  # the original report's actor-CNN norms
    history["grad/actor_cnn"] = list(zip(updates, growth, strict=True))
    history["loss/actor"] = list(zip(updates, -np.geomspace(2.85, 7.6e6, len(updates)), strict=True))
    history["alerts/critical"] = [(s, float(i)) for i, s in enumerate(updates)]
    v = verdict_of(write_run(tmp_path / "exploded", history, 5000))
    assert v.verdict == "NO-GO"
    failed = {c.name for c in v.criteria if c.status == "FAIL" and c.nogo}
    assert failed == {"actor_cnn_grad_mean", "actor_loss_growth", "critical_alerts"}
    assert all(c.explanation for c in v.failing)


def test_healthy_long_run_is_go_with_every_criterion_checked(tmp_path: Path) -> None:
    v = verdict_of(write_run(tmp_path / "healthy", healthy_history(12_000), 12_000))
    assert v.verdict == "GO", [(c.name, c.status, c.value) for c in v.criteria]
    assert {c.status for c in v.criteria} == {"PASS"} and len(v.criteria) == 7


def test_nan_is_no_go(tmp_path: Path) -> None:
    history = healthy_history(3000)
    history["loss/critic"][-1] = (history["loss/critic"][-1][0], float("nan"))
    v = verdict_of(write_run(tmp_path / "nan", history, 3000))
    nonfinite = next(c for c in v.criteria if c.name == "nonfinite")
    assert v.verdict == "NO-GO" and nonfinite.status == "FAIL" and "loss/critic" in nonfinite.value


def test_short_run_skips_the_10k_criterion(tmp_path: Path) -> None:
    v = verdict_of(write_run(tmp_path / "short", healthy_history(5000), 5000))
    episode = next(c for c in v.criteria if c.name == "episode_length_improving")
    assert episode.status == "SKIPPED" and "5,000 steps" in episode.value
    assert v.verdict == "GO"


def test_missing_tags_are_unknown_and_never_go(tmp_path: Path) -> None:
    history = healthy_history(3000)
    for tag in [t for t in history if t.startswith(("grad/actor_cnn", "grad_clipped/"))]:
        del history[tag]
    v = verdict_of(write_run(tmp_path / "missing", history, 3000))
    grad = next(c for c in v.criteria if c.name == "actor_cnn_grad_mean")
    assert grad.status == "UNKNOWN" and v.verdict == "HOLD"


def test_actor_loss_growth_definition() -> None:
    assert actor_loss_growth(np.full(100, -5.0)) == pytest.approx(1.0)
    assert actor_loss_growth(-np.geomspace(2.85, 7.6e6, 100)) > 1e5
    assert actor_loss_growth(np.linspace(0.01, 0.5, 100)) < 1.0  # small losses: floored at 1, no false alarm


def run_report(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "td3exp.report", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_command_compares_runs_writes_report_and_exits_1_on_no_go(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "healthy", healthy_history(3000), 3000, ["clip=norm1"])
    history = healthy_history(3000)
    history["alerts/critical"][-1] = (history["alerts/critical"][-1][0], 3.0)
    write_run(tmp_path / "runs" / "alerted", history, 3000, ["clip=none"])
    result = run_report(tmp_path / "runs", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "clip=norm1" in result.stdout and "GO" in result.stdout and "NO-GO" in result.stdout
    report = (tmp_path / "out" / "report.md").read_text()
    assert "critical_alerts" in report and "**NO-GO**" in report
    for png in ("grad_norms", "losses_q", "alerts", "diagnostics", "episodes"):
        assert (tmp_path / "out" / f"{png}.png").stat().st_size > 10_000


def test_seeds_of_one_configuration_are_aggregated(tmp_path: Path) -> None:
    for seed in range(3):
        write_run(tmp_path / "sweep" / str(seed), healthy_history(3000, seed=seed), 3000, ["clip=norm1"], seed=seed)
    write_run(tmp_path / "sweep" / "other", healthy_history(3000), 3000, ["clip=none"])
    assert report_main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out"), "--bootstrap-reps", "500"]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| `clip=norm1` | final eval/return"))
    assert "| 3 | 51 |" in row  # IQM of 50, 51, 52 with 3 runs
    assert "| `clip=none` | final eval/return | 1 |" in report
    # the ablation table: one row per configuration, each criterion seed by seed
    row = next(line for line in report.splitlines() if line.startswith("| `clip=norm1` | 0, 1, 2 |"))
    cells = row.split(" | ")
    assert cells[-1] == "GO ; GO ; GO |" and all(len(c.split(" ; ")) == 3 for c in cells[2:])


@pytest.mark.parametrize("case", ["empty", "no_events", "missing"])
def test_unusable_input_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    target = tmp_path / case
    if case != "missing":
        target.mkdir()
    if case == "no_events":
        (target / "notes.txt").write_text("not a run")
    result = run_report(target, "--out", tmp_path / "out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 2  # the path's problem, then "no usable runs"
    assert {"empty": "is empty", "no_events": "no TensorBoard event files", "missing": "no such directory"}[case] \
        in lines[0]


def test_corrupt_event_file_is_reported_and_skipped(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "good", healthy_history(3000), 3000)
    bad = tmp_path / "runs" / "bad" / "tb"
    bad.mkdir(parents=True)
    (bad / "events.out.tfevents.1.host.1.0").write_bytes(np.random.default_rng(0).bytes(4096))
    result = run_report(tmp_path / "runs", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "corrupt" in result.stderr and "bad" in result.stderr


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


def test_report_on_a_real_tiny_training_run(tiny_run: Path, tmp_path: Path) -> None:
    result = run_report(tiny_run, "--out", tmp_path / "out")
    assert result.returncode in (0, 1), result.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    assert "actor_cnn_grad_mean" in report and "UNKNOWN" not in report
    assert all((tmp_path / "out" / f"{p}.png").is_file() for p in ("grad_norms", "losses_q", "alerts", "episodes"))


def test_planted_saturated_actor_fails_strict_and_passes_seed(tmp_path: Path) -> None:
    history = healthy_history(5000)
    updates = [s for s, _ in history["grad/actor_cnn"]]
    # a dead tanh actor: tiny gradients, every output in tanh's tails, a healthy critic
    history["grad/actor_cnn"] = [(s, 1e-4) for s in updates]
    history["actor/saturation"] = [(s, min(1.0, 0.86 + i / 10)) for i, s in enumerate(updates)]
    history["update_ratio/actor_cnn"] = [(s, 3e-4) for s in updates]
    run_dir = write_run(tmp_path / "dead", history, 5000)
    assert verdict_of(run_dir, "seed").verdict == "GO"
    strict = verdict_of(run_dir, "strict")
    saturated = next(c for c in strict.criteria if c.name == "actor_saturation")
    assert strict.verdict == "NO-GO" and saturated.status == "FAIL" and "pixel_scale" in saturated.explanation


def test_strict_gate_checks_the_actor_cnn_update_ratio_band(tmp_path: Path) -> None:
    history = healthy_history(5000)
    updates = [s for s, _ in history["grad/actor_cnn"]]
    history["actor/saturation"] = [(s, 0.0) for s in updates]
    history["update_ratio/actor_cnn"] = [(s, 0.5) for s in updates]  # runaway weights
    strict = verdict_of(write_run(tmp_path / "runaway", history, 5000), "strict")
    ratio = next(c for c in strict.criteria if c.name == "actor_cnn_update_ratio")
    assert ratio.status == "FAIL" and strict.verdict == "HOLD"


def test_a_repeated_seed_counts_once(tmp_path: Path) -> None:
    from td3exp.report.aggregate import group_by_config

    for name in ("a", "b"):  # the same condition and seed in two sweeps
        write_run(tmp_path / name, healthy_history(3000), 3000, ["clip=norm1"], seed=0)
    write_run(tmp_path / "c", healthy_history(3000, seed=1), 3000, ["clip=norm1"], seed=1)
    groups = group_by_config([load_run(tmp_path / n) for n in ("a", "b", "c")])
    assert [len(g) for g in groups.values()] == [2]


def test_condition_labels_drop_what_does_not_define_a_condition() -> None:
    from td3exp.report.runs import condition_label, seed_free_config

    overrides = ["clip=norm1", "seed=3", "logger.wandb.mode=disabled", "device=cuda", "trial.id=7",
                 "hydra/launcher=parallel", "experiments=clip_ablation"]
    assert condition_label(overrides) == "clip=norm1 experiments=clip_ablation"
    assert seed_free_config({"seed": 1, "trial": {"id": 3}, "clip": {"max_norm": 1.0}}) == {"clip": {"max_norm": 1.0}}


def test_a_control_cell_shared_by_two_sweeps_is_one_condition() -> None:
    from td3exp.report.aggregate import condition_labels
    from td3exp.report.runs import Run

    config = {"seed": 0, "encoder": {"trunk_norm": False}}
    grid = Run(Path("grid/3"), "clip=none experiments=grid", config, {}, 3000, 3000)
    control = Run(Path("fixes/0"), "encoder.trunk_norm=False experiments=fixes", {**config, "seed": 1}, {}, 3000, 3000)
    assert condition_labels([grid, control]) == ["clip=none experiments=grid"] * 2  # one color, one group
