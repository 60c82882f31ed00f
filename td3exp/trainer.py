"""The training loop: act, step, store, update, evaluate, log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from td3exp.agent import TD3Agent
from td3exp.loggers import Logger
from td3exp.replay import FrameReplay
from td3exp.rewards import COMPONENTS


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    start_steps: int
    train_freq: int
    log_every: int
    eval_every: int
    eval_episodes: int


class Trainer:
    """Runs one training job and returns the final evaluation return (mean native episode return)."""

    def __init__(
        self, env: gym.Env, eval_env: gym.Env, agent: TD3Agent, replay: FrameReplay, logger: Logger,
        schedule: Schedule, seed: int, show_progress: bool = True,
        on_evaluation: Callable[[int, float], None] | None = None,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        """``on_evaluation(step, eval_return)`` is called after every evaluation and ``on_log(step, latest)`` after
        every metric flush with the latest value of each flushed tag (e.g. to report to a sweep trial, which may stop
        the run by raising)."""
        self.env, self.eval_env, self.agent, self.replay, self.logger = env, eval_env, agent, replay, logger
        self.s, self.seed, self.show_progress = schedule, seed, show_progress
        self.last_return = float("nan")
        self.final_eval_return = float("nan")
        self.wall_time = float("nan")
        self.on_evaluation, self.on_log = on_evaluation, on_log
        self._actor_cnn_grad_sum: torch.Tensor | float = 0.0  # stays on the device until summary()
        self._actor_updates = 0

    def run(self) -> float:
        s = self.s
        run_started = time.perf_counter()
        obs, _ = self.env.reset(seed=self.seed)
        self.env.action_space.seed(self.seed)
        self.replay.start_episode(obs[-1])
        episode = _EpisodeStats()
        bar = tqdm(total=s.total_steps, unit="step", disable=not self.show_progress, mininterval=1.0)
        started, updates_at_last_log = time.perf_counter(), 0
        for step in range(1, s.total_steps + 1):
            action = self.agent.act(obs, step - 1)
            # queue the update before stepping the env: on a GPU the two overlap (nothing here waits on the device)
            if step > s.start_steps and step % s.train_freq == 0 and len(self.replay) >= self.replay.batch_size:
                metrics = self.agent.update(self.replay.sample(), step)
                self.logger.record(step, metrics)
                if "loss/actor" in metrics:
                    self._actor_cnn_grad_sum = self._actor_cnn_grad_sum + metrics["grad/actor_cnn"]
                    self._actor_updates += 1
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            self.replay.add(next_obs[-1], action, float(reward), terminated)
            episode.add(info)
            if terminated or truncated:
                self.logger.record(step, episode.metrics())
                self.last_return = episode.weighted_return
                episode = _EpisodeStats()
                obs, _ = self.env.reset()
                self.replay.start_episode(obs[-1])
            else:
                obs = next_obs

            if step % s.eval_every == 0 and step < s.total_steps:
                self.evaluate(step)
            if step % s.log_every == 0 or step == s.total_steps:
                elapsed = time.perf_counter() - started
                latest = self.logger.flush()
                for message in self.agent.monitor.report(step):
                    tqdm.write(message)
                if self.on_log is not None:
                    self.on_log(step, latest)
                bar.set_postfix(
                    upd_s=f"{(self.num_updates - updates_at_last_log) / max(elapsed, 1e-9):.2f}",
                    ret=f"{self.last_return:.1f}",
                    warn=int(latest.get("alerts/warning", 0)),
                    crit=int(latest.get("alerts/critical", 0)),
                    refresh=False,
                )
                started, updates_at_last_log = time.perf_counter(), self.num_updates
            bar.update(1)
        bar.close()
        self.final_eval_return = self.evaluate(s.total_steps)
        self.logger.flush()
        self.wall_time = time.perf_counter() - run_started
        return self.final_eval_return

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

    @property
    def num_updates(self) -> int:
        return self.agent.num_updates

    def summary(self) -> dict[str, float]:
        """Run-level results, the objectives a sweep can optimize."""
        grad_mean = float(self._actor_cnn_grad_sum) / self._actor_updates if self._actor_updates else float("nan")
        return {"eval/return": self.final_eval_return, "grad/actor_cnn_mean": grad_mean}


class _EpisodeStats:
    def __init__(self) -> None:
        self.weighted_return, self.native_return, self.length = 0.0, 0.0, 0
        self.components = dict.fromkeys(COMPONENTS, 0.0)

    def add(self, info: dict) -> None:
        self.weighted_return += info["weighted_reward"]
        self.native_return += info["native_reward"]
        self.length += 1
        for name in COMPONENTS:
            self.components[name] += info["reward_components"][name]

    def metrics(self) -> dict[str, float]:
        return {
            "episode/return": self.weighted_return,
            "episode/native_return": self.native_return,
            "episode/length": float(self.length),
            **{f"reward/{name}": value for name, value in self.components.items()},
        }
