"""The training loop: act, step, store, update, evaluate, log, checkpoint - and continue from a checkpoint."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from td3exp.agent import TD3Agent
from td3exp.envs.carla.errors import SimulatorUnavailable
from td3exp.envs.wrappers import load_reward_normalizer_state, reward_normalizer_state
from td3exp.episodes import EpisodeStats, EpisodeTape
from td3exp.loggers import Logger
from td3exp.replay import FrameReplay
from td3exp.signals import Interrupted, StopSignals


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    start_steps: int
    train_freq: int
    log_every: int
    eval_every: int
    eval_episodes: int
    checkpoint_every: int = 0  # 0: no periodic checkpoints (one is still written at the end and on a stop signal)


class _StopDuringEvaluation(Exception):
    pass


class Trainer:
    """Runs one training job and returns the final evaluation return (mean native episode return).

    Each agent step is a collect part (act, update, env step, store) and a tail (evaluate, log, checkpoint).  A
    checkpoint is taken after a complete step, or - when a stop signal arrives during an evaluation - before that
    step's tail, which the resumed run then runs again (evaluation is deterministic).
    """

    def __init__(
        self, env: gym.Env, eval_env: gym.Env, agent: TD3Agent, replay: FrameReplay, logger: Logger,
        schedule: Schedule, seed: int, show_progress: bool = True,
        on_evaluation: Callable[[int, float], None] | None = None,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
        checkpoint: Callable[[int], str | None] | None = None, stop: StopSignals | None = None,
    ) -> None:
        """``on_evaluation(step, eval_return)`` is called after every evaluation and ``on_log(step, latest)`` after
        every metric flush with the latest value of each flushed tag (e.g. to report to a sweep trial, which may stop
        the run by raising). ``checkpoint(step)`` writes the run's checkpoint and returns its path; ``stop`` says
        when a stop signal arrived."""
        self.env, self.eval_env, self.agent, self.replay, self.logger = env, eval_env, agent, replay, logger
        self.s, self.seed, self.show_progress = schedule, seed, show_progress
        self.on_evaluation, self.on_log, self.checkpoint, self.stop = on_evaluation, on_log, checkpoint, stop
        self.step = 0
        self.tail_pending = False
        self.tape = EpisodeTape(seed)
        self.episode = EpisodeStats()
        self.obs: Any = None
        self.last_return = float("nan")
        self.final_eval_return = float("nan")
        self.wall_time = self.steps_per_second = float("nan")
        self.last_checkpoint: str | None = None
        self._actor_cnn_grad_sum: torch.Tensor | float = 0.0  # stays on the device until summary()
        self._actor_updates = 0

    @property
    def num_updates(self) -> int:
        return self.agent.num_updates

    def run(self) -> float:
        s = self.s
        started, first_step = time.perf_counter(), self.step
        if self.obs is None:
            self._begin_episode()
        self._bar = tqdm(total=s.total_steps, initial=self.step, unit="step", disable=not self.show_progress,
                         mininterval=1.0)
        self._window = (time.perf_counter(), self.num_updates)
        if self.tail_pending:  # resumed from a checkpoint taken during this step's evaluation
            self._tail(self.step)
        while self.step < s.total_steps:
            self.step += 1
            self._collect(self.step)
            self.tail_pending = True
            self._tail(self.step)
            self._bar.update(1)
        self._bar.close()
        self.wall_time = time.perf_counter() - started
        self.steps_per_second = (self.step - first_step) / max(self.wall_time, 1e-9)
        return self.final_eval_return

    def _begin_episode(self) -> None:
        self.obs = self.tape.reset(self.env)
        self.replay.start_episode(self.obs[-1])
        self.episode = EpisodeStats()

    def _collect(self, step: int) -> None:
        s = self.s
        action = self.agent.act(self.obs, step - 1)
        # queue the update before stepping the env: on a GPU the two overlap (nothing here waits on the device)
        if step > s.start_steps and step % s.train_freq == 0 and len(self.replay) >= self.replay.batch_size:
            metrics = self.agent.update(self.replay.sample(), step)
            self.logger.record(step, metrics)
            if "loss/actor" in metrics:
                self._actor_cnn_grad_sum = self._actor_cnn_grad_sum + metrics["grad/actor_cnn"]
                self._actor_updates += 1
        try:
            next_obs, reward, terminated, truncated, info = self.env.step(action)
        except SimulatorUnavailable:  # the env gave up reconnecting: keep what was learned so far
            self.step -= 1  # this step never reached the env (its update stays in the checkpoint)
            self._save(self.step)
            raise
        if info.get("simulator_lost"):  # the env reconnected: drop the broken transition and start over
            self.logger.record(step, {"env/reconnects": float(info["reconnects"])})
            self._begin_episode()
            return
        self.tape.record(action)
        self.replay.add(next_obs[-1], action, float(reward), terminated)
        self.episode.add(info)
        if terminated or truncated:
            self.logger.record(step, self.episode.metrics())
            self.last_return = self.episode.weighted_return
            self._begin_episode()
        else:
            self.obs = next_obs

    def _tail(self, step: int) -> None:
        s = self.s
        try:
            if step == s.total_steps:
                self.final_eval_return = self.evaluate(step)
            elif step % s.eval_every == 0:
                self.evaluate(step)
        except _StopDuringEvaluation:
            self._stop(step)
        if step % s.log_every == 0 or step == s.total_steps:
            self._log(step)
        self.tail_pending = False
        saved = False
        if step == s.total_steps or (s.checkpoint_every and step % s.checkpoint_every == 0):
            self._save(step)
            saved = True
        if self._stop_requested():
            self._stop(step, already_saved=saved)

    def _log(self, step: int) -> None:
        latest = self.logger.flush()
        for message in self.agent.monitor.report(step):
            tqdm.write(message)
        if self.on_log is not None:
            self.on_log(step, latest)
        started, updates = self._window
        elapsed = time.perf_counter() - started
        self._bar.set_postfix(
            upd_s=f"{(self.num_updates - updates) / max(elapsed, 1e-9):.2f}",
            ret=f"{self.last_return:.1f}",
            warn=int(latest.get("alerts/warning", 0)),
            crit=int(latest.get("alerts/critical", 0)),
            refresh=False,
        )
        self._window = (time.perf_counter(), self.num_updates)

    def _stop_requested(self) -> bool:
        return self.stop is not None and self.stop.received is not None

    def _save(self, step: int) -> None:
        if self.checkpoint is None:
            return
        self.logger.flush()  # everything up to this step is on disk before the checkpoint says it happened
        self.last_checkpoint = self.checkpoint(step)

    def _stop(self, step: int, already_saved: bool = False) -> None:
        assert self.stop is not None
        if not already_saved:
            self._save(step)
        self._bar.close()
        raise Interrupted(self.stop.name, step, self.last_checkpoint)

    def evaluate(self, step: int) -> float:
        """Deterministic actor, native env reward; logs eval/return and eval/length."""
        if self.s.eval_episodes == 0:
            return float("nan")
        returns, lengths = [], []
        for episode in range(self.s.eval_episodes):
            # evaluation episodes are the same tracks at every evaluation: returns stay comparable over time
            obs, _ = self.eval_env.reset(seed=self.seed + 10_000 + episode)
            done, total, length = False, 0.0, 0
            while not done:
                if self._stop_requested():
                    raise _StopDuringEvaluation
                action = self.agent.act(obs, step, eval_mode=True)
                obs, _, terminated, truncated, info = self.eval_env.step(action)
                total += info["native_reward"]
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
        mean_return = float(np.mean(returns))
        self.logger.record(step, {"eval/return": mean_return, "eval/length": float(np.mean(lengths))})
        if self.on_evaluation is not None:
            self.on_evaluation(step, mean_return)
        return mean_return

    def summary(self) -> dict[str, float]:
        """Run-level results, the objectives a sweep can optimize."""
        grad_mean = float(self._actor_cnn_grad_sum) / self._actor_updates if self._actor_updates else float("nan")
        return {"eval/return": self.final_eval_return, "grad/actor_cnn_mean": grad_mean}

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "tail_pending": self.tail_pending, "tape": self.tape.state_dict(),
            "episode": dataclasses.asdict(self.episode), "last_return": self.last_return,
            "final_eval_return": self.final_eval_return, "actor_cnn_grad_sum": self._actor_cnn_grad_sum,
            "actor_updates": self._actor_updates, "reward_normalizer": reward_normalizer_state(self.env),
        }

    def load_state_dict(self, state: dict[str, Any]) -> str | None:
        """Continue from ``state``: rebuild the episode in progress by replaying its tape. Returns a warning when the
        env did not come back to the same observation (a non-deterministic simulator): a new episode starts then."""
        self.step, self.tail_pending = state["step"], state["tail_pending"]
        self.last_return, self.final_eval_return = state["last_return"], state["final_eval_return"]
        self._actor_cnn_grad_sum, self._actor_updates = state["actor_cnn_grad_sum"], state["actor_updates"]
        self.tape.load_state_dict(state["tape"])
        self.episode = EpisodeStats(**state["episode"])
        self.obs = self.tape.replay(self.env)
        load_reward_normalizer_state(self.env, state["reward_normalizer"])  # the replay stepped it again
        if self.replay.frames_written and np.array_equal(self.obs[-1], self.replay.newest_frame()):
            return None
        self._begin_episode()
        return "the env did not replay the episode in progress to the same frame; it starts a new episode"
