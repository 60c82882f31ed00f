"""The CARLA env's control flow against the TEST DOUBLE in tests/carla_double/ (a CARLA server cannot run here).

Only the client, world, actors and sensor data are doubled; maps, transforms, controls and world settings are the
real ``carla`` module, and the env is built by the real factory with the real wrappers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import carla
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from omegaconf import OmegaConf

from td3exp.app import EXIT_CODES
from td3exp.config import CarlaEnvConfig, ConfigError
from td3exp.envs.carla.errors import SimulatorUnavailable, SpawnFailed
from td3exp.envs.carla.factory import make_carla
from td3exp.envs.carla.session import _SESSIONS, spawn_points
from td3exp.envs.vector import UNAVAILABLE, PairedEnv
from td3exp.rewards import COMPONENTS, RewardWeights

from . import carla_double as double
from .conftest import compose_config

WEIGHTS = RewardWeights(progress=0.6, smoothness=0.2, lane_centering=0.1, efficiency=0.1)
PORTS = itertools.count(4000, 3)
THROTTLE = np.array([0.0, 0.6], np.float32)


def carla_config(port: int, *overrides: str) -> CarlaEnvConfig:
    fast = ["env.timeout=0.3", "env.reconnect_backoff=0", "env.settle_ticks=3", "env.camera.width=64",
            "env.camera.height=48", "env.max_episode_steps=60"]
    cfg = compose_config(["env=carla", f"env.port={port}", *fast, *overrides])
    return OmegaConf.to_object(cfg).env  # type: ignore[attr-defined,no-any-return]


def build(env_cfg: CarlaEnvConfig, normalize: str = "none"):
    return make_carla(env_cfg, WEIGHTS, 40.0, normalize, 10.0, 0.99, seed=0, make_client=double.Client)


@pytest.fixture
def server() -> Iterator[double.FakeServer]:
    fake = double.FakeServer(double.straight_map(2000.0), port=next(PORTS))
    yield fake
    assert not _SESSIONS.get((fake.host, fake.port)), "a test left its CARLA session open"


def ego_of(server: double.FakeServer) -> double.Vehicle:
    egos = [v for v in server.live("vehicle.") if re.fullmatch(r"td3exp_[0-9a-f]{6}_ego", v.attributes["role_name"])]
    assert len(egos) == 1
    return egos[0]  # type: ignore[return-value]


def test_sync_mode_is_set_and_the_previous_settings_restored_on_close(server: double.FakeServer) -> None:
    previous = carla.WorldSettings(synchronous_mode=False, no_rendering_mode=True, fixed_delta_seconds=0.1)
    server.settings = previous
    env = build(carla_config(server.port, "env.fixed_delta_seconds=0.025"))
    assert server.settings.synchronous_mode and server.settings.fixed_delta_seconds == pytest.approx(0.025)
    env.reset(seed=0)
    env.close()
    assert server.settings == previous
    env.close()  # safe twice
    assert server.settings == previous and server.live() == []


def test_sensors_attached_to_the_ego_then_stopped_and_destroyed(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    ego = ego_of(server)
    sensors = {s.type_id: s for s in server.live("sensor.")}
    assert set(sensors) == {"sensor.camera.rgb", "sensor.other.collision", "sensor.other.lane_invasion"}
    assert all(s.parent is ego and s.is_listening() for s in sensors.values())
    assert all(s.attributes["role_name"].startswith("td3exp_") for s in sensors.values())
    camera = sensors["sensor.camera.rgb"]
    assert (camera.attributes["image_size_x"], camera.attributes["image_size_y"]) == ("64", "48")
    env.close()  # the double raises if a listening sensor is destroyed
    assert server.live() == [] and not any(s.is_listening() for s in sensors.values())


def test_the_ego_is_reused_across_resets_and_the_map_loaded_once(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    ids = sorted(a.id for a in server.live())
    for episode in range(25):
        env.reset(seed=episode)
        for _ in range(3):
            env.step(THROTTLE)
        assert sorted(a.id for a in server.live()) == ids  # the same 4 actors: moved, never respawned
    assert server.loaded_maps == ["Town04"] and len(server.clients) == 1
    env.close()


def test_every_blocking_call_has_a_finite_time_out(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    env.step(THROTTLE)
    env.close()
    calls = dict(server.blocking_calls)
    assert set(calls) == {"load_world_if_different", "apply_settings", "tick"}
    assert calls["tick"] == calls["apply_settings"] == 0.3  # env.timeout, never 0.0 (= the client's default)
    assert 0.3 <= calls["load_world_if_different"] < float("inf")  # a map load may take longer than an RPC


def test_a_spawn_point_beyond_the_map_is_a_config_error(server: double.FakeServer) -> None:
    with pytest.raises(ConfigError, match="env.spawn_point=999"):
        build(carla_config(server.port, "env.spawn_point=999"))


def test_leftovers_of_a_crashed_client_are_swept_on_connect(server: double.FakeServer) -> None:
    server.map_name = "Carla/Maps/Town04"  # already loaded: loading would not clear the actors
    world = double.Client(server.host, server.port).get_world()
    left = world.try_spawn_actor(world.get_blueprint_library().find("vehicle.audi.tt"), carla.Transform())
    left.attributes["role_name"] = "td3exp_ego"
    foreign = world.try_spawn_actor(world.get_blueprint_library().find("vehicle.audi.tt"),
                                    carla.Transform(carla.Location(50, 0, 0)))
    env = build(carla_config(server.port))
    assert [a.id for a in server.live()] == [foreign.id]
    env.close()


def test_action_maps_to_throttle_or_brake(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    env.step(np.array([0.3, 0.7], np.float32))
    control = ego_of(server).control
    assert (control.steer, control.throttle, control.brake) == pytest.approx((0.3, 0.7, 0.0))
    env.step(np.array([-0.2, -0.4], np.float32))
    control = ego_of(server).control
    assert (control.steer, control.throttle, control.brake) == pytest.approx((-0.2, 0.0, 0.4))
    env.close()


def test_observations_rewards_and_info_follow_the_trainer_contract(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.action_space.shape == (2,)
    frames, progress, start_x = [info["frame"]], 0.0, ego_of(server).location.x
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(THROTTLE)
        assert set(info["reward_components"]) == set(COMPONENTS)
        assert reward == pytest.approx(WEIGHTS.combine(info["reward_components"])) == info["weighted_reward"]
        assert info["native_reward"] == info["reward_components"]["progress"]
        assert info["reward_components"]["lane_centering"] == pytest.approx(0.0, abs=1e-6)  # straight ahead
        progress += info["native_reward"]
        frames.append(info["frame"])
    assert frames == list(range(frames[0], frames[0] + 21))  # one tick per step, each frame its own
    assert progress == pytest.approx(ego_of(server).location.x - start_x) and progress > 1.0  # metres along +x
    assert not np.array_equal(obs[0], obs[-1])  # the frames show the car moving
    env.close()


def test_collision_ends_the_episode_with_the_penalty_but_not_during_the_spawn_drop(
        server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    server.pending_collisions = [ego_of(server).id]
    env.reset(seed=1)  # the collision happens during the settle ticks: ignored
    _, _, terminated, _, info = env.step(THROTTLE)
    assert not terminated
    server.pending_collisions = [ego_of(server).id]
    _, _, terminated, truncated, info = env.step(THROTTLE)
    assert terminated and not truncated and info["termination"] == "collision"
    assert info["native_reward"] == pytest.approx(-100.0, abs=2.0)
    env.close()


def test_leaving_the_lane_and_standing_still_terminate(server: double.FakeServer) -> None:
    env = build(carla_config(server.port, "env.max_idle_steps=5", "env.max_lateral_offset=1.5"))
    env.reset(seed=0)
    ego = ego_of(server)
    ego.location = carla.Location(ego.location.x, ego.location.y + 2.0, 0.0)  # pushed 2 m to the right
    _, _, terminated, _, info = env.step(THROTTLE)
    assert terminated and info["termination"] == "off_lane" and info["lateral_offset"] > 1.5
    env.reset(seed=0)
    ends = [env.step(np.array([0.0, -1.0], np.float32))[2] for _ in range(5)]
    assert ends == [False] * 4 + [True]
    env.close()


def test_time_limit_truncates_in_agent_steps(server: double.FakeServer) -> None:
    env = build(carla_config(server.port, "env.max_episode_steps=6", "env.action_repeat=2"))
    env.reset(seed=0)
    results = [env.step(np.array([0.0, 0.2], np.float32)) for _ in range(6)]
    assert [r[3] for r in results] == [False] * 5 + [True] and not any(r[2] for r in results)
    env.close()


def test_stale_frames_are_never_used(server: double.FakeServer) -> None:
    server.stale_images = True  # every tick also delivers an all-white image stamped with the previous frame
    env = build(carla_config(server.port))
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(THROTTLE)
        assert obs.max() < 255
    env.close()


def test_frame_timeout_reconnects_and_drops_the_episode(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    last, *_ = env.step(THROTTLE)
    server.mute_cameras()
    obs, reward, terminated, truncated, info = env.step(THROTTLE)
    assert info["simulator_lost"] and info["reconnects"] == 1 and truncated and not terminated and reward == 0.0
    np.testing.assert_array_equal(obs[-1], last[-1])  # the last valid frame
    assert len(server.clients) == 2 and server.settings.synchronous_mode
    env.reset(seed=1)
    assert len(server.live()) == 4  # the old ego and sensors were swept, a new set spawned
    env.step(THROTTLE)
    env.close()


def test_lost_server_reconnects_with_a_new_client_and_reapplied_settings(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    server.crash(refuse=1)  # the server restarts (state lost) and refuses the first reconnect
    _, reward, terminated, truncated, info = env.step(THROTTLE)
    assert info["simulator_lost"] and info["reconnects"] == 1 and truncated and not terminated
    assert len(server.clients) == 3  # the first client, a refused one, the one that connected
    assert server.settings.synchronous_mode and server.loaded_maps == ["Town04", "Town04"]
    env.reset(seed=0)
    assert len(server.live()) == 4
    assert not env.step(THROTTLE)[4].get("simulator_lost")
    env.close()
    assert server.live() == [] and not server.settings.synchronous_mode


def test_reconnects_running_out_raise_simulator_unavailable(server: double.FakeServer) -> None:
    env = build(carla_config(server.port, "env.max_reconnects=2"))
    env.reset(seed=0)
    server.crash(refuse=10)
    with pytest.raises(SimulatorUnavailable) as error:
        env.step(THROTTLE)
    message = str(error.value)
    assert "\n" not in message and f"{server.host}:{server.port}" in message and "env.max_reconnects" in message
    env.close()


def test_training_and_evaluation_env_share_the_server_and_park_each_other(server: double.FakeServer) -> None:
    train, evaluate = build(carla_config(server.port)), build(carla_config(server.port))
    assert len(server.clients) == 1  # one connection, one settings change
    train.reset(seed=0)
    for _ in range(5):
        train.step(THROTTLE)
    train_ego = ego_of(server)
    before = train_ego.get_transform().location, train_ego.get_velocity()
    evaluate.reset(seed=100)
    assert not train_ego.physics and train_ego.location.z > 400  # parked out of the way
    for _ in range(5):
        evaluate.step(THROTTLE)
    *_, info = train.step(THROTTLE)
    assert train_ego.physics and info["termination"] is None
    assert train_ego.location.x == pytest.approx(before[0].x + before[1].x * 0.05, abs=0.5)  # resumed where it was
    server.crash()  # lost while evaluating: the eval env reconnects ...
    assert evaluate.step(THROTTLE)[4]["simulator_lost"]
    *_, info = train.step(THROTTLE)  # ... and the training env's episode ends without a second reconnect
    assert info["simulator_lost"] and info["reconnects"] == 1 and len(server.clients) == 2
    train.close()
    assert server.settings.synchronous_mode  # the evaluation env still runs
    evaluate.close()
    assert server.live() == [] and not server.settings.synchronous_mode


class WithoutFrameIds(gym.Wrapper):
    """Drops ``info["frame"]``: the server's tick counter never repeats, by design, so it cannot pass
    check_env's same-seed-same-info test; everything else must."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {k: v for k, v in info.items() if k != "frame"}

    def step(self, action):
        *out, info = self.env.step(action)
        return (*out, {k: v for k, v in info.items() if k != "frame"})


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_gymnasium_check_env_passes(server: double.FakeServer) -> None:
    env = build(carla_config(server.port), normalize="clip")
    try:
        check_env(WithoutFrameIds(env), skip_render_check=True)
    finally:
        env.close()


