"""What a checkpoint of a whole run holds, and putting it back: agent, replay, trainer, RNG states, W&B run id and
the config it ran with (a resume never mixes two configs in one run)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from td3exp.agent import TD3Agent
from td3exp.checkpoint import Checkpoint, CheckpointStore
from td3exp.replay import FrameReplay
from td3exp.trainer import Trainer

# keys a resume may change: the run length, how often it logs and checkpoints, and sweep bookkeeping
RESUMABLE_CHANGES = ("total_steps", "resume", "logger.", "checkpoint.", "trial.", "gate.")


def rng_states() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_states(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: tree}


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, except those a resume may change."""
    a, b = _flatten(saved), _flatten(current)
    return sorted(k for k in a.keys() | b.keys()
                  if a.get(k, "<missing>") != b.get(k, "<missing>") and not k.startswith(RESUMABLE_CHANGES))


class RunCheckpointer:
    """``checkpoint(step)`` for the trainer: gathers the run's state and writes it with ``store``."""

    def __init__(
        self, store: CheckpointStore, agent: TD3Agent, replay: FrameReplay, config: dict[str, Any],
        wandb_id: Callable[[], str | None], trial_state: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.store, self.agent, self.replay, self.config, self.wandb_id = store, agent, replay, config, wandb_id
        self.trial_state = trial_state  # a sweep job's pruner counters (td3exp.sweep_trial.TrialReporter.state_dict)
        self.trainer: Trainer | None = None

    def __call__(self, step: int) -> str:
        assert self.trainer is not None, "set RunCheckpointer.trainer before training"
        replay_state, arrays = self.replay.state_dict()
        state = {
            "config": self.config,
            "agent": self.agent.training_state(),
            "replay": replay_state,
            "trainer": self.trainer.state_dict(),
            "rng": rng_states(),
            "wandb_id": self.wandb_id(),
            "trial": self.trial_state(),
        }
        return str(self.store.save(step, state, {f"replay_{k}": v for k, v in arrays.items()}))


def restore(checkpoint: Checkpoint, agent: TD3Agent, replay: FrameReplay, trainer: Trainer) -> str | None:
    """Put a run back as it was at ``checkpoint``; returns a warning if the episode in progress could not be
    rebuilt exactly."""
    state = checkpoint.state
    agent.load_training_state(state["agent"])
    prefix = "replay_"
    replay.load_state_dict(state["replay"],
                           {k[len(prefix):]: v for k, v in checkpoint.arrays.items() if k.startswith(prefix)})
    warning = trainer.load_state_dict(state["trainer"])
    restore_rng_states(state["rng"])  # last: replaying the episode must not move the run's generators
    return warning


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"
