"""td3exp's update with its measuring taken out, to price monitoring.

The agent has no public switch for monitoring, so this swaps what its update measures through for stand-ins: each
measured optimizer step (``agent.critic_step`` / ``agent.actor_step``: gradient norms, clipping, the non-finite skip,
update ratios) for a plain zero_grad/backward/step, the diagnostics (feature norms, saturation) for zeros and the
monitor's counters (alerts, non-finite streaks) for no-ops. The TD3 math stays. Every stand-in counts its calls: one
never called means the agent measures elsewhere now, and the cost is reported as not measurable instead of as a
wrong number.
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

DIAGNOSTICS = ("mean_feature_norm", "saturation_per_dimension")  # helpers the agent module imports


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
        finite = torch.ones((), dtype=torch.bool, device=agent.device)
        agent_module = sys.modules[type(agent).__module__]
        monitor = agent.monitor
        targets: list[tuple[str, Any, str, Callable[..., Any]]] = [
            *((f"agent.{name}", agent_module, name, lambda *args, **kwargs: zero) for name in DIAGNOSTICS),
            ("monitor.observe_saturation", monitor, "observe_saturation", lambda share: None),
            ("monitor.observe_finite", monitor, "observe_finite", lambda finite: None),
            ("monitor.metrics", monitor, "metrics", lambda: {}),
        ]
        missing = [label for label, owner, name, _ in targets if not hasattr(owner, name)]
        missing += [f"agent.{side}" for side in ("critic_step", "actor_step") if not hasattr(agent, side)]
        if missing:
            raise PatchTargetMissing(f"agent internals changed, not found: {', '.join(missing)}")
        self.calls: Counter[str] = Counter()
        self.labels = [label for label, *_ in targets] + ["agent.critic_step", "agent.actor_step"]
        self._patches: list[tuple[Any, str, Any]] = [
            (owner, name, self._counted(label, stand_in)) for label, owner, name, stand_in in targets
        ]
        for side in ("critic_step", "actor_step"):
            plain = PlainStep(getattr(agent, side).optimizer, finite)
            plain.step = self._counted(f"agent.{side}", plain.step)  # type: ignore[method-assign]
            self._patches.append((agent, side, plain))

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
