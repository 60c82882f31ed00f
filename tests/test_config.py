"""Config composition through Hydra's compose API and one-line validation errors through the real command."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from omegaconf import OmegaConf

from td3exp.config import Config, ConfigError
from td3exp.validation import validate

from .conftest import REPO, compose_config, run_td3exp

# the env group is orthogonal to the training groups: each env option is composed on its own below
GROUPS = ["agent", "encoder", "optim", "clip", "reward", "logger", "monitor"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


def all_pairs(choices: list[list[str]]) -> list[tuple[str, ...]]:
    """Combinations that put every option of every group beside every option of every other group at least once,
    picked greedily from the full product: a clash between two groups' options shows in one of them, at a tenth of
    the full product's cost."""
    def pairs(combo: tuple[str, ...]) -> set[tuple[int, str, int, str]]:
        return {(i, combo[i], j, combo[j]) for i, j in itertools.combinations(range(len(combo)), 2)}

    product = list(itertools.product(*choices))
    uncovered = set().union(*(pairs(c) for c in product))
    chosen = []
    while uncovered:
        best = max(product, key=lambda c: len(pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= pairs(best)
    return chosen


def test_every_pair_of_group_options_composes_and_validates() -> None:
    """Every pair of options of two groups, on the pixel default env, validates, except the two state-vector options,
    which must each be refused in one line naming what to pick instead."""
    choices = [options(g) for g in GROUPS]
    combos = all_pairs(choices)
    assert len(combos) >= max(len(a) * len(b) for a, b in itertools.combinations(choices, 2))
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


def _flat(tree: Any, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_the_fixed_preset_differs_from_the_baseline_only_in_the_reports_four_fixes() -> None:
    """seed_5k_fixed is seed_5k_baseline plus clipping, matched learning rates, balanced weights and clipped
    rewards: any other difference (run length, warm-up, evaluation, network) would confound the comparison."""
    base, fixed = (_flat(OmegaConf.to_container(compose_config([f"experiments={p}"]), resolve=True))
                   for p in ("seed_5k_baseline", "seed_5k_fixed"))
    differing = {k for k in base.keys() | fixed.keys() if base.get(k) != fixed.get(k)}
    assert {k.split(".")[0] for k in differing} == {"clip", "optim", "reward"}, sorted(differing)
    assert {"clip.max_norm", "optim.actor_cnn_lr", "reward.normalize"} <= differing
    assert any(k.startswith("reward.weights.") for k in differing)


def test_each_clip_option_clips_to_the_norm_its_name_says() -> None:
    for name in options("clip"):
        clip = compose_config([f"clip={name}"]).clip
        if name.startswith("norm"):
            assert clip.max_norm == float(name.removeprefix("norm")) and not clip.get("auto_percentile"), name
        elif name == "none":
            assert clip.max_norm is None and not clip.get("auto_percentile")
        else:
            assert name == "auto" and clip.auto_percentile, f"clip={name}: neither a norm nor auto"


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


def test_the_schema_declares_types_and_leaves_every_value_to_the_yaml() -> None:
    """One value per key, in conf/: a default in a schema dataclass would be a second one, silently used when an
    option leaves its key out.  (CarlaEnvConfig's own keys may keep theirs: conf/env/carla.yaml sets them all.  The
    gate's criteria are the report's schema, td3exp/report/gate.py, whose defaults a gate file for ``python -m
    td3exp.report --gate FILE`` may lean on: only the keys SelfGateConfig adds for training are checked here.)"""
    import dataclasses
    import inspect

    from omegaconf import MISSING

    from hydra_plugins.td3exp_optuna_sweeper import config as sweeper_schema
    from td3exp import config as schema

    carla_own = {f.name for f in dataclasses.fields(schema.CarlaEnvConfig)} - {
        f.name for f in dataclasses.fields(schema.EnvConfig)}
    valued = []
    for module in (schema, sweeper_schema):
        for name, kind in inspect.getmembers(module, dataclasses.is_dataclass):
            if kind.__module__ != module.__name__ or name.startswith("Carla"):
                continue
            for f in dataclasses.fields(kind):
                if f.name not in kind.__annotations__:  # inherited from another module's schema
                    continue
                if f.name != "_target_" and (f.default is not MISSING or f.default_factory is not dataclasses.MISSING):
                    valued.append(f"{name}.{f.name}")
    assert not valued, f"defaults in the schema (move the values to conf/): {valued}"
    assert carla_own  # the exception is real: CarlaEnvConfig has keys of its own


@pytest.mark.parametrize("sweeper", sorted(p.stem for p in (REPO / "conf" / "hydra" / "sweeper").glob("*.yaml")))
def test_every_sweeper_option_sets_every_key(sweeper: str) -> None:
    from hydra import compose, initialize_config_dir

    import hydra_plugins.td3exp_optuna_sweeper.config  # noqa: F401 (registers the sweeper's schema)
    from td3exp.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/sweeper={sweeper}"], return_hydra_config=True)
    values = OmegaConf.to_container(cfg.hydra.sweeper, throw_on_missing=True)
    assert isinstance(values, dict) and values["n_trials"] > 0
