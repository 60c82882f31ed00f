"""What a checkpoint of a whole run holds, and putting it back: agent, replay, trainer, the envs' reward normalizers,
RNG states, W&B run id and the config it ran with (a resume never mixes two configs in one run).  The episodes in
progress are rebuilt by replaying their tapes, since a simulator's state cannot be saved."""

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
            "reward_normalizers": self.trainer.envs.reward_normalizers(),
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
    trainer.load_state_dict(state["trainer"])
    warning = continue_episodes_in_progress(trainer, state["reward_normalizers"])
    restore_rng_states(state["rng"])  # last: replaying the episode must not move the run's generators
    return warning


def continue_episodes_in_progress(trainer: Trainer, reward_normalizers: list[dict[str, Any] | None]) -> str | None:
    """Rebuild each env's episode in progress by replaying its tape (seed and actions) and check it against the newest
    frame the replay stored.  Returns a warning when an env did not come back to the same frame (a non-deterministic
    simulator): that env starts a new episode then."""
    envs, replay = trainer.envs, trainer.replay
    trainer.obs = envs.replay_episode_tapes([(tape.seed, tape.actions) for tape in trainer.tapes])
    envs.load_reward_normalizers(reward_normalizers)  # replaying the tapes stepped them again
    diverged = [i for i in range(trainer.n) if not (
        replay.frames_written[i] and np.array_equal(replay.frame_of(trainer.obs[i]), replay.newest_frame(i)))]
    if not diverged:
        return None
    trainer.start_episodes(diverged)
    return (f"env(s) {', '.join(map(str, diverged))} did not replay the episode in progress to the same frame; "
            "they start a new episode")


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"
