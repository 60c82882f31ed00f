"""One optimizer step, measured: backward, per-module gradient norms, clipping, the non-finite skip, update ratios.

TD3 wraps each of its two optimizer steps (critic; actor) in one of these, so the update itself reads like the paper
and everything td3exp measures happens in one named place.  Nothing here reads a value back to the host.
"""

from __future__ import annotations

import torch
from torch import nn

from td3exp.clipping import AutoClip, clip_modules
from td3exp.diagnostics import UpdateRatio
from td3exp.monitor import GradientMonitor


def skip_step_unless(optimizer: torch.optim.Optimizer, finite: torch.Tensor) -> None:
    """Make the next ``optimizer.step()`` a no-op unless ``finite`` (a device bool tensor), without a host sync.

    PyTorch has no public API for this: fused Adam/SGD kernels read the ``found_inf`` attribute that GradScaler
    sets (torch/amp/grad_scaler.py), skip the update where it is 1 and roll back Adam's step count.
    """
    optimizer.found_inf = (~finite).float()  # type: ignore[attr-defined]


def zero_momentum_buffers(optimizer: torch.optim.Optimizer) -> None:
    """SGD with momentum creates its buffers uninitialized (``empty_like``) on the first step and lets the kernel
    fill them; when that first step is skipped as non-finite they stay garbage and a later clean step moves
    parameters by ~1e35.  Zeros give the same first step (buf = 0 * momentum + grad = grad) and stay safe."""
    if not isinstance(optimizer, torch.optim.SGD):
        return
    for group in optimizer.param_groups:
        if group["momentum"] == 0:
            continue
        for p in group["params"]:
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


class MeasuredStep:
    """``step(loss)``: backward, measure each module's gradient norm, clip, step unless non-finite, measure the
    relative size of the step.  Returns (finite, metrics) with ``grad/*``, ``grad_clipped/*`` and
    ``update_ratio/*`` for every module.

    ``clip``: max L2 norm over all the modules' gradients together, an AutoClip, or None (no clipping).
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, modules: dict[str, nn.Module], clip: float | AutoClip | None,
        monitor: GradientMonitor, measure: bool = True,
    ) -> None:
        """``measure=False``: a plain step (backward, clip, step), for pricing the measuring in benchmarks."""
        self.optimizer, self.modules, self.clip, self.monitor, self.measure = optimizer, modules, clip, monitor, measure
        self.ratio = UpdateRatio(modules)
        zero_momentum_buffers(optimizer)

    def step(self, loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not self.measure:
            return self._plain_step(loss)
        pre, post, total = clip_modules(self.modules, self.clip)
        self.monitor.observe_norms(pre)
        finite = torch.isfinite(loss.detach()) & torch.isfinite(total)
        skip_step_unless(self.optimizer, finite)
        self.ratio.snapshot()
        self.optimizer.step()
        ratios = self.ratio.measure()
        metrics = {
            **{f"grad/{k}": v for k, v in pre.items()},
            **{f"grad_clipped/{k}": v for k, v in post.items()},
            **{f"update_ratio/{k}": v for k, v in ratios.items()},
        }
        return finite, metrics

    def _plain_step(self, loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        params = [p for m in self.modules.values() for p in m.parameters()]
        if isinstance(self.clip, AutoClip):
            clip_modules(self.modules, self.clip)
        elif self.clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.clip)
        self.optimizer.step()
        return torch.ones((), dtype=torch.bool, device=loss.device), {}

    def state_dict(self) -> dict:
        state: dict = {"optimizer": self.optimizer.state_dict()}
        if isinstance(self.clip, AutoClip):
            state["autoclip"] = self.clip.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        zero_momentum_buffers(self.optimizer)
        if isinstance(self.clip, AutoClip):
            self.clip.load_state_dict(state["autoclip"])
