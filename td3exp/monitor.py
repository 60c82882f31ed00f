"""Per-module gradient norms, explosion alerts and the non-finite guard.

Everything here stays on the device as tensors: counters are read back only when the trainer logs
(``report``), so monitoring adds no GPU->CPU synchronisation to an update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class NonFiniteError(RuntimeError):
    """Too many updates in a row had a non-finite loss or gradient."""


@dataclass(frozen=True)
class Thresholds:
    warning: float
    critical: float


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm over all gradients of a module (0 when it has none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)


def clip_modules(
    modules: dict[str, nn.Module], max_norm: float | None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Measure each module's gradient norm, then clip all of them together to ``max_norm``.

    Returns (pre-clip norms, post-clip norms, total pre-clip norm). Post-clip norms are derived from the
    shared clip coefficient instead of being measured again.
    """
    pre = {name: grad_norm(m) for name, m in modules.items()}
    total = torch.linalg.vector_norm(torch.stack(list(pre.values())))
    if max_norm is None:
        return pre, pre, total
    params = [p for m in modules.values() for p in m.parameters() if p.grad is not None]
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return pre, {name: norm * coef for name, norm in pre.items()}, total


class GradientMonitor:
    """Counts threshold crossings of pre-clip gradient norms and non-finite updates."""

    def __init__(self, thresholds: dict[str, Thresholds], max_consecutive_nonfinite: int, device: torch.device):
        self.thresholds = thresholds
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
        self._reported = (0, 0)

    def observe_norms(self, norms: dict[str, torch.Tensor]) -> None:
        """Count warning/critical crossings of the given (pre-clip) norms."""
        idx = [self._index[name] for name in norms if name in self._index]
        values = torch.stack([norms[name] for name in norms if name in self._index])
        finite = torch.nan_to_num(values, nan=0.0, posinf=0.0)
        critical = finite > self._critical[idx]
        warning = (finite > self._warning[idx]) & ~critical
        self.critical_counts[idx] += critical.long()
        self.warning_counts[idx] += warning.long()
        self.peak[idx] = torch.maximum(self.peak[idx], finite)

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
        }

    def report(self, step: int) -> list[str]:
        """Read counters back (one sync), return messages for new alerts; raise after too many non-finite updates."""
        warning, critical = int(self.warning_counts.sum()), int(self.critical_counts.sum())
        messages = []
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
