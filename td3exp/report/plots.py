"""Comparison plots: every run overlaid, one PNG per family of metrics."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from td3exp.config import MODULES  # noqa: E402
from td3exp.report.runs import Run  # noqa: E402

MAX_POINTS = 2000


def _thin(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stride = max(1, len(steps) // MAX_POINTS)
    return steps[::stride], values[::stride]


def _short(label: str, limit: int = 90) -> str:
    return label if len(label) <= limit else label[: limit - 3] + "..."


def _panel(ax, runs: list[Run], tag: str, scale: str = "linear", style: str = "-", legend: bool = True) -> None:
    for i, run in enumerate(runs):
        series = run.scalars.get(tag)
        if series is None or len(series.values) == 0:
            continue
        steps, values = _thin(series.steps, series.values)
        ax.plot(steps, values, style, color=f"C{i % 10}", lw=1, label=_short(run.label) if legend else "_nolegend_")
    ax.set_title(tag, fontsize=9)
    ax.set_yscale(scale)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)


def _figure(rows: int, cols: int) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    return fig, axes


def _save(fig: plt.Figure, axes: np.ndarray, path: Path) -> Path:
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", fontsize=7, ncol=1, frameon=False)
        fig.tight_layout(rect=(0, min(0.5, (0.3 + 0.25 * len(labels)) / fig.get_figheight()), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
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
    _panel(axes[0, 0], runs, "loss/actor", "symlog")
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
    _panel(axes[0, 0], runs, "episode/return")
    _panel(axes[0, 1], runs, "episode/length")
    _panel(axes[0, 2], runs, "eval/return", style="o-")
    paths.append(_save(fig, axes, out / "episodes.png"))
    return paths
