"""State-vector tasks (env=gymnasium, encoder=mlp): the env chain, the replay, one-line config errors, the metric
families a run without a CNN writes, the gate's SKIPPED criteria, and a learning test on a task TD3 solves fast.
Real gymnasium tasks (Pendulum-v1, InvertedPendulum-v5 on MuJoCo), the real entrypoint, real event files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from td3exp import build
from td3exp.envs import make_gymnasium_task
from td3exp.metrics import CONTRACT, WINDOW_CONTRACT
from td3exp.replay import FrameReplay
from td3exp.report.aggregate import summarize
from td3exp.report.criteria import evaluate
from td3exp.report.gate import load_gate
from td3exp.report.runs import load_run

from .conftest import compose_config, read_scalars, run_td3exp

TINY_STATE = ["env=gymnasium", "env.id=Pendulum-v1", "agent=fujimoto", "total_steps=300", "agent.start_steps=100",
              "agent.batch_size=32", "agent.buffer_size=1000", "eval.every=150", "eval.episodes=1",
              "env.max_episode_steps=50", "logger.log_every=50", "logger.wandb.mode=disabled",
              "logger.progress_bar=false"]


def test_actions_are_rescaled_to_the_task_bounds_and_observations_are_float32() -> None:
    env = make_gymnasium_task("InvertedPendulum-v5", None, 1, "none", 10.0, 0.99)  # its force is in [-3, 3]
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (4,)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    env.step(np.array([1.0], np.float32))
    assert env.unwrapped.data.ctrl.tolist() == [3.0]  # the simulator received the task's own bound
    env.close()


def test_time_limits_truncate_and_falls_terminate() -> None:
    pendulum = make_gymnasium_task("Pendulum-v1", 5, 1, "none", 10.0, 0.99)
    pendulum.reset(seed=0)
    ends = [pendulum.step(np.zeros(1, np.float32))[2:4] for _ in range(5)]
    assert ends[-1] == (False, True) and all(e == (False, False) for e in ends[:-1])  # truncated: bootstrap
    falls = make_gymnasium_task("InvertedPendulum-v5", None, 1, "none", 10.0, 0.99)
    falls.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = falls.step(np.ones(1, np.float32))  # full force: it falls
        assert info["native_reward"] == info["weighted_reward"] == reward
        steps += 1
    assert terminated and not truncated and steps < 100


def test_action_repeat_sums_the_task_reward() -> None:
    once = make_gymnasium_task("Pendulum-v1", None, 1, "none", 10.0, 0.99)
    twice = make_gymnasium_task("Pendulum-v1", None, 2, "none", 10.0, 0.99)
    once.reset(seed=3), twice.reset(seed=3)
    action = np.full(1, 0.5, np.float32)
    rewards = [once.step(action)[1] for _ in range(2)]
    _, reward, _, _, info = twice.step(action)
    assert reward == pytest.approx(sum(rewards)) and info["native_reward"] == pytest.approx(sum(rewards))


def test_replay_stores_each_state_once_and_pairs_obs_with_next_obs() -> None:
    replay = FrameReplay(100, (3,), 1, 1, batch_size=64, device=torch.device("cpu"), stacked=False,
                         frame_dtype=np.float32)
    states = np.arange(60, dtype=np.float32)[:, None].repeat(3, 1)  # state t = [t, t, t]
    replay.start_episode(states[0])
    for t in range(1, 60):
        if t == 30:  # a new episode: its reset state is stored, no transition spans the boundary
            replay.start_episode(states[t])
            continue
        replay.add(states[t], np.full(1, t, np.float32), float(t), False)
    assert replay.frames.nbytes == 100 * 3 * 4 and len(replay) == 58
    batch = replay.sample()
    assert batch.obs.dtype == torch.float32 and batch.obs.shape == (64, 3)
    t = batch.actions[:, 0]
    torch.testing.assert_close(batch.next_obs[:, 0], t)
    torch.testing.assert_close(batch.obs[:, 0], t - 1)
    assert 30 not in t.tolist()  # the reset of the second episode is no transition


@pytest.mark.parametrize(("overrides", "says"), [
    (["encoder=separate"], "use encoder=mlp"),
    (["reward=balanced"], "reward weights apply to car_racing and carla only"),
    (["env.id=CarRacing-v3"], "needs a flat Box observation"),
    (["env.id=NoSuchTask-v0"], "env.id=NoSuchTask-v0"),
    (["reward.weights.progress=1"], "reward.weights is null"),
])
def test_state_task_mistakes_exit_2_in_one_line(tmp_path: Path, overrides: list[str], says: str) -> None:
    result = run_td3exp([*TINY_STATE, *overrides, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr[-2000:]


def test_pixel_env_with_the_vector_encoder_exits_2(tmp_path: Path) -> None:
    result = run_td3exp(["encoder=mlp", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2 and "encoder=mlp needs a state-vector observation" in result.stderr


def test_saturation_alerts_on_a_state_task_do_not_point_at_pixel_settings() -> None:
    """Healthy MuJoCo actors sit at their bounds while they learn (bang-bang): the alert says so, not "pixel_scale"."""
    cfg = OmegaConf.to_object(compose_config(["env=gymnasium", "env.id=Pendulum-v1"]))
    monitor = build.build_agent(cfg, (3,), 1, torch.device("cpu")).monitor  # type: ignore[arg-type]
    monitor.observe_saturation(torch.tensor(1.0))
    (message,) = monitor.report(step=10)
    assert "bang-bang" in message and "eval/return" in message and "pixel_scale" not in message


@pytest.fixture(scope="module")
def state_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("state") / "run"
    result = run_td3exp([*TINY_STATE, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_a_run_without_a_cnn_writes_the_contract_minus_the_modules_it_lacks(state_run: Path) -> None:
    tags = set(read_scalars(state_run))
    absent = {t for t in (*CONTRACT, *WINDOW_CONTRACT)
              if "_cnn" in t or t.split("/")[0] in ("features", "features_max", "reward")}
    assert absent and not tags & absent
    assert (set(CONTRACT) | set(WINDOW_CONTRACT)) - absent <= tags
    assert {"grad/actor", "grad/critic", "episode/native_return", "eval/return"} <= tags


def test_the_gate_skips_the_actor_cnn_criteria_of_a_run_without_a_cnn(state_run: Path) -> None:
    verdict = evaluate(load_run(state_run), load_gate("strict"))
    status = {c.name: (c.status, c.value) for c in verdict.criteria}
    for name in ("actor_cnn_grad_mean", "actor_cnn_alive", "actor_cnn_update_ratio"):
        assert status[name] == ("SKIPPED", "no actor CNN under encoder.layout=mlp")
    assert status["q_abs_max"][0] == "PASS"
    # the statistics table has no row for a metric no run has
    assert [m.metric for m in summarize([load_run(state_run)], reps=10)] == ["final eval/return"]


def test_td3_learns_pendulum_within_the_budget(tmp_path: Path) -> None:
    """Pendulum-v1: a uniform-random policy scores about -1,200; TD3 with the author's settings passes -400 within
    5,000 updates (seed 0 reached -212; 3,000 updates were not enough: -816 to -938). About 45 s on two free cores."""
    run_dir = tmp_path / "run"
    result = run_td3exp(["env=gymnasium", "env.id=Pendulum-v1", "agent=fujimoto", "seed=0", "total_steps=6000",
                         "agent.start_steps=1000", "eval.every=6000", "eval.episodes=5", "checkpoint.every=0",
                         "logger.wandb.mode=disabled", "logger.progress_bar=false", "save_model=false",
                         f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (step, final), = read_scalars(run_dir)["eval/return"]
    assert step == 6000 and final > -400, final
