"""Per-module gradient norms, explosion alerts and the non-finite guard.

Everything here stays on the device as tensors: counters are read back only when the trainer logs
(``report``), so monitoring adds no GPU->CPU synchronisation to an update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class NonFiniteError(RuntimeError):
    """Too many updates in a row had a non-finite loss or gradient."""


@dataclass(frozen=True)
class Thresholds:
    warning: float
    critical: float


PIXEL_SATURATION_HINT = "a dead policy; check encoder.pixel_scale, encoder.trunk_norm or agent.preactivation_penalty"
# healthy TD3 actors on MuJoCo state tasks often sit at their bounds (bang-bang control) while they learn
STATE_SATURATION_HINT = ("bang-bang control, which healthy state-task actors often learn; a dead policy only if "
                         "eval/return stalls (agent.preactivation_penalty keeps actions off the bounds)")


class GradientMonitor:
    """Counts threshold crossings of pre-clip gradient norms and non-finite updates."""

    def __init__(
        self, thresholds: dict[str, Thresholds], max_consecutive_nonfinite: int, device: torch.device,
        saturation: Thresholds | None = None, saturation_hint: str = PIXEL_SATURATION_HINT,
    ):
        self.thresholds = thresholds
        self.saturation = saturation or Thresholds(0.5, 0.95)
        self.saturation_hint = saturation_hint  # what to check: depends on what the actor sees
        self.saturation_counts = torch.zeros(2, dtype=torch.long, device=device)  # warning, critical
        self.max_consecutive_nonfinite = max_consecutive_nonfinite
        names = list(thresholds)
        self._index = {name: i for i, name in enumerate(names)}
        self._warning = torch.tensor([thresholds[n].warning for n in names], device=device)
        self._critical = torch.tensor([thresholds[n].critical for n in names], device=device)
        self.warning_counts = torch.zeros(len(names), dtype=torch.long, device=device)
        self.critical_counts = torch.zeros(len(names), dtype=torch.long, device=device)
        self.nonfinite = torch.zeros((), dtype=torch.long, device=device)
        self.consecutive_nonfinite = torch.zeros((), dtype=torch.long, device=device)
        self.worst_consecutive = torch.zeros((), dtype=torch.long, device=device)
        self.peak = torch.zeros(len(names), device=device)
        self._reported: tuple[int, int] = (0, 0)
        self._saturated_reported = 0
        self._positions: dict[tuple[str, ...], slice | torch.Tensor] = {}

    def observe_norms(self, norms: dict[str, torch.Tensor]) -> None:
        """Count warning/critical crossings of the given (pre-clip) norms."""
        names = tuple(name for name in norms if name in self._index)
        at = self._positions.get(names)
        if at is None:
            at = self._positions[names] = self._position(names)
        # an overflowed (inf or NaN) norm is the worst explosion there is: it counts as critical, never as 0
        values = torch.nan_to_num(torch.stack([norms[name] for name in names]), nan=float("inf"))
        critical = values > self._critical[at]
        warning = (values > self._warning[at]) & ~critical
        if isinstance(at, slice):  # views: counted in place, without a gather and a scatter per counter
            self.critical_counts[at].add_(critical)
            self.warning_counts[at].add_(warning)
            torch.maximum(self.peak[at], values, out=self.peak[at])
        else:
            self.critical_counts[at] += critical.long()
            self.warning_counts[at] += warning.long()
            self.peak[at] = torch.maximum(self.peak[at], values)

    def _position(self, names: tuple[str, ...]) -> slice | torch.Tensor:
        """Where these modules' counters are: a slice when they are neighbours in the thresholds' order (as each
        optimizer step's modules are by default), else an index tensor (built once: a Python list would be copied
        to the device on every update)."""
        idx = [self._index[n] for n in names]
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return slice(idx[0], idx[0] + len(idx))
        return torch.tensor(idx, device=self._warning.device)

    def observe_saturation(self, share: torch.Tensor) -> None:
        """Count updates whose actor saturation (of its most saturated action dimension: one pinned dimension is a
        dead policy already) is above the warning / critical share."""
        critical = share > self.saturation.critical
        warning = (share > self.saturation.warning) & ~critical
        self.saturation_counts.add_(torch.stack([warning, critical]))

    def observe_finite(self, finite: torch.Tensor) -> None:
        """Record whether this update was finite (all its losses and gradients)."""
        bad = (~finite).long()
        self.nonfinite += bad
        self.consecutive_nonfinite.mul_(bad).add_(bad)
        torch.maximum(self.worst_consecutive, self.consecutive_nonfinite, out=self.worst_consecutive)

    def metrics(self) -> dict[str, torch.Tensor]:
        return {
            "alerts/warning": self.warning_counts.sum(),
            "alerts/critical": self.critical_counts.sum(),
            "alerts/nonfinite": self.nonfinite.clone(),
            "alerts/saturation_warning": self.saturation_counts[0].clone(),
            "alerts/saturation_critical": self.saturation_counts[1].clone(),
        }

    _STATE = ("warning_counts", "critical_counts", "nonfinite", "consecutive_nonfinite", "worst_consecutive", "peak",
              "saturation_counts")

    def state_dict(self) -> dict:
        return {**{k: getattr(self, k).clone() for k in self._STATE},
                "reported": self._reported, "saturated_reported": self._saturated_reported}

    def load_state_dict(self, state: dict) -> None:
        for k in self._STATE:
            getattr(self, k).copy_(state[k])
        self._reported, self._saturated_reported = tuple(state["reported"]), state["saturated_reported"]

    def report(self, step: int) -> list[str]:
        """Read counters back (one sync), return messages for new alerts; raise after too many non-finite updates."""
        warning, critical = int(self.warning_counts.sum()), int(self.critical_counts.sum())
        saturated = int(self.saturation_counts[1])
        messages = []
        if saturated > self._saturated_reported:
            messages.append(
                f"step {step}: actor saturated (> {self.saturation.critical:.0%} of outputs) in {saturated} updates: "
                + self.saturation_hint
            )
        self._saturated_reported = saturated
        if critical > self._reported[1]:
            worst = {n: float(self.peak[i]) for n, i in self._index.items() if self.critical_counts[i] > 0}
            detail = ", ".join(f"grad/{n} peak {v:.3g} > {self.thresholds[n].critical:.3g}" for n, v in worst.items())
            messages.append(f"step {step}: CRITICAL gradient alerts {critical} ({detail})")
        elif warning > self._reported[0]:
            messages.append(f"step {step}: gradient warnings {warning}")
        self._reported = (warning, critical)
        if int(self.worst_consecutive) >= self.max_consecutive_nonfinite:
            raise NonFiniteError(
                f"{int(self.worst_consecutive)} updates in a row had non-finite losses or gradients by step {step} "
                "(monitor.max_consecutive_nonfinite); try clip=norm10, reward.normalize=clip or lower learning rates"
            )
        return messages