def test_driving_straight_through_a_fork_is_not_off_lane() -> None:
    # the case on the env: the route took the other branch at random and ended the episode off_lane
    fork = double.FakeServer(double.fork_map(), port=next(PORTS))
    points = spawn_points(fork.town)
    start = next(i for i, p in enumerate(points) if p.location.x == pytest.approx(double.FORK_AT - 40.0, abs=1.0))
    env = build(carla_config(fork.port, f"env.spawn_point={start}", "env.max_episode_steps=200"))
    try:
        for seed in range(4):
            env.reset(seed=seed)
            ego = ego_of(fork)
            while ego.location.x < double.FORK_AT + 25.0:
                *_, terminated, truncated, info = env.step(THROTTLE)
                assert not terminated and not truncated, (seed, ego.location.x, info["termination"])
    finally:
        env.close()


def test_late_collision_and_lane_invasion_events_count_in_the_next_step(server: double.FakeServer) -> None:
    # lane invasion is a client-side sensor in 0.9.16: its event can arrive after the step that made it has drained
    env = build(carla_config(server.port))
    env.reset(seed=0)
    server.late_events = True
    server.pending_invasions = [ego_of(server).id]
    *_, info = env.step(THROTTLE)
    assert not info["lane_invasion"]  # not there yet
    *_, info = env.step(THROTTLE)
    assert info["lane_invasion"]  # the late event, in the next step
    *_, info = env.step(THROTTLE)
    assert not info["lane_invasion"]  # counted once
    server.pending_collisions = [ego_of(server).id]
    _, _, terminated, _, info = env.step(THROTTLE)
    assert not terminated
    _, _, terminated, _, info = env.step(THROTTLE)
    assert terminated and info["termination"] == "collision"
    env.close()


