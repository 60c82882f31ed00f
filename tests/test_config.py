"""Config composition through Hydra's compose API and one-line validation errors through the real command."""

from __future__ import annotations

import itertools

import pytest
from omegaconf import OmegaConf

from td3exp.config import Config, ConfigError
from td3exp.validation import validate

from .conftest import REPO, compose_config, run_td3exp

# the env group is orthogonal to the training groups: each env option is composed on its own below
GROUPS = ["agent", "encoder", "optim", "clip", "reward", "logger", "monitor"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


def test_every_group_combination_composes_and_validates() -> None:
    """Every combination on the pixel default env validates, except the two state-vector options, which must each
    be refused in one line naming what to pick instead."""
    combos = list(itertools.product(*(options(g) for g in GROUPS)))
    assert len(combos) >= 96
    refused = 0
    for combo in combos:
        overrides = [f"{g}={o}" for g, o in zip(GROUPS, combo, strict=True)]
        cfg: Config = OmegaConf.to_object(compose_config(overrides))  # type: ignore[assignment]
        if "encoder=mlp" in overrides or "reward=native" in overrides:
            with pytest.raises(ConfigError, match="encoder=separate|reward=balanced") as error:
                validate(cfg)
            assert "\n" not in str(error.value)
            refused += 1
        else:
            validate(cfg)
    assert 0 < refused < len(combos)


@pytest.mark.parametrize("env", options("env"))
def test_every_env_composes_and_validates(env: str) -> None:
    cfg: Config = OmegaConf.to_object(compose_config([f"env={env}"]))  # type: ignore[assignment]
    validate(cfg)
    assert cfg.env.name == env


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "experiments").glob("*.yaml")))
def test_experiment_presets_compose_and_validate(preset: str) -> None:
    cfg: Config = OmegaConf.to_object(compose_config([f"experiments={preset}"]))  # type: ignore[assignment]
    validate(cfg)


def test_presets_hold_the_validation_run_settings() -> None:
    base = compose_config(["experiments=seed_5k_baseline"])
    assert base.clip.max_norm is None and base.optim.actor_cnn_lr == 1e-5 and base.optim.critic_cnn_lr == 1e-4
    assert base.reward.weights.progress == 0.95 and base.reward.normalize == "none"
    assert base.agent.start_steps == 2500 and base.total_steps == 5000
    fixed = compose_config(["experiments=seed_5k_fixed"])
    assert fixed.clip.max_norm == 1.0 and fixed.optim.actor_cnn_lr == 1e-4
    assert fixed.reward.weights.progress == 0.6 and fixed.reward.normalize == "clip"


def test_defaults_match_the_documented_groups() -> None:
    cfg = compose_config()
    assert cfg.agent.batch_size == 256 and cfg.agent.buffer_size == 1_000_000 and cfg.agent.tau == 0.005
    assert cfg.agent.policy_delay == 2 and cfg.agent.target_noise == 0.2 and cfg.agent.noise_clip == 0.5
    assert cfg.encoder.layout == "separate" and cfg.logger.wandb.mode == "offline"
    sp = compose_config(["agent=spinningup", "optim=spinningup"])
    assert sp.agent.start_steps == 10_000 and sp.optim.actor_lr == 1e-3 and sp.agent.batch_size == 100
    for norm, value in (("none", None), ("norm1", 1.0), ("norm10", 10.0), ("norm40", 40.0)):
        assert compose_config([f"clip={norm}"]).clip.max_norm == value


def test_every_key_in_every_option_is_commented() -> None:
    for path in (REPO / "conf").rglob("*.yaml"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if ":" in stripped and not stripped.startswith(("#", "-")) and not stripped.endswith(":"):
                assert "#" in line, f"{path.relative_to(REPO)}: uncommented key: {line}"


BAD_VALUES = {
    "negative learning rate": (["optim.actor_cnn_lr=-1e-4"], "optim.actor_cnn_lr"),
    "zero max norm": (["clip.max_norm=0"], "clip.max_norm"),
    "negative reward weight": (["reward.weights.smoothness=-0.2"], "reward.weights.smoothness"),
    "weights sum to zero": (
        ["reward.weights.progress=0", "reward.weights.smoothness=0", "reward.weights.lane_centering=0",
         "reward.weights.efficiency=0"], "reward.weights"),
    "total below start": (["total_steps=100", "agent.start_steps=200"], "total_steps"),
    "batch above buffer": (["agent.batch_size=512", "agent.buffer_size=256"], "agent.batch_size"),
    "two clip modes": (["clip=auto", "clip.max_norm=10"], "clip.auto_percentile"),
    "unknown actor head": (["agent.actor_head=linear"], "agent.actor_head"),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_bad_value_exits_2_with_one_line(name: str, tmp_path) -> None:
    overrides, key = BAD_VALUES[name]
    result = run_td3exp([*overrides, f"hydra.run.dir={tmp_path}"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "tb").exists()  # stopped before any work


def test_unknown_group_option_lists_the_available_ones(tmp_path) -> None:
    result = run_td3exp(["clip=norm5", f"hydra.run.dir={tmp_path}"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "clip=norm5: no such option; clip is one of" in result.stderr
    for option in ("none", "norm1", "norm10", "norm40"):
        assert option in result.stderr
