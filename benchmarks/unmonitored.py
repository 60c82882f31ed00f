"""td3exp's update with its measuring taken out, to price monitoring.

The agent has no public switch for monitoring, so this swaps what its update measures through for stand-ins: each
measured optimizer step (gradient norms, clipping, the non-finite skip, update ratios: ``agent.critic_step`` /
``agent.actor_step``) for a plain zero_grad/backward/step, and the diagnostics (feature norms, saturation, their
alerts) for zeros. The TD3 math stays. Agents from before the measured step existed are handled by patching the
helpers their update called instead. Every stand-in counts its calls: one never called means the agent measures
elsewhere now, and the cost is reported as not measurable instead of as a wrong number.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

import torch

from benchmarks.timing import Step
from td3exp.agent import TD3Agent

DIAGNOSTICS = ("mean_feature_norm", "saturation", "saturation_per_dimension")  # whichever the agent module imports


class PatchTargetMissing(RuntimeError):
    """The agent changed: what this benchmark swaps out no longer exists."""


class PlainStep:
    """An optimizer step without measuring: zero_grad, backward, step; always 'finite', no metrics."""

    def __init__(self, optimizer: torch.optim.Optimizer, finite: torch.Tensor) -> None:
        self.optimizer, self.finite = optimizer, finite

    def step(self, loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return self.finite, {}


class MeasuringOff:
    """Wraps an update step so it runs without td3exp's measuring."""

    def __init__(self, agent: TD3Agent) -> None:
        zero = torch.zeros((), device=agent.device)
        agent_module = sys.modules[type(agent).__module__]
        targets: list[tuple[str, Any, str, Any]] = [
            (f"agent.{name}", agent_module, name, lambda *args, **kwargs: zero)
            for name in DIAGNOSTICS if hasattr(agent_module, name)
        ]
        targets.append(("monitor.observe_saturation", agent.monitor, "observe_saturation", lambda share: None))
        if hasattr(agent, "critic_step"):
            finite = torch.ones((), dtype=torch.bool, device=agent.device)
            for side in ("critic_step", "actor_step"):
                plain = PlainStep(getattr(agent, side).optimizer, finite)
                targets.append((f"agent.{side}", agent, side, plain))
                plain.step = self._counted(f"agent.{side}", plain.step)  # type: ignore[method-assign]
        else:  # the update as it was before td3exp.measured_step
            targets += [
                ("agent.clip_modules", agent_module, "clip_modules",
                 lambda modules, max_norm: ({name: zero for name in modules},) * 2 + (zero,)),
                ("monitor.observe_norms", agent.monitor, "observe_norms", lambda norms: None),
            ]
            for label in ("actor_ratio", "critic_ratio"):
                ratio = getattr(agent, label, None)
                names = list(getattr(ratio, "params", {}))
                targets.append((f"{label}.snapshot", ratio, "snapshot", lambda: None))
                targets.append((f"{label}.measure", ratio, "measure", lambda names=names: dict.fromkeys(names, zero)))
        missing = [label for label, owner, name, _ in targets if not hasattr(owner, name)]
        if missing:
            raise PatchTargetMissing(f"agent internals changed, not found: {', '.join(missing)}")
        self.calls: Counter[str] = Counter()
        self.labels = [label for label, *_ in targets]
        self._patches = [
            (owner, name, stand_in if isinstance(stand_in, PlainStep) else self._counted(label, stand_in))
            for label, owner, name, stand_in in targets
        ]

    def _counted(self, label: str, stand_in: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[label] += 1
            return stand_in(*args, **kwargs)

        return counted

    def wrap(self, step: Step) -> Step:
        def unmonitored_step() -> None:
            with ExitStack() as stack:
                for owner, name, stand_in in self._patches:
                    stack.enter_context(mock.patch.object(owner, name, stand_in))
                step()

        return unmonitored_step

    def unused(self) -> list[str]:
        """Stand-ins the update never called: the measuring they replace happens elsewhere now."""
        return [label for label in self.labels if self.calls[label] == 0]