def test_late_events_of_the_spawn_drop_never_count(server: double.FakeServer) -> None:
    env = build(carla_config(server.port))
    env.reset(seed=0)
    server.late_events = True
    last_settle_tick, ego = server.frame + 3, ego_of(server)  # env.settle_ticks=3

    def collide(frame: int) -> None:
        if frame == last_settle_tick:
            server.pending_collisions = [ego.id]

    server.tick_hooks.append(collide)
    env.reset(seed=1)  # the collision happens in the drop's last tick; its event comes after the reset
    for _ in range(3):
        _, _, terminated, _, info = env.step(THROTTLE)
        assert not terminated
    env.close()


def crowded(length: float) -> tuple[double.FakeServer, list[double.Vehicle]]:
    """A road with spawn points every 20 m on both lanes (x = 0, 20, ... < length), a car of another client on
    each (a driver of that client's, not an env's NPC)."""
    fake = double.FakeServer(double.straight_map(length, right_lanes=1), port=next(PORTS))
    fake.map_name = "Carla/Maps/Town04"  # already loaded: loading would destroy the cars
    world = double.Client(fake.host, fake.port).get_world()
    bp = world.get_blueprint_library().find("vehicle.audi.tt")
    return fake, [world.try_spawn_actor(bp, point) for point in spawn_points(fake.town)]


