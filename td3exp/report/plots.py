"""Comparison plots: every run overlaid, one PNG per family of metrics."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from td3exp.config import MODULES  # noqa: E402
from td3exp.report.aggregate import condition_labels  # noqa: E402
from td3exp.report.runs import Run  # noqa: E402

MAX_POINTS = 2000


def _thin(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stride = max(1, len(steps) // MAX_POINTS)
    return steps[::stride], values[::stride]


def _short(label: str, limit: int = 90) -> str:
    return label if len(label) <= limit else label[: limit - 3] + "..."


def _colors(labels: list[str]) -> dict[str, tuple]:
    """One color per condition: seeds of a condition share it."""
    unique = list(dict.fromkeys(labels))
    cmap = plt.get_cmap("tab10" if len(unique) <= 10 else "tab20")
    return {label: cmap(i % cmap.N) for i, label in enumerate(unique)}


def _panel(
    ax, runs: list[Run], tag: str, scale: str = "linear", style: str = "-", legend: bool = True,
    linthresh: float = 1.0,
) -> None:
    labels = condition_labels(runs)
    colors, labelled = _colors(labels), set()
    for run, label in zip(runs, labels, strict=True):
        series = run.scalars.get(tag)
        if series is None or len(series.values) == 0:
            continue
        steps, values = _thin(series.steps, series.values)
        first = legend and label not in labelled
        labelled.add(label)
        ax.plot(steps, values, style, color=colors[label], lw=0.8, alpha=0.8,
                label=_short(label) if first else "_nolegend_")
    ax.set_title(tag, fontsize=9)
    if scale == "symlog":  # keeps exact zeros (a dead actor's update ratio) visible on a log-like axis
        ax.set_yscale(scale, linthresh=linthresh)
    else:
        ax.set_yscale(scale)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)


def _figure(rows: int, cols: int) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    return fig, axes


def _save(fig: plt.Figure, axes: np.ndarray, path: Path) -> Path:
    fig.tight_layout()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:  # one entry per condition, right of the panels
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_all(runs: list[Run], out: Path) -> list[Path]:
    paths = []
    fig, axes = _figure(2, 2)
    for ax, module in zip(axes.flat, MODULES, strict=True):
        _panel(ax, runs, f"grad/{module}", "log")
        _panel(ax, runs, f"grad_clipped/{module}", "log", ":", legend=False)
        ax.set_title(f"grad/{module}: pre-clip solid, post-clip dotted", fontsize=9)
    paths.append(_save(fig, axes, out / "grad_norms.png"))

    fig, axes = _figure(1, 3)
    _panel(axes[0, 0], runs, "loss/actor", "symlog", linthresh=1.0)
    _panel(axes[0, 1], runs, "loss/critic", "log")
    _panel(axes[0, 2], runs, "q/q1")
    _panel(axes[0, 2], runs, "q/q2", style="--", legend=False)
    axes[0, 2].set_title("q/q1 solid, q/q2 dashed", fontsize=9)
    paths.append(_save(fig, axes, out / "losses_q.png"))

    fig, axes = _figure(1, 3)
    _panel(axes[0, 0], runs, "alerts/warning")
    _panel(axes[0, 1], runs, "alerts/critical")
    _panel(axes[0, 2], runs, "alerts/nonfinite")
    paths.append(_save(fig, axes, out / "alerts.png"))

    fig, axes = _figure(1, 3)
    _panel(axes[0, 0], runs, "actor/saturation")
    _panel(axes[0, 1], runs, "update_ratio/actor_cnn", "symlog", linthresh=1e-6)
    _panel(axes[0, 2], runs, "features/actor_norm", "log")
    paths.append(_save(fig, axes, out / "diagnostics.png"))

    fig, axes = _figure(1, 3)
    _panel(axes[0, 0], runs, "episode/return")
    _panel(axes[0, 1], runs, "episode/length")
    _panel(axes[0, 2], runs, "eval/return", style="o-")
    paths.append(_save(fig, axes, out / "episodes.png"))
    return paths
