"""Parallel envs (issue 12) on real CarRacing: the real entrypoint with two env processes, what the trainer stores
against a single env replayed from the same seeds and actions, evaluation spread over the envs, and a lost simulator
(a stand-in for CARLA's reconnect contract, which cannot run here without a server)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from td3exp import build
from td3exp.config import Config
from td3exp.envs import make_car_racing
from td3exp.envs.errors import SimulatorUnavailable
from td3exp.envs.vector import UNAVAILABLE, ParallelEnvs
from td3exp.episodes import EpisodeTape
from td3exp.evaluation import Evaluation
from td3exp.loggers import Logger
from td3exp.metrics import CONTRACT, WINDOW_CONTRACT
from td3exp.replay import FrameReplay
from td3exp.report.criteria import evaluate
from td3exp.report.gate import load_gate
from td3exp.report.runs import load_run
from td3exp.rewards import RewardWeights
from td3exp.trainer import Trainer

from .conftest import compose_config, read_scalars, run_td3exp

SMALL = ["encoder.features_dim=64", "agent.hidden_dims=[32,32]", "agent.batch_size=16", "agent.buffer_size=400",
         "logger.wandb.mode=disabled", "logger.progress_bar=false", "deterministic=true"]
# two env processes, 80 agent steps (40 vector steps), half an update per step after step 40: 20 updates
TWO_ENVS = [*SMALL, "env.num_envs=2", "env.vector=async", "total_steps=80", "agent.start_steps=40",
            "agent.utd_ratio=0.5", "logger.log_every=20", "eval.every=40", "eval.episodes=3",
            "env.max_episode_steps=30"]
WEIGHTS = RewardWeights(0.6, 0.2, 0.1, 0.1)


def car_racing(steps: int, normalize: str = "none") -> partial:
    return partial(make_car_racing, 4, 84, 1, steps, 40.0, WEIGHTS, normalize, 10.0, 0.99)


@pytest.fixture(scope="module")
def two_env_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same deterministic run logged per window (the default) and per update."""
    runs = {}
    for name, extra in (("windows", []), ("updates", ["logger.every_update=true"])):
        run_dir = tmp_path_factory.mktemp(name) / "run"
        result = run_td3exp([*TWO_ENVS, *extra, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = run_dir
    return runs


def test_two_env_processes_write_the_metric_contract_and_count_steps_across_envs(two_env_runs) -> None:
    windows, updates = read_scalars(two_env_runs["windows"]), read_scalars(two_env_runs["updates"])
    assert not (set(CONTRACT) | set(WINDOW_CONTRACT)) - set(windows)
    assert not set(CONTRACT) - set(updates) and not set(WINDOW_CONTRACT) & set(updates)
    # 20 updates over agent steps 41..80, one point per 20-step window
    assert windows["window/updates"] == [(60, 10.0), (80, 10.0)] and len(updates["loss/critic"]) == 20
    # 40 steps per env: one 30-step episode in each, logged at that env's own agent step (59 and 60)
    assert windows["episode/length"] == [(59, 30.0), (60, 30.0)]
    assert [s for s, _ in windows["eval/return"]] == [40, 80]  # 3 evaluation episodes over the two envs
    for tag in ("episode/return", "reward/progress", "eval/return", "alerts/critical"):
        assert windows[tag][-1][1] == updates[tag][-1][1], tag  # how it logs does not change the run


def test_window_points_are_the_per_update_values_aggregated(two_env_runs) -> None:
    windows, updates = read_scalars(two_env_runs["windows"]), read_scalars(two_env_runs["updates"])
    for tag in ("loss/critic", "q/q1", "grad/actor_cnn", "update_ratio/critic_cnn", "actor/saturation"):
        family, name = tag.split("/")
        previous = 0
        for (step, mean), (_, peak) in zip(windows[tag], windows[f"{family}_max/{name}"], strict=True):
            values = np.array([v for s, v in updates[tag] if previous < s <= step])
            assert mean == pytest.approx(values.mean(), rel=1e-5, abs=1e-9), (tag, step)
            assert peak == pytest.approx(np.abs(values).max(), rel=1e-6), (tag, step)
            previous = step


def test_the_report_gives_the_same_gate_from_windows_as_from_updates(two_env_runs) -> None:
    verdicts = {}
    for name, run_dir in two_env_runs.items():
        verdicts[name] = {c.name: c for c in evaluate(load_run(run_dir), load_gate("strict")).criteria}
    a, b = verdicts["windows"], verdicts["updates"]
    assert a.keys() == b.keys()
    # exact from windows: means, maxima, counts
    for name in ("actor_cnn_grad_mean", "q_abs_max", "critic_loss_mean", "critical_alerts", "nonfinite"):
        assert (a[name].status, a[name].value) == (b[name].status, b[name].value), name
    # medians come from window means (documented in td3exp/report/windows.py): same verdicts on this run
    assert {k: c.status for k, c in a.items()} == {k: c.status for k, c in b.items()}


def test_stored_transitions_match_a_single_env_replayed_from_the_same_seeds_and_actions(tmp_path: Path) -> None:
    """Each env's replay stream holds exactly what that env showed: reset frames start episodes, the true final
    frame of a truncated episode ends it (bootstrapped: terminated stays 0), and no stack reaches across."""
    steps, length = 2 * 45, 20  # two truncations and a half per env
    cfg: Config = OmegaConf.to_object(compose_config([  # type: ignore[assignment]
        *SMALL, "env.num_envs=2", f"total_steps={steps}", f"agent.start_steps={steps}", "eval.episodes=0",
        f"env.max_episode_steps={length}", "checkpoint.every=0", "seed=5", "env.vector=async"]))
    envs = build.build_envs(cfg)
    shape = envs.single_observation_space.shape
    assert shape is not None
    agent = build.build_agent(cfg, shape, 2, torch.device("cpu"))
    replay = build.build_replay(cfg, shape, 2, torch.device("cpu"))
    logger = Logger(tmp_path, {})
    try:
        Trainer(envs, None, agent, replay, logger, build.build_schedule(cfg), cfg.seed, show_progress=False).run()
    finally:
        logger.close()
        envs.close()
    for i in range(2):
        rows = slice(i * replay.capacity, (i + 1) * replay.capacity)  # stream i's rows (no wrap-around here)
        frames, starts = replay.frames[rows][: replay.frames_written[i]], replay.episode_start_id[rows]
        actions, terminated = replay.actions[rows][: steps // 2], replay.terminated[rows][: steps // 2, 0]
        single, tape = car_racing(length)(), EpisodeTape(cfg.seed, i)
        expected, expected_starts, t = [], [], 0
        while t < steps // 2:
            obs, _ = single.reset(seed=tape.begin())
            expected.append(obs[-1])
            expected_starts += [len(expected) - 1] * min(length, steps // 2 - t)
            for _ in range(length):
                if t == steps // 2:
                    break
                obs, _, term, trunc, _ = single.step(actions[t])
                expected.append(obs[-1])
                assert not term and terminated[t] == 0.0  # time limits are not terminations
                t += 1
        np.testing.assert_array_equal(frames, np.stack(expected))
        np.testing.assert_array_equal(starts[: steps // 2], expected_starts)


class LosesItsSimulator(gym.Wrapper):
    """STAND-IN for the CARLA env's reconnect contract (no CARLA server can run here): at the given step of the
    first episode it ends the episode as a truncation flagged ``info["simulator_lost"]``, as CarlaLaneKeeping does
    after reconnecting."""

    def __init__(self, env: gym.Env, at: int) -> None:
        super().__init__(env)
        self.at, self.t, self.episodes, self.reconnects = at, 0, 0, 0

    def reset(self, **kwargs: Any) -> Any:
        self.t, self.episodes = 0, self.episodes + 1
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        if self.episodes == 1 and self.t == self.at:
            self.reconnects += 1
            return obs, 0.0, False, True, {**info, "simulator_lost": True, "reconnects": self.reconnects}
        return obs, reward, terminated, truncated, info


def drive(obs: np.ndarray) -> np.ndarray:
    """A fixed deterministic policy: steer by the image's brightness balance, constant throttle."""
    left, right = obs[-1, :, :42].mean(), obs[-1, :, 42:].mean()
    return np.array([np.tanh((right - left) / 20), 0.5], dtype=np.float32)


def single_episode_returns(seeds: list[int], length: int) -> list[float]:
    env, returns = car_racing(length)(), []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(drive(obs))
            total, done = total + info["native_reward"], terminated or truncated
        returns.append(total)
    return returns


def test_evaluation_spreads_episodes_over_envs_on_the_same_tracks() -> None:
    # three episodes on two envs: env 1 loses its simulator in its first episode and plays it again, env 0 plays the
    # third episode meanwhile, then env 1 is parked until env 0 is done
    seeds, make = [11, 12, 13], car_racing(25)
    envs = ParallelEnvs.make([make, make], [make, lambda: LosesItsSimulator(make(), at=7)], "sync")
    notes: list[str] = []
    batches: list[int] = []

    def drive_all(obs: np.ndarray) -> np.ndarray:
        batches.append(len(obs))  # one call per vector step, for the envs playing
        return np.stack([drive(o) for o in obs])

    try:
        returns, lengths = Evaluation(envs, drive_all, lambda: False, note=notes.append).run(seeds)
        assert list(lengths) == [25, 25, 25]
        assert sum(batches) == 3 * 25 + 7 and set(batches) == {1, 2}  # 7 steps of the lost episode
        np.testing.assert_allclose(returns, single_episode_returns(seeds, 25))
        assert len(notes) == 1 and "episode 1 lost its simulator" in notes[0]
        with pytest.raises(Evaluation.Stopped):
            Evaluation(envs, drive_all, lambda: True).run(seeds)
        assert envs.vector.get_attr("mode") == ("train", "train")
    finally:
        envs.close()


def test_a_lost_simulator_drops_its_transition_and_logs_the_reconnect(tmp_path: Path) -> None:
    cfg: Config = OmegaConf.to_object(compose_config([  # type: ignore[assignment]
        *SMALL, "total_steps=40", "agent.start_steps=40", "eval.episodes=0", "env.max_episode_steps=30"]))
    make = car_racing(30)
    envs = ParallelEnvs.make([make, lambda: LosesItsSimulator(make(), at=5)], [make, make], "sync")
    agent = build.build_agent(cfg, (4, 84, 84), 2, torch.device("cpu"))
    replay = FrameReplay(400, (84, 84), 4, 2, 16, torch.device("cpu"), streams=2)
    logger = Logger(tmp_path, {})
    schedule = build.build_schedule(cfg)
    try:
        Trainer(envs, None, agent, replay, logger, schedule, cfg.seed, show_progress=False).run()
    finally:
        logger.close()
        envs.close()
    assert read_scalars(tmp_path)["env/reconnects"] == [(10, 1.0)]  # env 1's 5th step is agent step 2 * 5
    assert list(replay.transitions_written) == [20, 19]  # the broken transition never reached the replay
    assert replay.frames_written[1] == 19 + 2  # two episodes: the lost one and the one after it


@pytest.mark.parametrize(("overrides", "steps", "updates"), [
    (["agent.utd_ratio=0.29"], 100, 29),  # 0.29 * 100 is 28.999... in floats: the schedule counts exactly
    (["agent.utd_ratio=0.1"], 30, 3),
    (["agent.utd_ratio=1.5"], 7, 10),
    (["agent.train_freq=4"], 16, 4),  # the old knob still means what it said: one update per 4 agent steps
    (["agent.utd_ratio=2", "agent.train_freq=4"], 16, 8),
])
def test_the_update_to_data_ratio_is_exact(overrides: list[str], steps: int, updates: int) -> None:
    cfg: Config = OmegaConf.to_object(compose_config(overrides))  # type: ignore[assignment]
    schedule = build.build_schedule(cfg)
    assert schedule.updates_after(1000 + steps, learning_starts=1000) == updates
    assert schedule.updates_after(999, learning_starts=1000) == 0


def no_server() -> gym.Env:
    """STAND-IN for env=carla's factory when the server of an env index does not answer (no CARLA server here)."""
    raise SimulatorUnavailable("no CARLA server answered at 127.0.0.1:2003 within 10 s (env.timeout)")


def test_an_env_process_whose_simulator_does_not_answer_reports_it_in_one_line() -> None:
    make = car_racing(20)
    spaces = (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    envs = ParallelEnvs.make([make, no_server], [make, no_server], "async", spaces)
    try:
        _, infos = envs.reset([1, 2], np.ones(2, dtype=bool))
        assert UNAVAILABLE not in infos[0] and infos[1][UNAVAILABLE].startswith("no CARLA server answered at")
    finally:
        envs.close()
