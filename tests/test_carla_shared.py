"""A CARLA server shared with other clients and runs, against the TEST DOUBLE in tests/carla_double/ (a CARLA server
cannot run here): settings left by a crashed run, a second synchronous client, per-run actor tags, version checks,
the Traffic Manager's seed and the ports of parallel sweep jobs (real Hydra composition)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import carla
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict, read_write

from td3exp.config import Config, ConfigError, register_configs
from td3exp.envs.carla.errors import SimulatorUnavailable
from td3exp.envs.carla.factory import make_carla
from td3exp.envs.carla.session import _SESSIONS
from td3exp.validation import validate

from . import carla_double as double
from .conftest import REPO, compose_config
from .test_carla_env import PORTS, THROTTLE, WEIGHTS, build, carla_config


@pytest.fixture
def server() -> Iterator[double.FakeServer]:
    fake = double.FakeServer(double.straight_map(2000.0), port=next(PORTS))
    yield fake
    assert not _SESSIONS.get((fake.host, fake.port)), "a test left its CARLA session open"


LEFT_BY_A_CRASH = carla.WorldSettings(synchronous_mode=True, no_rendering_mode=False, fixed_delta_seconds=0.05)


def leftovers_of(fake: double.FakeServer, run: str) -> list[double.Actor]:
    """A vehicle with a sensor, tagged as td3exp run ``run`` tags them, on a server already running Town04."""
    fake.map_name = "Carla/Maps/Town04"
    world = double.Client(fake.host, fake.port).get_world()
    library = world.get_blueprint_library()
    car_bp, sensor_bp = library.find("vehicle.audi.tt"), library.find("sensor.other.collision")
    car_bp.set_attribute("role_name", f"td3exp_{run}_ego")
    sensor_bp.set_attribute("role_name", f"td3exp_{run}_collision")
    car = world.try_spawn_actor(car_bp, carla.Transform(carla.Location(30, 1.75, 0.5)))
    return [car, world.spawn_actor(sensor_bp, carla.Transform(), attach_to=car)]


def test_a_second_synchronous_client_is_refused_in_one_line(server: double.FakeServer) -> None:
    # another run drives this server: synchronous, ticking, its actors on it
    theirs = leftovers_of(server, "0a1b2c")
    server.settings, server.other_client_ticks = LEFT_BY_A_CRASH, True
    with pytest.raises(SimulatorUnavailable) as error:
        build(carla_config(server.port))
    message = str(error.value)
    assert "\n" not in message and f"{server.host}:{server.port}" in message
    assert "another synchronous client" in message and "env.port" in message and "env.job_slot" in message
    assert sorted(a.id for a in server.live()) == sorted(a.id for a in theirs)  # nothing of theirs destroyed
    assert server.settings.synchronous_mode and not _SESSIONS


def test_settings_left_by_a_crashed_run_are_restored_to_asynchronous(server: double.FakeServer) -> None:
    leftovers_of(server, "0a1b2c")  # the crashed run's actors, and its synchronous settings: nobody ticks
    server.settings = LEFT_BY_A_CRASH
    env = build(carla_config(server.port))
    env.reset(seed=0)
    env.step(THROTTLE)
    assert not any(a.attributes["role_name"].startswith("td3exp_0a1b2c") for a in server.live())  # swept
    env.close()
    assert not server.settings.synchronous_mode and not server.settings.fixed_delta_seconds  # not the crash's
    assert server.live() == [] and dict(server.blocking_calls)["wait_for_tick"] == 0.3  # waited env.timeout


def test_a_server_taken_over_while_reconnecting_stops_the_run_at_once(server: double.FakeServer) -> None:
    env = build(carla_config(server.port, "env.max_reconnects=3"))
    env.reset(seed=0)
    server.mute_cameras()  # lost ...
    server.other_client_ticks = True  # ... and meanwhile another synchronous client drives the server
    with pytest.raises(SimulatorUnavailable, match="another synchronous client"):
        env.step(THROTTLE)
    assert len(server.clients) == 2  # one reconnect attempt, not env.max_reconnects
    env.close()


def test_every_actor_of_a_run_carries_its_own_tag() -> None:
    servers = [double.FakeServer(double.straight_map(2000.0), port=next(PORTS)) for _ in range(2)]
    envs = [build(carla_config(fake.port, "env.npc_vehicles=2")) for fake in servers]
    tags = []
    for fake, env in zip(servers, envs, strict=True):
        env.reset(seed=0)
        roles = [a.attributes["role_name"] for a in fake.live()]
        matches = [re.fullmatch(r"td3exp_([0-9a-f]{6})_(ego|camera|collision|lane_invasion|npc)", r) for r in roles]
        assert all(matches), roles
        assert len({m[1] for m in matches if m}) == 1  # one tag per run
        tags.append(matches[0][1] if matches[0] else "")
        env.close()
    assert tags[0] != tags[1]


def test_a_server_of_another_version_is_an_error_unless_allowed(server: double.FakeServer) -> None:
    server.version = "0.9.15"
    with pytest.raises(SimulatorUnavailable) as error:
        build(carla_config(server.port))
    message = str(error.value)
    assert "\n" not in message and "0.9.15" in message and "0.9.16" in message
    assert "env.allow_version_mismatch=true" in message and not _SESSIONS
    env = build(carla_config(server.port, "env.allow_version_mismatch=true"))
    env.reset(seed=0)
    env.close()


def test_the_traffic_manager_is_seeded_with_the_runs_seed(server: double.FakeServer) -> None:
    env = make_carla(carla_config(server.port, "env.npc_vehicles=2", "env.tm_port=8100"), WEIGHTS, 40.0, "none",
                     10.0, 0.99, seed=7, make_client=double.Client)
    assert server.tm_seeds == {8100: 7} and server.tm_synchronous == {8100: True}
    env.close()


def job_config(job_num: int, *overrides: str) -> Config:
    """The config of sweep job number ``job_num``, composed by Hydra with the documented override, resolved as in
    that job (where ``${hydra:job.num}`` reads the job's Hydra config)."""
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["env=carla", "env.job_slot=${hydra:job.num}", *overrides],
                      return_hydra_config=True)
    with read_write(cfg.hydra.job):
        cfg.hydra.job.num = job_num
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def test_sweep_jobs_get_their_own_ports_from_the_job_number() -> None:
    cfg = job_config(3, "env.num_envs=2", "env.port=5000", "env.timeout=0.3", "env.settle_ticks=2",
                     "env.camera.width=64", "env.camera.height=48", "env.npc_vehicles=1")
    validate(cfg)
    assert cfg.env.job_slot == 3  # type: ignore[attr-defined]
    port = 5000 + (3 * 2 + 1) * 3  # job 3's second env: env.port + (job_slot * num_envs + i) * port_step
    fake = double.FakeServer(double.straight_map(2000.0), port=port)
    env = make_carla(cfg.env, WEIGHTS, 40.0, "none", 10.0, 0.99, seed=0, env_index=1,  # type: ignore[arg-type]
                     make_client=double.Client)
    assert env.unwrapped.session.address == f"127.0.0.1:{port}" and fake.tm_synchronous == {8000 + 3 * 2 + 1: True}
    env.close()


@pytest.mark.parametrize(("override", "key"), [("env.job_slot=-1", "env.job_slot"),
                                               ("env.job_slot=25000", "env.job_slot")])
def test_a_job_slot_out_of_the_port_range_fails_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(OmegaConf.to_object(compose_config(["env=carla", override])))  # type: ignore[arg-type]
    assert key in str(error.value) and "\n" not in str(error.value)
