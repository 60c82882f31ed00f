"""The gate on runs logged per window of updates (issue 12's contract) against the same runs logged per update.

Run as a script, this file builds a synthetic 1M-step run (4,000 windows, 100 tags, real TensorBoard event files) and
times the report on it: ``python tests/test_report_windows.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from td3exp.report.criteria import evaluate
from td3exp.report.gate import load_gate
from td3exp.report.runs import Run, Series, load_run
from td3exp.report.windows import Windows, median, weighted_mean, weighted_median, windows

CRITIC_TAGS = ["grad/critic", "grad/critic_cnn", "grad_clipped/critic", "grad_clipped/critic_cnn", "loss/critic",
               "q/q1", "q/q2", "q/abs_diff", "q/target", "features/critic_norm", "update_ratio/critic",
               "update_ratio/critic_cnn"]
ACTOR_TAGS = ["grad/actor", "grad/actor_cnn", "grad_clipped/actor", "grad_clipped/actor_cnn", "loss/actor",
              "actor/saturation", "actor/saturation_max", "actor/preact_abs", "features/actor_norm",
              "update_ratio/actor", "update_ratio/actor_cnn"]


def per_update_metrics(updates: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Noisy, heavy-tailed update metrics; actor metrics on every other update (policy_delay 2)."""
    rng = np.random.default_rng(seed)
    metrics = {tag: rng.lognormal(0.0, 1.0, updates) for tag in CRITIC_TAGS}
    metrics.update({tag: rng.lognormal(0.0, 1.0, updates // 2) for tag in ACTOR_TAGS})
    metrics["q/q1"] = 20 + rng.normal(0, 30, updates)  # signed: its peak is the largest |value|
    metrics["loss/actor"] = -np.linspace(5, 500, updates // 2) * rng.uniform(0.5, 1.5, updates // 2)
    metrics["actor/saturation"] = rng.uniform(0, 1, updates // 2)
    metrics["actor/saturation_max"] = rng.uniform(0.3, 1, updates // 2)
    metrics["update_ratio/actor_cnn"] = rng.lognormal(np.log(1e-4), 0.5, updates // 2)
    metrics["update_ratio/critic_cnn"] = rng.lognormal(np.log(5e-4), 0.5, updates)
    return metrics


def as_updates(metrics: dict[str, np.ndarray], start: int = 1000) -> dict[str, Series]:
    """One point per update: critic updates at every step, actor updates at every second one."""
    scalars = {}
    for tag, values in metrics.items():
        stride = 2 if tag in ACTOR_TAGS else 1
        scalars[tag] = Series(start + stride * np.arange(1, len(values) + 1), values)
    updates = len(metrics["loss/critic"])
    scalars["alerts/critical"] = Series(start + np.arange(1, updates + 1), np.zeros(updates))
    return scalars


def as_windows(metrics: dict[str, np.ndarray], window: int, start: int = 1000) -> dict[str, Series]:
    """The same updates logged as issue 12 specifies: per window of ``window`` critic updates, the mean under the
    tag, the largest |value| under its ``_max`` twin, and the update counts."""
    updates = len(metrics["loss/critic"])
    ends = np.arange(window, updates + 1, window)
    steps = start + ends
    scalars = {"window/updates": Series(steps, np.full(len(ends), float(window))),
               "window/actor_updates": Series(steps, np.full(len(ends), float(window // 2))),
               "alerts/critical": Series(steps, np.zeros(len(ends)))}
    for tag, values in metrics.items():
        size = window // 2 if tag in ACTOR_TAGS else window
        chunks = values[: len(ends) * size].reshape(len(ends), size)
        family, name = tag.split("/", 1)
        scalars[tag] = Series(steps, chunks.mean(axis=1))
        scalars[f"{family}_max/{name}"] = Series(steps, np.abs(chunks).max(axis=1))
    return scalars


def make_run(scalars: dict[str, Series], total: int = 5000) -> Run:
    return Run("memory", "synthetic", {"seed": 0, "total_steps": total}, scalars, total, total)


def criteria(run: Run) -> dict[str, str]:
    return {c.name: c.value for c in evaluate(run, load_gate("strict")).criteria}


def test_weighted_median_is_numpys_median_for_windows_of_one() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 10, 101):
        values = rng.normal(size=n)
        assert weighted_median(values, np.ones(n)) == pytest.approx(float(np.median(values)))
    values, counts = np.array([3.0, 1.0, 2.0]), np.array([1.0, 5.0, 2.0])
    assert weighted_median(values, counts) == np.median(np.repeat(values, counts.astype(int)))


def test_windowed_and_per_update_runs_give_the_same_gate() -> None:
    metrics = per_update_metrics(4000)
    exact, windowed = make_run(as_updates(metrics)), make_run(as_windows(metrics, window=100))
    a, b = criteria(exact), criteria(windowed)
    # means and maxima are exact from windows
    for name in ("actor_cnn_grad_mean", "q_abs_max", "critic_loss_mean", "critical_alerts", "nonfinite"):
        assert a[name] == b[name], name
    assert float(a["actor_cnn_grad_mean"]) == pytest.approx(float(np.mean(metrics["grad/actor_cnn"])), rel=1e-3)
    assert float(a["q_abs_max"]) == pytest.approx(float(np.max(np.abs(metrics["q/q1"]))), rel=1e-3)
    # medians come from window means: close to the per-update median for a stationary signal, not equal
    for name in ("actor_saturation", "actor_cnn_update_ratio"):
        assert float(b[name]) == pytest.approx(float(a[name]), rel=0.2), name
    growth_exact, growth_windows = (float(x["actor_loss_growth"].lstrip("x")) for x in (a, b))
    assert growth_windows == pytest.approx(growth_exact, rel=0.2)


def test_window_counts_weight_the_means() -> None:
    steps = np.array([100, 200, 300])
    scalars = {"grad/actor_cnn": Series(steps, np.array([1.0, 10.0, 100.0])),
               "window/actor_updates": Series(steps, np.array([8.0, 1.0, 1.0])),
               "grad_max/actor_cnn": Series(steps, np.array([2.0, 30.0, 400.0]))}
    w = windows(make_run(scalars), "grad/actor_cnn")
    assert w is not None and w.updates == 10
    assert weighted_mean(w) == pytest.approx((8 * 1 + 10 + 100) / 10)
    assert median(w) == 1.0 and float(np.max(w.peaks)) == 400.0
    assert weighted_mean(Windows.per_update(np.array([1.0, 10.0, 100.0]))) == pytest.approx(37.0)


def write_windowed_run(run_dir: Path, windows_count: int, tags: int, window: int = 250, seed: int = 0) -> Path:
    """A run logged per window as real TensorBoard event files: the contract's tags, padded to ``tags`` tags."""
    rng = np.random.default_rng(seed)
    per_window = {tag: rng.lognormal(0, 1, windows_count) for tag in CRITIC_TAGS + ACTOR_TAGS}
    per_window["actor/saturation_max"] = rng.uniform(0, 0.5, windows_count)
    per_window["update_ratio/actor_cnn"] = rng.lognormal(np.log(1e-4), 0.3, windows_count)
    per_window["update_ratio/critic_cnn"] = rng.lognormal(np.log(5e-4), 0.3, windows_count)
    series = dict(per_window)
    series.update({f"{t.split('/')[0]}_max/{t.split('/')[1]}": 3 * v for t, v in per_window.items()})
    series["window/updates"] = np.full(windows_count, float(window))
    series["window/actor_updates"] = np.full(windows_count, float(window // 2))
    for name in ("warning", "critical", "nonfinite", "saturation_warning", "saturation_critical"):
        series[f"alerts/{name}"] = np.zeros(windows_count)
    series["episode/length"] = np.linspace(100, 1000, windows_count)  # one episode per window, getting longer
    series["eval/return"] = np.linspace(-50, 600, windows_count)
    for i in range(tags - len(series)):
        series[f"extra/{i}"] = rng.normal(size=windows_count)
    writer = SummaryWriter(str(run_dir / "tb"))
    steps = window * np.arange(1, windows_count + 1)
    for k, step in enumerate(steps):
        for tag, values in series.items():
            writer.add_scalar(tag, values[k], int(step))
    writer.close()
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "total_steps": int(steps[-1]), "eval": {"episodes": 10}}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={seed}"]))
    old = time.time() - 3600
    for f in (run_dir / "tb").iterdir():
        os.utime(f, (old, old))
    return run_dir


def test_a_windowed_run_from_event_files_is_judged_from_its_windows(tmp_path: Path) -> None:
    run = load_run(write_windowed_run(tmp_path / "run", windows_count=40, tags=60))
    v = evaluate(run, load_gate("strict"))
    assert v.verdict == "GO", [(c.name, c.status, c.value) for c in v.failing]
    q = next(c for c in v.criteria if c.name == "q_abs_max")
    assert float(q.value) == pytest.approx(3 * float(np.max(run.scalars["q/q1"].values)), rel=1e-5)


def test_windows_without_actor_updates_carry_no_value(tmp_path: Path) -> None:
    steps = np.array([100, 200, 300])
    scalars = {"update_ratio/actor_cnn": Series(steps, np.array([1e-4, np.nan, 2e-4])),
               "window/actor_updates": Series(steps, np.array([5.0, 0.0, 5.0])),
               "alerts/critical": Series(steps, np.zeros(3))}
    nonfinite = next(c for c in evaluate(make_run(scalars), load_gate("strict")).criteria if c.name == "nonfinite")
    assert nonfinite.status == "PASS"


def benchmark(windows_count: int = 4000, tags: int = 100) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = write_windowed_run(Path(tmp) / "run", windows_count, tags)
        written = time.perf_counter() - start
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MPLBACKEND": "Agg"}
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "td3exp.report", str(run_dir), "--gate", "strict", "--out",
                                 str(Path(tmp) / "out")], capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        size = sum(f.stat().st_size for f in (run_dir / "tb").iterdir()) / 1e6
        print(f"synthetic run: {windows_count} windows x {tags} tags ({windows_count * tags:,} scalars, "
              f"{size:.1f} MB of event files, written in {written:.0f} s)")
        print(f"report_seconds_1m_step_run: {seconds:.1f} (exit {result.returncode})")


if __name__ == "__main__":
    benchmark()
