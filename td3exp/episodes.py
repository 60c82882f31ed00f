"""Per-episode bookkeeping of each parallel env: returns and reward components for the logs, and the tape (reset seed
+ actions) that lets a resumed run rebuild the episode in progress, since a simulator's internal state cannot be
saved (``PairedEnv.replay_tape`` replays it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EpisodeStats:
    weighted_return: float = 0.0
    native_return: float = 0.0
    length: int = 0
    components: dict[str, float] = field(default_factory=dict)  # empty for envs without reward components

    def add(self, info: dict) -> None:
        self.weighted_return += info["weighted_reward"]
        self.native_return += info["native_reward"]
        self.length += 1
        for name, value in info.get("reward_components", {}).items():
            self.components[name] = self.components.get(name, 0.0) + value

    def metrics(self) -> dict[str, float]:
        return {
            "episode/return": self.weighted_return,
            "episode/native_return": self.native_return,
            "episode/length": float(self.length),
            **{f"reward/{name}": value for name, value in self.components.items()},
        }


class EpisodeTape:
    """Reset seed and actions of one env's episode in progress.  Every reset draws its seed from the env's own
    generator (env 0: the run seed; env i: the run seed and i), so the sequence of tracks of each env is fixed by the
    run seed and its episode in progress can be replayed from its tape."""

    def __init__(self, seed: int, env_index: int = 0) -> None:
        self.seeds = np.random.default_rng(seed if env_index == 0 else [seed, env_index])
        self.seed = 0
        self.actions: list[np.ndarray] = []

    def begin(self) -> int:
        """A new episode: its reset seed."""
        self.seed = int(self.seeds.integers(2**31 - 1))
        self.actions = []
        return self.seed

    def record(self, action: np.ndarray) -> None:
        self.actions.append(action)

    def state_dict(self) -> dict[str, Any]:
        actions = np.stack(self.actions) if self.actions else np.zeros((0, 0), dtype=np.float32)
        return {"rng": self.seeds.bit_generator.state, "seed": self.seed, "actions": actions}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seeds.bit_generator.state = state["rng"]
        self.seed = state["seed"]
        self.actions = list(state["actions"])
