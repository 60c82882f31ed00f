"""Update metrics aggregated over one logging window on the device: one point per window instead of one per update.

Per update, the metrics are stacked into one vector and folded into the running totals of the updates that reported
the same set of metric keys (critic-only updates, and critic + actor updates every ``policy_delay``): a running sum
and a running maximum of absolute values: a few
kernel launches, no host sync.  ``flush`` turns them into the window's points (issue 12's contract, read by
``td3exp.report.windows``): the mean of each update metric under its own tag, the largest absolute value under its
``_max`` twin (a NaN anywhere in the window stays NaN in both), the update counts under ``window/updates`` and
``window/actor_updates``, and the newest value of everything else (the cumulative ``alerts/*`` counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from td3exp.metrics import WINDOW_ACTOR_UPDATES, WINDOW_UPDATES, is_update_metric, max_twin


def _scalar(value: torch.Tensor | float) -> torch.Tensor:
    """A 0-d float32 tensor (what the agent's metrics are already: converting those anyway would cost two tensor
    calls per metric and update)."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.dim() == 0:
        return value
    return torch.as_tensor(value).float().reshape(())


class _RunningTotals:
    """Running sum and maximum |value| of the updates that reported exactly these update metrics."""

    def __init__(self, values: torch.Tensor) -> None:
        self.sums = values.clone()
        self.peaks = values.abs()
        self.count = 1

    def add(self, values: torch.Tensor) -> None:
        self.sums.add_(values)
        torch.maximum(self.peaks, values.abs(), out=self.peaks)  # maximum propagates NaN, as a NaN alarm must
        self.count += 1


class MetricWindow:
    """Collects the metrics ``agent.update`` returns between two flushes."""

    def __init__(self) -> None:
        self._totals_by_keys: dict[tuple[str, ...], _RunningTotals] = {}
        self._latest: dict[str, torch.Tensor | float] = {}
        self.updates = 0
        self.actor_updates = 0

    def _clear(self) -> None:
        self._totals_by_keys, self._latest = {}, {}
        self.updates = self.actor_updates = 0

    def add(self, metrics: Mapping[str, torch.Tensor | float]) -> None:
        """Fold in one update's metrics (device tensors; nothing is read back)."""
        keys = tuple(k for k in metrics if is_update_metric(k))
        values = torch.stack([_scalar(metrics[k]) for k in keys])
        totals = self._totals_by_keys.get(keys)
        if totals is None:
            self._totals_by_keys[keys] = _RunningTotals(values)
        else:
            totals.add(values)
        self._latest.update({k: v for k, v in metrics.items() if not is_update_metric(k)})
        self.updates += 1
        self.actor_updates += "loss/actor" in metrics

    def flush(self) -> dict[str, torch.Tensor | float]:
        """The window's points (empty when it held no update); starts the next window."""
        if not self.updates:
            return {}
        sums: dict[str, list[torch.Tensor]] = {}
        peaks: dict[str, list[torch.Tensor]] = {}
        counts: dict[str, int] = {}
        for keys, totals in self._totals_by_keys.items():
            for key, total, peak in zip(keys, totals.sums.unbind(), totals.peaks.unbind(), strict=True):
                sums.setdefault(key, []).append(total)
                peaks.setdefault(key, []).append(peak)
                counts[key] = counts.get(key, 0) + totals.count
        points: dict[str, torch.Tensor | float] = {}
        for key in sums:
            points[key] = torch.stack(sums[key]).sum() / counts[key]
            points[max_twin(key)] = torch.stack(peaks[key]).max()
        points.update(self._latest)
        points[WINDOW_UPDATES] = float(self.updates)
        points[WINDOW_ACTOR_UPDATES] = float(self.actor_updates)
        self._clear()
        return points

    def state_dict(self) -> dict[str, Any]:
        """The open window (a checkpoint inside a window resumes it, so the resumed run logs the same points)."""
        return {"layouts": [(keys, totals.sums, totals.peaks, totals.count)
                            for keys, totals in self._totals_by_keys.items()],
                "latest": dict(self._latest), "updates": self.updates, "actor_updates": self.actor_updates}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """``device``: where the agent's metrics live (a checkpoint is loaded onto the CPU)."""
        self._totals_by_keys = {}
        for keys, sums, peaks, count in state["layouts"]:
            totals = _RunningTotals(sums.to(device))
            totals.peaks, totals.count = peaks.to(device), count
            self._totals_by_keys[tuple(keys)] = totals
        self._latest = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state["latest"].items()}
        self.updates, self.actor_updates = state["updates"], state["actor_updates"]
