"""Signals that tell an exploding actor from a dead one: saturation, feature norms, update ratios.

Under Adam the gradient norm alone misleads (the step is ~lr whatever the gradient's scale); the update ratio
||delta theta|| / ||theta|| means the same under Adam and SGD (../shared/design/explosion-findings.md).
"""

from __future__ import annotations

import torch
from torch import nn

from td3exp.clipping import total_norm

TANH_SATURATION = 3.0  # tanh'(3) = 0.0099: beyond it the actor's gradient has all but vanished


def saturation_per_dimension(preactivation: torch.Tensor, bounded: bool) -> torch.Tensor:
    """Saturated share of each action dimension over the batch (B, A) -> (A,): |pre-tanh| > 3 for a tanh head,
    |output| > 1 (outside the action bounds) for an unbounded one.  One pinned dimension (steering stuck at a bound)
    reads 1.0 here while the mean over dimensions still reads 0.5."""
    limit = TANH_SATURATION if bounded else 1.0
    return (preactivation.detach().abs() > limit).float().reshape(-1, preactivation.shape[-1]).mean(0)


def mean_feature_norm(features: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(features.detach().float(), dim=1).mean()


class UpdateRatio:
    """||theta_after - theta_before|| / ||theta_before|| per module for one optimizer step."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.params: dict[str, list[torch.Tensor]] = {
            name: [p for p in m.parameters() if p.requires_grad] for name, m in modules.items()
        }
        self.before = {name: [torch.empty_like(p) for p in ps] for name, ps in self.params.items()}

    @torch.no_grad()
    def snapshot(self) -> None:
        for name, params in self.params.items():
            torch._foreach_copy_(self.before[name], params)

    @torch.no_grad()
    def measure(self) -> dict[str, torch.Tensor]:
        ratios = {}
        for name, params in self.params.items():
            before = self.before[name]
            norm_before = total_norm(before)
            torch._foreach_sub_(before, params)  # in place: the buffer now holds -delta (no second buffer)
            ratios[name] = total_norm(before) / (norm_before + 1e-12)
        return ratios
