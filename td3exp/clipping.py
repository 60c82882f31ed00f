"""Gradient measurement and clipping: fixed max norm, or AutoClip's percentile of the norm history."""

from __future__ import annotations

import torch
from torch import nn


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm over all gradients of a module (0 when it has none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)


class AutoClip:
    """Clip at the ``percentile``-th percentile of the pre-clip norms seen so far (Seetharaman et al., "AutoClip:
    Adaptive Gradient Clipping for Source Separation Networks", 2020), over the last ``history`` updates.

    The history lives on the device and the threshold is computed there: no host sync.
    """

    def __init__(self, percentile: float, history: int, device: torch.device) -> None:
        self.quantile = percentile / 100.0
        self.norms = torch.zeros(history, device=device)
        self.count = 0

    def threshold(self, total_norm: torch.Tensor) -> torch.Tensor:
        # non-finite norms stay out of the history (their update is skipped anyway)
        previous = self.norms[(self.count - 1) % len(self.norms)] if self.count else total_norm
        self.norms[self.count % len(self.norms)] = torch.where(torch.isfinite(total_norm), total_norm, previous)
        self.count += 1
        return torch.quantile(self.norms[: min(self.count, len(self.norms))], self.quantile)


def clip_modules(
    modules: dict[str, nn.Module], max_norm: float | AutoClip | None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Measure each module's gradient norm, then clip all of them together.

    Returns (pre-clip norms, post-clip norms, total pre-clip norm). Post-clip norms are derived from the shared clip
    coefficient instead of being measured again.
    """
    pre = {name: grad_norm(m) for name, m in modules.items()}
    total = torch.linalg.vector_norm(torch.stack(list(pre.values())))
    if max_norm is None:
        return pre, pre, total
    limit = max_norm.threshold(total) if isinstance(max_norm, AutoClip) else max_norm
    # the coefficient of torch.nn.utils.clip_grads_with_norm_, kept as a tensor so AutoClip's limit can stay one
    coef = torch.clamp(limit / (total + 1e-6), max=1.0)
    grads = [p.grad for m in modules.values() for p in m.parameters() if p.grad is not None]
    torch._foreach_mul_(grads, coef)
    return pre, {name: norm * coef for name, norm in pre.items()}, total
