"""Find the runs under the given paths and read what they wrote: TensorBoard scalars and the saved Hydra config."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EVENTS_GLOB = "events.out.tfevents.*"


class ReportInputError(ValueError):
    """Input the report cannot use; printed as one line."""


@dataclass
class Series:
    steps: np.ndarray
    values: np.ndarray


@dataclass
class Run:
    path: Path
    label: str
    config: dict[str, Any]
    scalars: dict[str, Series]
    last_step: int
    total_steps: int | None
    notes: list[str] = field(default_factory=list)

    def values(self, tag: str) -> np.ndarray | None:
        series = self.scalars.get(tag)
        return None if series is None or len(series.values) == 0 else series.values


def find_run_dirs(path: Path) -> list[Path]:
    """Run directories (holding tb/ event files) at or below ``path``."""
    if not path.exists():
        raise ReportInputError(f"{path}: no such directory")
    if not path.is_dir():
        raise ReportInputError(f"{path}: not a directory; pass a run or multirun directory")
    if not any(path.iterdir()):
        raise ReportInputError(f"{path} is empty: pass a run directory (outputs/DATE/TIME) or a multirun directory")
    runs = sorted({events.parent.parent for events in path.rglob(f"tb/{EVENTS_GLOB}")})
    if not runs:
        raise ReportInputError(f"no TensorBoard event files under {path}: is it a td3exp run directory?")
    return runs


def load_run(run_dir: Path, active_window_s: float = 120.0) -> Run:
    """Read one run; raises ReportInputError when its files are unusable or it is still being written."""
    config, overrides = _read_config(run_dir)
    scalars = _read_scalars(run_dir)
    if not scalars:
        raise ReportInputError(f"{run_dir}: event files hold no scalars (corrupt, or the run wrote nothing yet)")
    last_step = max(int(s.steps[-1]) for s in scalars.values() if len(s.steps))
    total = config.get("total_steps")
    run = Run(run_dir, condition_label(overrides) or run_dir.name, config, scalars, last_step, total)
    if total is not None and last_step < total:
        newest = max(p.stat().st_mtime for p in (run_dir / "tb").glob(EVENTS_GLOB))
        if time.time() - newest < active_window_s:
            raise ReportInputError(
                f"{run_dir}: still being written (step {last_step} of {total}); rerun the report when it finishes"
            )
        run.notes.append(f"incomplete: stopped at step {last_step} of {total}")
    return run


# overrides that change where or how a run is recorded, not the experimental condition
NOT_A_CONDITION = ("seed=", "logger.", "device=", "save_model=", "hydra.", "hydra/", "deterministic=", "trial.")


def condition_label(overrides: list[str]) -> str:
    return " ".join(o for o in overrides if not o.startswith(NOT_A_CONDITION))


def _read_config(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    hydra_dir = run_dir / ".hydra"
    if not (hydra_dir / "config.yaml").is_file():
        return {}, []
    try:
        config = yaml.safe_load((hydra_dir / "config.yaml").read_text()) or {}
        overrides_file = hydra_dir / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) or [] if overrides_file.is_file() else []
    except yaml.YAMLError as error:
        raise ReportInputError(f"{hydra_dir}: unreadable saved config ({error.__class__.__name__})") from error
    return config, [str(o) for o in overrides]


def _read_scalars(run_dir: Path) -> dict[str, Series]:
    # EventAccumulator reads every event file of the directory in order and stops quietly at a truncated record
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    try:
        accumulator.Reload()
    except Exception as error:  # the reader raises several types for corrupt files; all mean the same here
        raise ReportInputError(f"{run_dir}: corrupt event file ({error.__class__.__name__}: {error})") from error
    scalars = {}
    for tag in accumulator.Tags().get("scalars", []):
        events = accumulator.Scalars(tag)
        scalars[tag] = Series(np.array([e.step for e in events]), np.array([e.value for e in events], dtype=float))
    return scalars


def seed_free_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config that defines a condition: without the seed and the run's logging identity."""
    ignored = ("seed", "logger", "device", "save_model", "deterministic", "trial")
    return {k: v for k, v in config.items() if k not in ignored}
