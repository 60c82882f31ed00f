"""Reward components for lane keeping and their weighting.

Each env computes the four components from its simulator state every step and reports them in
``info["reward_components"]``; the training reward is their weighted sum (normalization, if any, is applied
afterwards by gymnasium's reward wrappers, see ``envs``).  Components carry their sign: progress is a gain, the
other three are penalties <= 0, so weights are non-negative.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

COMPONENTS = ("progress", "smoothness", "lane_centering", "efficiency")


@dataclass(frozen=True)
class RewardWeights:
    progress: float
    smoothness: float
    lane_centering: float
    efficiency: float

    def combine(self, components: dict[str, float]) -> float:
        return float(sum(w * components[name] for name, w in asdict(self).items()))


def smoothness(action: np.ndarray, previous_action: np.ndarray) -> float:
    """-mean |a_t - a_{t-1}| over action dims: 0 for a steady action, -2 for a full swing on every dim."""
    return -float(np.mean(np.abs(np.asarray(action) - np.asarray(previous_action))))


def lane_centering(lateral_offset: float, half_width: float, cap: float = 2.0) -> float:
    """-|offset| / half lane width: 0 on the centerline, -1 at the lane edge, capped at -cap off the road.

    A lane without width (the end of a lane tapering to 0, where round-off can even make it negative) cannot be
    kept: -cap, instead of a division by zero that would end the run.
    """
    if not half_width > 0.0:
        return -cap
    return -min(abs(lateral_offset) / half_width, cap)


def efficiency(speed: float, target_speed: float) -> float:
    """-|speed - target| / target, capped at -1: 0 at the target speed, -1 when standing still."""
    return -min(abs(speed - target_speed) / target_speed, 1.0)


def distance_to_polyline(point: np.ndarray, vertices: np.ndarray) -> float:
    """Shortest distance from a 2-D point to a closed polyline (the track centerline)."""
    a = vertices
    b = np.roll(vertices, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", point - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return float(np.sqrt(np.min(np.sum((closest - point) ** 2, axis=1))))
