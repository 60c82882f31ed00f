"""The training loop: act, step, store, update, evaluate, log, checkpoint.  (Continuing a run from a checkpoint is
td3exp/resume.py's job.)"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from td3exp.agent import TD3Agent
from td3exp.envs.errors import SimulatorUnavailable
from td3exp.envs.vector import UNAVAILABLE, ParallelEnvs
from td3exp.episodes import EpisodeStats, EpisodeTape
from td3exp.evaluation import Evaluation
from td3exp.loggers import Logger
from td3exp.metric_window import MetricWindow
from td3exp.progress import RunProgress, blank_batch, seconds_per_update
from td3exp.replay import FrameReplay
from td3exp.schedule import Schedule, fires
from td3exp.self_gate import SelfGate
from td3exp.signals import Interrupted, StopSignals


class Trainer:
    """Runs one training job and returns the final evaluation return (mean native episode return).

    Each vector step collects (act, step the envs asynchronously, run the updates due meanwhile, store the N
    transitions), then evaluates, logs and checkpoints as their cadences say.  A checkpoint is taken after a complete
    vector step, or - when a stop signal arrives or the simulator is lost during an evaluation - with that step's
    evaluation, log and checkpoint still pending (``evaluation_pending``), which the resumed run then runs again
    (evaluation is deterministic).  A stop signal after the final evaluation stops nothing: the run is finished.

    ``env``: the parallel envs (``ParallelEnvs``), or one training env with its evaluation env in ``eval_env``.
    """

    def __init__(
        self, env: ParallelEnvs | gym.Env, eval_env: gym.Env | None, agent: TD3Agent, replay: FrameReplay,
        logger: Logger, schedule: Schedule, seed: int, show_progress: bool = True,
        on_evaluation: Callable[[int, float], None] | None = None,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
        checkpoint: Callable[[int], str | None] | None = None, stop: StopSignals | None = None,
        self_gate: SelfGate | None = None,
    ) -> None:
        """``on_evaluation(step, eval_return)`` is called after every evaluation and ``on_log(step, latest)`` after
        every metric flush with the latest value of each flushed tag (e.g. to report to a sweep trial, which may stop
        the run by raising). ``checkpoint(step)`` writes the run's checkpoint and returns its path; ``stop`` says
        when a stop signal arrived; ``self_gate`` judges the run at its horizons (td3exp/self_gate.py)."""
        if not isinstance(env, ParallelEnvs):
            assert eval_env is not None, "a single training env needs its evaluation env"
            env = ParallelEnvs.of(env, eval_env)
        self.envs, self.agent, self.replay, self.logger = env, agent, replay, logger
        self.n = env.num_envs
        self.schedule, self.seed, self.show_progress = schedule, seed, show_progress
        self.on_evaluation, self.on_log, self.checkpoint, self.stop = on_evaluation, on_log, checkpoint, stop
        self.self_gate = self_gate
        self.gate_stop: dict[str, Any] | None = None  # the verdict that stopped this run at a horizon, if one did
        # with N envs learning waits until the replay surely holds a batch when a vector step's updates run
        self.learning_starts = max(schedule.start_steps, replay.batch_size + self.n - 1)
        self.step = 0
        self.evaluation_pending = False  # collected, but its evaluation, log and checkpoint are still to run
        self.tapes = [EpisodeTape(seed, i) for i in range(self.n)]
        self.episodes = [EpisodeStats() for _ in range(self.n)]
        self.obs: np.ndarray | None = None
        self.window = MetricWindow()
        self.last_return = float("nan")
        self.final_eval_return = float("nan")
        self.wall_time = self.steps_per_second = float("nan")
        self.last_checkpoint: str | None = None
        self._actor_cnn_grad_sum: torch.Tensor | float = 0.0  # stays on the device until summary()
        self._actor_updates = 0

    @property
    def num_updates(self) -> int:
        return self.agent.num_updates

    def updates_after(self, steps: int) -> int:
        """Updates the run has made once ``steps`` agent steps are collected."""
        return self.schedule.updates_after(steps, self.learning_starts)

    def run(self) -> float:
        started, first_step = time.perf_counter(), self.step
        if self.obs is None:  # a new run (a resumed one has its episodes in progress back: td3exp/resume.py)
            shape = self.envs.single_observation_space.shape
            assert shape is not None
            self.obs = np.zeros((self.n, *shape), dtype=self.envs.single_observation_space.dtype)
            self.start_episodes(list(range(self.n)))
        self._start_progress()
        if self.gate_stop is not None:  # resumed after a stop on its own verdict: stop again unless told otherwise
            self._stop_on_gate()
        if self.evaluation_pending:  # resumed from a checkpoint taken during this step's evaluation
            self._evaluate_log_checkpoint(self.step)
        while self.step < self.schedule.total_steps:
            self._collect()
            self.evaluation_pending = True
            self._evaluate_log_checkpoint(self.step)
            self._bar.advance(self.step, self.n)
        self._bar.close()
        self.wall_time = time.perf_counter() - started
        self.steps_per_second = (self.step - first_step) / max(self.wall_time, 1e-9)
        return self.final_eval_return

    def _start_progress(self) -> None:
        def time_update() -> float:  # one update on a throwaway copy of the agent (td3exp/progress.py)
            return seconds_per_update(self.agent, blank_batch(
                self.envs.single_observation_space, self.envs.single_action_space, self.replay.batch_size,
                self.agent.device))

        self._bar = RunProgress(self.schedule.total_steps, self.step, self.learning_starts,
                                Fraction(self.schedule.updates_per_step), self.num_updates, self.show_progress,
                                time_update)

    def start_episodes(self, envs: list[int]) -> None:
        """Reset these envs with the next seeds of their tapes; store each first frame in its replay stream."""
        assert self.obs is not None
        mask = np.zeros(self.n, dtype=bool)
        mask[envs] = True
        seeds = [self.tapes[i].begin() if mask[i] else None for i in range(self.n)]
        obs, infos = self.envs.reset(seeds, mask)
        self._raise_if_unavailable(infos)
        for i in envs:
            self.obs[i] = obs[i]
            self.replay.start_episode(self.replay.frame_of(obs[i]), stream=i)
            self.episodes[i] = EpisodeStats()

    def _collect(self) -> None:
        """One vector step: N agent steps, and the updates due over them while the envs step."""
        assert self.obs is not None
        base = self.step
        actions = self.agent.act_batch(self.obs, base)  # one forward for all envs
        self.envs.step_async(actions)
        self._learn(base)  # on CPU the env processes run meanwhile; on a GPU nothing here waits on the device
        next_obs, rewards, terminated, truncated, infos = self.envs.step_wait()
        if self._unavailable(infos):  # an env gave up reconnecting: keep what was learned so far
            # these N steps never reached the replay; their updates stay in the checkpoint and run again on resume:
            # not an exact resume, which a simulator that was lost cannot give anyway
            self._save(base)
            self._raise_if_unavailable(infos)
        self.step = base + self.n
        finished = []
        for i, info in enumerate(infos):
            step = base + i + 1  # each env's transition has its own agent step
            if info.get("simulator_lost"):  # the env reconnected: drop the broken transition and start over
                self.logger.record(step, {"env/reconnects": float(info["reconnects"])})
                finished.append(i)
                continue
            self.tapes[i].record(actions[i])
            self.replay.add(self.replay.frame_of(next_obs[i]), actions[i], float(rewards[i]), bool(terminated[i]),
                            stream=i)
            self.episodes[i].add(info)
            if terminated[i] or truncated[i]:
                self.logger.record(step, self.episodes[i].metrics())
                self.last_return = self.episodes[i].weighted_return
                finished.append(i)
            else:
                self.obs[i] = next_obs[i]
        if finished:
            self.start_episodes(finished)

    def _learn(self, base: int) -> None:
        """The updates due for agent steps base+1 .. base+N, each logged (per update) at one of those steps."""
        due = self.updates_after(base + self.n) - self.updates_after(base)
        for j in range(due):
            metrics = self.agent.update(self.replay.sample(), base + 1 + j * self.n // due)
            if self.schedule.every_update:
                self.logger.record(base + 1 + j * self.n // due, metrics)
            else:
                self.window.add(metrics)
            if "grad/actor_cnn" in metrics:  # actor updates of a run with an actor CNN
                self._actor_cnn_grad_sum = self._actor_cnn_grad_sum + metrics["grad/actor_cnn"]
                self._actor_updates += 1

    @staticmethod
    def _unavailable(infos: list[dict[str, Any]]) -> str | None:
        return next((info[UNAVAILABLE] for info in infos if UNAVAILABLE in info), None)

    def _raise_if_unavailable(self, infos: list[dict[str, Any]]) -> None:
        message = self._unavailable(infos)
        if message is not None:
            raise SimulatorUnavailable(message)

    def _evaluate_log_checkpoint(self, step: int) -> None:
        """What the cadences ask for at the end of the vector step reaching ``step``; then a stop signal stops the run
        (after a checkpoint), unless the run is finished anyway."""
        s, before, final = self.schedule, step - self.n, step == self.schedule.total_steps
        try:
            if final:
                self.final_eval_return = self.evaluate(step)
            elif fires(s.eval_every, before, step):
                self.evaluate(step)
        except Evaluation.Stopped:
            self._save(step)  # with the evaluation still pending: the resumed run evaluates again
            raise self._interrupted(step) from None
        except SimulatorUnavailable:
            self._save(step)  # the same, so the interval's learning is kept
            raise
        horizon = self.self_gate.due(before, step) if self.self_gate is not None else None
        if fires(s.log_every, before, step) or final or horizon is not None:
            self._log(step)  # a horizon's verdict reads the logs flushed up to it
        if horizon is not None:
            assert self.self_gate is not None
            self.gate_stop = self.self_gate.check(step, self.logger, final)
        self.evaluation_pending = False
        saved = final or fires(s.checkpoint_every, before, step) or self.gate_stop is not None
        if saved:
            self._save(step)
        if self.gate_stop is not None:
            self._stop_on_gate()
        if self._stop_requested() and not final:
            if not saved:
                self._save(step)
            raise self._interrupted(step)

    def _log(self, step: int) -> None:
        if self.window.updates:
            self.logger.record(step, self.window.flush())
        latest = self.logger.flush()
        for message in self.agent.monitor.report(step):
            tqdm.write(message)
        if self.on_log is not None:
            self.on_log(step, latest)
        self._bar.show(step, self.num_updates, self.last_return, latest)

    def _stop_on_gate(self) -> None:
        """End the run on the verdict in ``gate_stop`` (checkpoint written), unless the gate no longer stops on it."""
        assert self.gate_stop is not None
        error = self.self_gate.stop_error(self.gate_stop, self.last_checkpoint) if self.self_gate else None
        if error is None:
            self.gate_stop = None
            return
        self._bar.close()
        raise error

    def _stop_requested(self) -> bool:
        return self.stop is not None and self.stop.received is not None

    def _save(self, step: int) -> None:
        if self.checkpoint is None:
            return
        self.logger.flush()  # everything up to this step is on disk before the checkpoint says it happened
        self.last_checkpoint = self.checkpoint(step)

    def _interrupted(self, step: int) -> Interrupted:
        assert self.stop is not None
        self._bar.close()
        return Interrupted.at(self.stop.name, step, self.last_checkpoint)

    def evaluate(self, step: int) -> float:
        """Deterministic actor, native env reward, episodes spread over the parallel envs; logs eval/return and
        eval/length."""
        if self.schedule.eval_episodes == 0:
            return float("nan")
        # the same tracks at every evaluation: returns stay comparable over time
        seeds = [self.seed + 10_000 + episode for episode in range(self.schedule.eval_episodes)]
        evaluation = Evaluation(self.envs, lambda obs: self.agent.act_batch(obs, step, eval_mode=True),
                                self._stop_requested, note=tqdm.write)
        returns, lengths = evaluation.run(seeds)
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
        """The loop's own state (the envs' reward normalizers are td3exp/resume.py's to save)."""
        return {
            "step": self.step, "evaluation_pending": self.evaluation_pending,
            "tapes": [t.state_dict() for t in self.tapes], "episodes": [dataclasses.asdict(e) for e in self.episodes],
            "last_return": self.last_return, "final_eval_return": self.final_eval_return,
            "actor_cnn_grad_sum": self._actor_cnn_grad_sum, "actor_updates": self._actor_updates,
            "window": self.window.state_dict(), "gate_stop": self.gate_stop,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Counters, tapes and the open metric window; td3exp/resume.py then rebuilds the episodes in progress."""
        self.step, self.evaluation_pending = state["step"], state["evaluation_pending"]
        self.gate_stop = state.get("gate_stop")
        self.last_return, self.final_eval_return = state["last_return"], state["final_eval_return"]
        self._actor_cnn_grad_sum, self._actor_updates = state["actor_cnn_grad_sum"], state["actor_updates"]
        if isinstance(self._actor_cnn_grad_sum, torch.Tensor):
            self._actor_cnn_grad_sum = self._actor_cnn_grad_sum.to(self.agent.device)
        self.window.load_state_dict(state["window"], self.agent.device)
        for tape, tape_state in zip(self.tapes, state["tapes"], strict=True):
            tape.load_state_dict(tape_state)
        self.episodes = [EpisodeStats(**episode) for episode in state["episodes"]]
