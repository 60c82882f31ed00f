"""The names runs appear under (sweep job directory, TensorBoard run, W&B run and group): their condition, i.e. the
job's overrides without the ones that only say where or how a run is recorded, e.g. ``clip=none seed=1``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from omegaconf import OmegaConf

# override keys that change where or how a run is recorded or continued, not the experimental condition
# (debug.* is a condition: it changes what the run does)
NOT_A_CONDITION = ("seed", "logger.", "device", "save_model", "deterministic", "checkpoint.", "resume", "trial.",
                   "hydra.", "hydra/", "env.job_slot", "env.host", "env.port",  # where a job runs, not what
                   "gate")  # when a run judges itself, not how it trains
MAX_DIR_NAME = 120  # well under the 255 bytes a file name may have
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@%-]")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value(overrides: Iterable[str], key: str) -> str | None:
    return next((o.split("=", 1)[1] for o in overrides if override_key(o) == key and "=" in o), None)


def condition_name(overrides: Iterable[str]) -> str:
    """What distinguishes this run's condition, e.g. ``clip=none optim=seed`` ("defaults" when nothing does)."""
    kept = [o for o in overrides if not override_key(o).startswith(NOT_A_CONDITION)]
    return " ".join(kept) or "defaults"


def run_name(overrides: Iterable[str]) -> str:
    """The condition and the seed, e.g. ``clip=none seed=1``."""
    overrides = list(overrides)
    seed = _value(overrides, "seed")
    condition = condition_name(overrides)
    return condition if seed is None else f"{condition} seed={seed}".removeprefix("defaults ")


def job_dir(overrides: Iterable[str]) -> str:
    """A file-system-safe directory name for a sweep job: its condition, seed and, for an Optuna job, trial number
    (two trials may sample the same values), e.g. ``clip=none,seed=1``.  A long condition is cut and ends in a hash
    of the whole, so names stay distinct."""
    overrides = list(overrides)
    condition = _UNSAFE.sub("_", condition_name(overrides).replace(" ", ","))
    if len(condition) > MAX_DIR_NAME:
        digest = hashlib.sha1(condition.encode()).hexdigest()[:8]
        condition = f"{condition[:MAX_DIR_NAME - 9]}~{digest}"
    tail = [f"{key}={_UNSAFE.sub('_', value)}" for key, value in
            (("seed", _value(overrides, "seed")), ("trial", _value(overrides, "trial.number"))) if value is not None]
    return ",".join([condition, *tail]).removeprefix("defaults,")


def register_resolvers() -> None:
    """``${td3exp.job_dir:${hydra.overrides.task}}`` names the sweep subdirectory of each job (conf/config.yaml)."""
    if not OmegaConf.has_resolver("td3exp.job_dir"):
        OmegaConf.register_new_resolver("td3exp.job_dir", lambda overrides: job_dir(list(overrides)))
