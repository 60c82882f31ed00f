"""Command-line mistakes as one fixable line and exit code 2, before Hydra creates a run directory.

A single run composes and validates its config here first, exactly as Hydra will; Hydra's own errors (an unknown
group option, a string where a number belongs, an unknown key) become one line that keeps their useful part (what is
allowed).  A multirun composes each job itself: there a bad job raises and the sweep records it as failed.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from td3exp.config import ConfigError, register_configs
from td3exp.dashboard.names import register_resolvers
from td3exp.validation import validate

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def register() -> None:
    """The schema and the resolvers conf/config.yaml uses; cheap (no torch), so mistakes are reported fast."""
    register_configs()
    register_resolvers()
    if not OmegaConf.has_resolver("td3exp.run_dir"):  # hydra.run.dir: the run to resume, else a new directory
        OmegaConf.register_new_resolver("td3exp.run_dir", lambda resume, new: resume if resume else new)


def unknown_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys the schema does not have (``+key=value`` slips past Hydra's checks and would be silently ignored)."""
    schema = OmegaConf.get_type(node)
    if schema is None or not dataclasses.is_dataclass(schema):
        return []  # a plain dict (e.g. monitor.thresholds): validate() checks its keys
    allowed = {f.name for f in dataclasses.fields(schema)}
    found = []
    for key, child in node.items_ex(resolve=False):  # children as they are: interpolations are not resolved here
        name = str(key)
        if name not in allowed:
            found.append(f"{prefix}{name}")
        elif isinstance(child, DictConfig):
            found += unknown_keys(child, f"{prefix}{name}.")
    return found


def check_known_keys(cfg: DictConfig) -> None:
    if unknown := unknown_keys(cfg):
        raise ConfigError(f"unknown key {', '.join(unknown)}: check the spelling (python -m td3exp --cfg job lists "
                          "every key)")


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""


def explain(error: Exception) -> str:
    """One line for a composition error, naming the override and what is allowed."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        options = ", ".join(error.options or [])
        return f"{group}={option}: no such option; {group} is one of {options}" if options else _first_line(error)
    if isinstance(error, OverrideParseException):
        return f"cannot parse override: {_first_line(error)}; write key=value, e.g. agent.batch_size=256"
    message = _first_line(error)
    if message.startswith("Could not override"):  # e.g. agent.unknwon=3
        key = message.split("'")[1]
        return f"{key}: no such key; check the spelling (python -m td3exp --cfg job lists every key)"
    if message.startswith("Error merging override") and error.__context__ is not None:
        override = message.removeprefix("Error merging override").strip()
        return f"{override}: {_first_line(error.__context__)}"
    if "Ambiguous value" in message:
        return f"{message} (sweeps need --multirun)"
    return message or type(error).__name__


def _null_parent(overrides: list[str]) -> str:
    """The key override that goes below a node this config sets to null (e.g. reward.weights under reward=native)."""
    groups_only = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0]]
    base = compose(config_name="config", overrides=groups_only)
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        parts = key.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if OmegaConf.select(base, parent, default=0) is None:
                return f"{key}: {parent} is null in this config (nothing to set below it); drop the override"
    return "an override sets a key below a null node; drop it"


def preflight(overrides: list[str]) -> None:
    """Compose and validate a single run's config; on a mistake print one line and exit 2."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            try:
                cfg = compose(config_name="config", overrides=overrides)
            except AssertionError:  # OmegaConf asserts when a key override goes below a null node
                raise ConfigError(_null_parent(overrides)) from None
        check_known_keys(cfg)
        validate(OmegaConf.to_object(cfg))  # type: ignore[arg-type]
    except ConfigError as error:
        message = str(error)
    except (HydraException, OmegaConfBaseException) as error:
        message = explain(error)
    else:
        return
    print(f"td3exp: config error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def is_single_run(argv: list[str]) -> bool:
    """Plain overrides only: no --multirun (jobs validate themselves) and no Hydra flag such as --cfg or --help."""
    return not any(arg.startswith("-") for arg in argv)

