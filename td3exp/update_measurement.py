"""Everything a TD3 update measures, in one object around its two optimizer steps, so ``TD3Agent.update_body`` keeps
only the paper's math: the measured steps themselves (``MeasuredStep``: gradient norms, clipping, the non-finite
skip, update ratios), feature norms, the actor's saturation, the monitor's alerts, and ``debug.inject_nonfinite_at``
(a NaN planted in one critic loss, to exercise the non-finite guard end to end).  Nothing here reads a value back to
the host.
"""

from __future__ import annotations

import torch
from torch import nn

from td3exp.diagnostics import mean_feature_norm, saturation_per_dimension
from td3exp.measured_step import MeasuredStep
from td3exp.monitor import GradientMonitor


class UpdateMeasurement:
    """``critic_step`` and ``actor_step`` step the optimizers and return what they measured; ``end_update`` the
    monitor's counts.

    ``learned_features``: the encoders have weights (a CNN; a state vector has no features worth measuring).
    ``shared_encoder``: the actor reads the critic's CNN, detached (its CNN metrics are 0 by definition).
    ``bounded_actor``: a tanh actor head (saturation counts |pre-tanh| > 3, else outputs beyond [-1, 1]).
    ``measure=False``: plain optimizer steps and no metrics beyond the losses (benchmarks price the measuring so).
    ``plant_nonfinite_at``: the update (1-based) whose critic loss becomes NaN.
    """

    def __init__(
        self, actor_step: MeasuredStep, critic_step: MeasuredStep, monitor: GradientMonitor, learned_features: bool,
        shared_encoder: bool, bounded_actor: bool, measure: bool = True, plant_nonfinite_at: int | None = None,
    ) -> None:
        self.actor, self.critic, self.monitor = actor_step, critic_step, monitor
        self.learned_features, self.shared_encoder, self.bounded_actor = learned_features, shared_encoder, bounded_actor
        self.measure, self.plant_nonfinite_at = measure, plant_nonfinite_at
        self._update = 0
        self._finite: torch.Tensor | None = None
        self._zero = torch.zeros((), device=monitor.saturation_counts.device)

    def begin_update(self, number: int) -> bool:
        """Starts update ``number``; True when it must run eager (a CUDA graph replays no Python: not the NaN)."""
        self._update = number
        return number == self.plant_nonfinite_at

    def critic_step(self, loss: torch.Tensor, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """``features``: the critic encoder's output the loss was computed from."""
        if self._update == self.plant_nonfinite_at:
            loss = loss * torch.nan
        self._finite, metrics = self.critic.step(loss)
        if self.measure and self.learned_features:
            metrics["features/critic_norm"] = mean_feature_norm(features)
        return metrics

    def actor_step(self, loss: torch.Tensor, features: torch.Tensor, preactivation: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        """``features``: what the actor head saw; ``preactivation``: its output before the tanh."""
        finite, metrics = self.actor.step(loss)
        self._finite = finite if self._finite is None else self._finite & finite
        if self.measure:
            metrics.update(self._actor_diagnostics(features, preactivation))
        return metrics

    def end_update(self) -> dict[str, torch.Tensor]:
        """The monitor's cumulative counts, after it saw whether this update's steps were finite."""
        finite, self._finite = self._finite, None
        if not self.measure or finite is None:
            return {}
        self.monitor.observe_finite(finite)
        return self.monitor.metrics()

    def _actor_diagnostics(self, features: torch.Tensor, preactivation: torch.Tensor) -> dict[str, torch.Tensor]:
        """What tells a dead actor from an exploding one (td3exp/diagnostics.py); feeds the saturation alerts."""
        per_dimension = saturation_per_dimension(preactivation, self.bounded_actor)
        most_saturated = per_dimension.max()
        self.monitor.observe_saturation(most_saturated)
        metrics = {
            "actor/saturation": per_dimension.mean(),
            "actor/saturation_max": most_saturated,
            "actor/preact_abs": preactivation.detach().abs().mean(),
        }
        if self.learned_features:
            metrics["features/actor_norm"] = mean_feature_norm(features)
        if self.shared_encoder:  # the actor loss has no path into a CNN: its CNN metrics are 0 by definition
            metrics.update({f"{k}/actor_cnn": self._zero for k in ("grad", "grad_clipped", "update_ratio")})
        return metrics

    @property
    def actor_modules(self) -> dict[str, nn.Module]:
        return self.actor.modules

    def state_dict(self) -> dict:
        return {"actor_step": self.actor.state_dict(), "critic_step": self.critic.state_dict(),
                "monitor": self.monitor.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor_step"])
        self.critic.load_state_dict(state["critic_step"])
        self.monitor.load_state_dict(state["monitor"])
