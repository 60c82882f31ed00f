"""Windowed update metrics (issue 12): the device-side aggregation against plain NumPy on the same updates, NaN kept,
a checkpoint inside a window, and the contract the report reads."""

from __future__ import annotations

import numpy as np
import torch

from td3exp.metric_window import MetricWindow
from td3exp.metrics import CONTRACT, WINDOW_CONTRACT, is_update_metric, max_twin
from td3exp.report import windows as report_windows

CRITIC = ["loss/critic", "q/q1", "grad/critic", "update_ratio/critic_cnn"]
ACTOR = ["loss/actor", "actor/saturation_max", "grad/actor_cnn"]


def updates(count: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Signed, heavy-tailed metrics; actor metrics on every second update; a cumulative alert counter."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(1, count + 1):
        tags = CRITIC + (ACTOR if u % 2 == 0 else [])
        metrics = {t: torch.tensor(float(rng.standard_cauchy()), dtype=torch.float32) for t in tags}
        metrics["alerts/critical"] = torch.tensor(float(u // 3))
        out.append(metrics)
    return out


def expected(window: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    points: dict[str, float] = {}
    for tag in CRITIC + ACTOR:
        values = np.array([m[tag].item() for m in window if tag in m], dtype=np.float32)
        points[tag], points[max_twin(tag)] = float(values.astype(np.float64).mean()), float(np.abs(values).max())
    points["alerts/critical"] = window[-1]["alerts/critical"].item()
    points["window/updates"] = float(len(window))
    points["window/actor_updates"] = float(sum("loss/actor" in m for m in window))
    return points


def as_floats(points: dict) -> dict[str, float]:
    return {k: float(v) for k, v in points.items()}


def test_window_points_are_means_maxima_counts_and_the_newest_alert_count() -> None:
    window, stream = MetricWindow(), updates(25)
    assert window.flush() == {}  # a window without updates writes nothing
    for metrics in stream[:10]:
        window.add(metrics)
    got, want = as_floats(window.flush()), expected(stream[:10])
    assert got.keys() == want.keys()
    for tag, value in want.items():
        assert np.isclose(got[tag], value, rtol=1e-5), tag
    for metrics in stream[10:]:  # the next window starts empty
        window.add(metrics)
    assert as_floats(window.flush())["window/updates"] == 15.0


def test_a_nan_or_inf_anywhere_in_the_window_shows_in_mean_and_max() -> None:
    window, stream = MetricWindow(), updates(6)
    stream[2]["q/q1"] = torch.tensor(float("nan"))
    stream[3]["grad/actor_cnn"] = torch.tensor(float("inf"))
    for metrics in stream:
        window.add(metrics)
    points = as_floats(window.flush())
    assert np.isnan(points["q/q1"]) and np.isnan(points["q_max/q1"])
    assert points["grad/actor_cnn"] == np.inf and points["grad_max/actor_cnn"] == np.inf
    assert np.isfinite(points["loss/critic"])


def test_a_window_resumed_from_its_state_flushes_the_same_points() -> None:
    stream = updates(12, seed=3)
    whole, first = MetricWindow(), MetricWindow()
    for metrics in stream:
        whole.add(metrics)
    for metrics in stream[:5]:
        first.add(metrics)
    resumed = MetricWindow()
    resumed.load_state_dict(first.state_dict(), torch.device("cpu"))
    for metrics in stream[5:]:
        resumed.add(metrics)
    a, b = as_floats(whole.flush()), as_floats(resumed.flush())
    assert a == b  # bit for bit: the same sums in the same order


def test_the_window_contract_is_the_one_the_report_reads() -> None:
    update_tags = [t for t in CONTRACT if is_update_metric(t)]
    assert all(report_windows.max_twin(t) in WINDOW_CONTRACT for t in update_tags)
    assert all(report_windows.is_max_twin(t) for t in WINDOW_CONTRACT if not t.startswith("window/"))
    assert not any(report_windows.is_update_metric(t) for t in WINDOW_CONTRACT)  # twins are not averaged again


def test_the_metrics_page_names_every_window_tag() -> None:
    from .conftest import REPO

    metrics = (REPO / "docs" / "metrics.md").read_text()
    assert [tag for tag in WINDOW_CONTRACT if f"`{tag}`" not in metrics] == []
