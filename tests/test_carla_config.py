"""``env=carla`` through real Hydra composition: its keys exist only under env=carla, misspelt keys fail at
composition, and bad values fail validation with one line naming the key."""

from __future__ import annotations

import carla
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from td3exp.config import CarlaEnvConfig, Config, ConfigError, EnvConfig
from td3exp.validation import WEATHERS, validate

from .conftest import compose_config


def config(*overrides: str) -> Config:
    return OmegaConf.to_object(compose_config(list(overrides)))  # type: ignore[return-value]


def test_carla_keys_exist_only_under_env_carla() -> None:
    env = config("env=carla").env
    assert isinstance(env, CarlaEnvConfig) and env.name == "carla"
    assert (env.town, env.fixed_delta_seconds, env.vehicle, env.npc_vehicles) == ("Town04", 0.05,
                                                                                  "vehicle.tesla.model3", 0)
    car_racing = config().env
    assert type(car_racing) is EnvConfig and not hasattr(car_racing, "port")
    with pytest.raises(ConfigCompositionException):
        compose_config(["env.port=2000"])  # a CARLA key on a CarRacing run


@pytest.mark.parametrize("override", ["env.prot=2000", "env.camera.fvo=90", "env.server.cmd=x"])
def test_a_misspelt_carla_key_fails_at_composition(override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_config(["env=carla", override])


def test_the_headline_command_composes_and_validates() -> None:
    cfg = config("env=carla", "env.host=10.0.0.7", "env.port=2000", "clip=norm10", "reward=balanced")
    validate(cfg)
    assert cfg.env.host == "10.0.0.7" and cfg.clip.max_norm == 10.0  # type: ignore[attr-defined]


BAD = {
    "env.port=0": "env.port", "env.port=70000": "env.port", "env.tm_port=2001": "env.tm_port",
    "env.port_step=2": "env.port_step", "env.town=Town10HD": "env.town", "env.timeout=0": "env.timeout",
    "env.fixed_delta_seconds=0.2": "env.fixed_delta_seconds", "env.weather=Sunny": "env.weather",
    "env.terminal_penalty=5": "env.terminal_penalty", "env.spawn_point=-1": "env.spawn_point",
    "env.max_lateral_offset=0": "env.max_lateral_offset", "env.vehicle=walker.pedestrian.0001": "env.vehicle",
    "env.camera.fov=180": "env.camera.fov", "env.server.command=CarlaUE4.sh": "env.server.command",
    "env.max_reconnects=-1": "env.max_reconnects", "env.name=car_racing": "env.name",
}


@pytest.mark.parametrize("override", list(BAD))
def test_bad_carla_values_fail_with_one_line_naming_the_key(override: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(config("env=carla", override))
    assert BAD[override] in str(error.value) and "\n" not in str(error.value)


def test_env_name_carla_needs_the_carla_group() -> None:
    with pytest.raises(ConfigError, match="env=carla"):
        validate(config("env.name=carla"))


def test_weather_presets_are_the_compiled_modules() -> None:
    presets = {name for name in dir(carla.WeatherParameters)
               if name[0].isupper() and isinstance(getattr(carla.WeatherParameters, name), carla.WeatherParameters)}
    assert set(WEATHERS) == presets


def test_the_carla_validation_preset_is_the_original_run_on_carla() -> None:
    on_carla = OmegaConf.to_container(compose_config(["experiments=carla_seed_5k"]))
    original = OmegaConf.to_container(compose_config(["experiments=seed_5k_baseline"]))
    assert on_carla["env"]["name"] == "carla"  # type: ignore[index]
    assert {k: v for k, v in on_carla.items() if k != "env"} == {  # type: ignore[union-attr]
        k: v for k, v in original.items() if k != "env"}  # type: ignore[union-attr]
    recommended = config("experiments=carla_lane_keeping")
    validate(recommended)
    assert recommended.clip.max_norm == 10.0 and recommended.reward.normalize == "clip"
    assert recommended.optim.actor_cnn_lr == recommended.optim.critic_cnn_lr
