"""Comparison plots: every run overlaid, one PNG per family of metrics, plus performance profiles of the final return.
PNGs are written at a modest resolution with a 256-color palette, so committed result sets stay small."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from td3exp.config import MODULES  # noqa: E402
from td3exp.report.aggregate import condition_labels, final_eval_return, group_by_config  # noqa: E402
from td3exp.report.runs import Run  # noqa: E402
from td3exp.report.stats import MIN_RUNS, performance_profiles  # noqa: E402

MAX_POINTS = 2000
DPI = 80
THRESHOLD_STYLE = {"warning": ("tab:orange", (0, (4, 3))), "critical": ("tab:red", (0, (1, 2)))}


def _thin(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stride = max(1, len(steps) // MAX_POINTS)
    return steps[::stride], values[::stride]


def short_labels(labels: list[str], limit: int = 90) -> dict[str, str]:
    """Each label in at most ``limit`` characters, distinct for distinct labels: a long one loses the prefixes of
    its dotted keys (``agent.actor_head=tanh`` -> ``actor_head=tanh``); one still too long, or equal to another's
    short form, is cut and ends in a hash of the whole (cut alone, labels that differ only past ``limit`` merged
    into one legend entry)."""
    def compact(label: str) -> str:
        label = label or "defaults"
        return label if len(label) <= limit else re.sub(r"(?<!\S)(?:[\w-]+\.)+(?=[\w-]+=)", "", label)

    def hashed(label: str) -> str:
        return f"{compact(label)[: limit - 9]}~{hashlib.sha1(label.encode()).hexdigest()[:8]}"

    unique = list(dict.fromkeys(labels))
    shorts = Counter(compact(label) for label in unique)
    return {label: compact(label) if len(compact(label)) <= limit and shorts[compact(label)] == 1 else hashed(label)
            for label in unique}


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
    colors, labelled, shown = _colors(labels), set(), short_labels(labels)
    for run, label in zip(runs, labels, strict=True):
        series = run.scalars.get(tag)
        if series is None or len(series.values) == 0:
            continue
        steps, values = _thin(series.steps, series.values)
        first = legend and label not in labelled
        labelled.add(label)
        ax.plot(steps, values, style, color=colors[label], lw=0.8, alpha=0.8,
                label=shown[label] if first else "_nolegend_")
    ax.set_title(tag, fontsize=9)
    if scale == "symlog":  # keeps exact zeros (a dead actor's update ratio) visible on a log-like axis
        ax.set_yscale(scale, linthresh=linthresh)
    else:
        ax.set_yscale(scale)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)


def alert_thresholds(runs: list[Run], module: str) -> dict[str, set[float]]:
    """The warning and critical thresholds the runs used for a module (their saved ``monitor.thresholds``)."""
    found: dict[str, set[float]] = {"warning": set(), "critical": set()}
    for run in runs:
        levels = ((run.config.get("monitor") or {}).get("thresholds") or {}).get(module) or {}
        for level in found:
            if levels.get(level) is not None:
                found[level].add(float(levels[level]))
    return found


def _thresholds(ax, runs: list[Run], module: str) -> None:
    for level, values in alert_thresholds(runs, module).items():
        color, dashes = THRESHOLD_STYLE[level]
        for value in sorted(values):
            ax.axhline(value, color=color, ls=dashes, lw=1.0)
            ax.annotate(f"{level} {value:g}", (0.01, value), xycoords=("axes fraction", "data"), fontsize=6,
                        color=color, va="bottom")


def _figure(rows: int, cols: int) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    return fig, axes


def _save(fig: plt.Figure, axes: np.ndarray, path: Path) -> Path:
    fig.tight_layout()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:  # one entry per condition, right of the panels
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    with Image.open(path) as image:  # a palette PNG: a third of the size, the same plot
        palette = image.convert("RGB").quantize(colors=256)
    palette.save(path, optimize=True)
    return path


def plot_all(runs: list[Run], out: Path, reps: int = 2000) -> list[Path]:
    paths = []
    fig, axes = _figure(2, 2)
    for ax, module in zip(axes.flat, MODULES, strict=True):
        _panel(ax, runs, f"grad/{module}", "log")
        _panel(ax, runs, f"grad_clipped/{module}", "log", ":", legend=False)
        _thresholds(ax, runs, module)
        ax.set_title(f"grad/{module}: pre-clip solid, post-clip dotted, alert thresholds", fontsize=9)
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

    fig, axes = _figure(1, 4)
    _panel(axes[0, 0], runs, "actor/saturation")
    _panel(axes[0, 1], runs, "actor/saturation_max")
    _panel(axes[0, 2], runs, "update_ratio/actor_cnn", "symlog", linthresh=1e-6)
    _panel(axes[0, 3], runs, "features/actor_norm", "log")
    paths.append(_save(fig, axes, out / "diagnostics.png"))

    fig, axes = _figure(1, 3)
    _panel(axes[0, 0], runs, "episode/return")
    _panel(axes[0, 1], runs, "episode/length")
    _panel(axes[0, 2], runs, "eval/return", style="o-")
    paths.append(_save(fig, axes, out / "episodes.png"))

    profile = plot_performance_profiles(runs, out / "performance_profiles.png", reps)
    return paths + ([profile] if profile else [])


def final_returns_by_condition(runs: list[Run], limit: int = 70) -> dict[str, np.ndarray]:
    """The finite final returns of each condition, keyed by its legend label (distinct, at most ``limit``
    characters before `` (n=N)``)."""
    groups = group_by_config(runs)
    shown = short_labels(list(groups), limit)
    scores = {}
    for label, group in groups.items():
        values = [v for v in map(final_eval_return, group) if v is not None and np.isfinite(v)]
        if values:
            scores[f"{shown[label]} (n={len(values)})"] = np.array(values)
    return scores


def plot_performance_profiles(runs: list[Run], path: Path, reps: int = 2000) -> Path | None:
    """Fraction of a condition's runs whose final eval/return exceeds tau (rliable); bands are 95% CIs, drawn only
    for conditions with enough runs."""
    from rliable import plot_utils

    scores = final_returns_by_condition(runs)
    if not scores:
        return None
    everything = np.concatenate(list(scores.values()))
    taus = np.linspace(everything.min() - 1.0, everything.max() + 1.0, 101)
    profiles, cis = performance_profiles(scores, taus, reps)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = _colors(list(scores))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax, colors=colors,
                                         xlabel="final eval/return (tau)", ylabel="fraction of runs > tau",
                                         labelsize="small", ticklabelsize="small")
    ax.set_title(f"performance profiles; 95% CI bands only where a condition has >= {MIN_RUNS} runs", fontsize=9)
    return _save(fig, np.array([ax]), path)
