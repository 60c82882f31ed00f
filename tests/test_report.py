"""Stability report on real TensorBoard event files: planted histories, bad inputs, and a real tiny run."""

from __future__ import annotations

import json
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
from td3exp.report.criteria import actor_loss_growth, evaluate
from td3exp.report.gate import load_gate
from td3exp.report.runs import load_run
from td3exp.report.windows import Windows

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
              overrides: list[str] | None = None, seed: int = 0, provenance: dict | None = None) -> Path:
    writer = SummaryWriter(str(run_dir / "tb"))
    for step, tag, value in sorted((s, t, v) for t, points in history.items() for s, v in points):
        writer.add_scalar(tag, value, step)  # in step order, as a training run writes
    writer.close()
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    config: dict = {"seed": seed, "total_steps": total_steps, "clip": {"max_norm": None}, "logger": {"wandb": {}},
                    "eval": {"episodes": 5}}
    for o in overrides or []:  # dotted keys become nested, as in a saved Hydra config
        key, value = o.split("=")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    if provenance is not None:
        (run_dir / "provenance.json").write_text(json.dumps(provenance))
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
    episode = next(c for c in v.criteria if c.name == "learning_improving")
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
    def growth(values: np.ndarray) -> float:
        return actor_loss_growth(Windows.per_update(values))

    assert growth(np.full(100, -5.0)) == pytest.approx(1.0)
    assert growth(-np.geomspace(2.85, 7.6e6, 100)) > 1e5
    assert growth(np.linspace(0.01, 0.5, 100)) < 1.0  # small losses: floored at 1, no false alarm
    # the median of the last 10 of 100 over the first 10 (even counts: the midpoint of the two middle values)
    assert growth(-np.arange(1.0, 101.0)) == pytest.approx(95.5 / 5.5)


def run_report(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "td3exp.report", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_report_on_a_real_tiny_training_run(tiny_run: Path, tmp_path: Path) -> None:
    result = run_report(tiny_run, "--out", tmp_path / "out")
    assert result.returncode in (0, 1), result.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    assert "actor_cnn_grad_mean" in report and "UNKNOWN" not in report
    assert all((tmp_path / "out" / f"{p}.png").is_file() for p in ("grad_norms", "losses_q", "alerts", "episodes"))


def test_a_repeated_seed_counts_once(tmp_path: Path) -> None:
    from td3exp.report.aggregate import group_by_config

    for name in ("a", "b"):  # the same condition and seed in two sweeps
        write_run(tmp_path / name, healthy_history(3000), 3000, ["clip=norm1"], seed=0)
    write_run(tmp_path / "c", healthy_history(3000, seed=1), 3000, ["clip=norm1"], seed=1)
    groups = group_by_config([load_run(tmp_path / n) for n in ("a", "b", "c")])
    assert [len(g) for g in groups.values()] == [2]


def test_condition_labels_drop_what_does_not_define_a_condition() -> None:
    from td3exp.dashboard.names import condition_name
    from td3exp.report.runs import seed_free_config

    overrides = ["clip=norm1", "seed=3", "logger.wandb.mode=disabled", "device=cuda", "trial.id=7",
                 "hydra/launcher=parallel", "experiments=clip_ablation"]
    assert condition_name(overrides) == "clip=norm1 experiments=clip_ablation"
    assert seed_free_config({"seed": 1, "trial": {"id": 3}, "clip": {"max_norm": 1.0}}) == {"clip": {"max_norm": 1.0}}


def test_a_control_cell_shared_by_two_sweeps_is_one_condition() -> None:
    from td3exp.report.aggregate import condition_labels
    from td3exp.report.runs import Run

    config = {"seed": 0, "encoder": {"trunk_norm": False}}
    grid = Run("grid/3", "clip=none experiments=grid", config, {}, 3000, 3000)
    control = Run("fixes/0", "encoder.trunk_norm=False experiments=fixes", {**config, "seed": 1}, {}, 3000, 3000)
    assert condition_labels([grid, control]) == ["clip=none experiments=grid"] * 2  # one color, one group


def test_the_fast_reader_matches_tensorboards_own(tiny_run: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from td3exp.report.events import read_scalars

    # a restarted writer: TensorBoard purges what was logged at or after the restart step
    writer = SummaryWriter(str(tmp_path / "tb"))
    for step in range(100):
        writer.add_scalar("loss/critic", float(step), step)
    writer.close()
    writer = SummaryWriter(str(tmp_path / "tb"), purge_step=60)
    for step in range(60, 80):
        writer.add_scalar("loss/critic", -float(step), step)
    writer.close()
    for log_dir in (tiny_run / "tb", tmp_path / "tb"):
        accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
        accumulator.Reload()
        ours = read_scalars(log_dir)
        assert sorted(ours) == sorted(accumulator.Tags()["scalars"])
        for tag, (steps, values) in ours.items():
            events = accumulator.Scalars(tag)
            assert steps.tolist() == [e.step for e in events]
            assert np.array_equal(values, [e.value for e in events], equal_nan=True)
    steps, values = read_scalars(tmp_path / "tb")["loss/critic"]
    assert steps.tolist() == list(range(80)) and values[59] == 59.0 and values[60] == -60.0
