"""Gradient measurement and clipping: fixed max norm, or AutoClip's percentile of the norm history."""

from __future__ import annotations

import torch
from torch import nn


def total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm over all of ``tensors`` (one module's parameters or gradients: one device, one dtype); 0 for none."""
    if not tensors:
        return torch.zeros(())
    # torch._foreach_norm directly: get_total_norm regroups the list by device and dtype and copies each norm to the
    # first device on every call, which on a small MLP costs more than the norms themselves
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm over all gradients of a module (0 when it has none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return total_norm(grads)


class AutoClip:
    """Clip at the ``percentile``-th percentile of the pre-clip norms seen so far (Seetharaman et al., "AutoClip:
    Adaptive Gradient Clipping for Source Separation Networks", 2020), over the last ``history`` updates.

    The history is a ring on the device (NaN = empty slot) with a device-side write position, so computing the
    threshold needs no host sync and has static shapes (it can be captured in a CUDA graph).
    """

    def __init__(self, percentile: float, history: int, device: torch.device) -> None:
        self.quantile = percentile / 100.0
        self.norms = torch.full((history,), float("nan"), device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)

    def threshold(self, total_norm: torch.Tensor) -> torch.Tensor:
        # non-finite norms are stored as empty slots: they stay out of the percentile (their update is skipped)
        value = torch.where(torch.isfinite(total_norm), total_norm, torch.nan).reshape(1)
        self.norms.index_copy_(0, self.position, value.to(self.norms.dtype))
        self.position.add_(1).remainder_(len(self.norms))
        return torch.nanquantile(self.norms, self.quantile)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"norms": self.norms.clone(), "position": self.position.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.norms.copy_(state["norms"])
        self.position.copy_(state["position"])


def clip_modules(
    modules: dict[str, nn.Module], max_norm: float | AutoClip | None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Measure each module's gradient norm (one pass), then clip all of them together.

    Returns (pre-clip norms, post-clip norms, total pre-clip norm). Post-clip norms are derived from the shared clip
    coefficient instead of being measured again; when the total is non-finite the step is skipped anyway and the
    post-clip norms are the pre-clip ones (not inf * 0 = NaN).
    """
    pre = {name: grad_norm(m) for name, m in modules.items()}
    total = torch.linalg.vector_norm(torch.stack(list(pre.values())))
    if max_norm is None:
        return pre, pre, total
    params = [p for m in modules.values() for p in m.parameters()]
    if isinstance(max_norm, AutoClip):
        # clip_grads_with_norm_ takes a float limit; AutoClip's stays a device tensor, so scale with its coefficient
        coef = torch.clamp(max_norm.threshold(total) / (total + 1e-6), max=1.0)
        torch._foreach_mul_([p.grad for p in params if p.grad is not None], coef)
    else:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # the coefficient clip_grads_with_norm_ applied
    finite = torch.isfinite(total)
    return pre, {name: torch.where(finite, norm * coef, norm) for name, norm in pre.items()}, total