def test_no_free_spawn_point_is_a_one_line_simulator_unavailable_with_an_exit_code() -> None:
    fake, _ = crowded(30.0)  # every point taken: the ego cannot spawn
    env = build(carla_config(fake.port))
    frame = fake.frame
    try:
        with pytest.raises(SpawnFailed) as error:
            env.reset(seed=0)
        message = str(error.value)
        assert "\n" not in message and "env.npc_vehicles" in message and "env.spawn_retries" in message
        assert fake.frame - frame == 2 * 3  # it let the traffic move twice (settle_ticks=3) before giving up
        assert next(code for kind, code in EXIT_CODES if isinstance(error.value, kind)) == 4
        _, info = PairedEnv(lambda: env, lambda: env).reset(seed=0)  # reported, not a dead worker
        assert info[UNAVAILABLE].startswith("no free spawn point")
    finally:
        env.close()
    assert [a.attributes["role_name"] for a in fake.live()] == [""] * 4  # only the other client's cars


def test_an_episode_never_starts_next_to_another_vehicle() -> None:
    fake = double.FakeServer(double.straight_map(60.0, right_lanes=1), port=next(PORTS))
    env = build(carla_config(fake.port))
    try:
        env.reset(seed=0)
        world = double.Client(fake.host, fake.port).get_world()
        bp = world.get_blueprint_library().find("vehicle.audi.tt")
        for point in spawn_points(fake.town):  # on every point but the ego's: each is 3.5 m from one of them
            world.try_spawn_actor(bp, point)
        with pytest.raises(SpawnFailed, match="another vehicle within 10 m"):
            env.reset(seed=1)
    finally:
        env.close()


def test_a_start_is_found_once_traffic_moves_away() -> None:
    fake, blockers = crowded(60.0)
    first = fake.frame
    free_x = 40.0

    def drive_away(frame: int) -> None:  # in the first tick after the first try, the cars at x = 40 leave
        if frame == first + 1:
            for car in blockers:
                if car.location.x == pytest.approx(free_x):
                    car.location = carla.Location(car.location.x + 500.0, car.location.y, 0.0)

    fake.tick_hooks.append(drive_away)
    env = build(carla_config(fake.port))
    try:
        env.reset(seed=0)
        assert ego_of(fake).location.x == pytest.approx(free_x)
        assert fake.frame - first == 2 * 3  # one wait for the traffic, then the drop (settle_ticks=3)
    finally:
        env.close()
