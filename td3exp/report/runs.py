"""Find the runs under the given paths and read what they wrote: TensorBoard scalars, the saved Hydra config and
``provenance.json``.  Result tables (``dataset.py``) are read by ``load_inputs`` as well, as runs like any other."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from td3exp.dashboard.names import NOT_A_CONDITION, condition_name  # the names TensorBoard and W&B show
from td3exp.report.events import EVENTS_GLOB, CorruptEventFile, read_scalars

TABLE_SUFFIX = ".parquet"
UNKNOWN = "unknown"


class ReportInputError(ValueError):
    """Input the report cannot use; printed as one line."""


def load_named_yaml(kind: str, name_or_path: str, directory: Path, schema: type,
                    keys_from: str) -> tuple[Any, Path, str]:
    """A config file named as ``directory/NAME.yaml`` or given as a path, merged onto its dataclass ``schema``: the
    object, its path and its text.  Missing or malformed files are a ReportInputError naming ``keys_from``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = Path(name_or_path)
    if not path.suffix:
        path = directory / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise ReportInputError(f"{kind} {name_or_path!r} not found; available: {available}, or a path to a YAML file")
    text = path.read_text()
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(text))
        return OmegaConf.to_object(merged), path, text
    except (OmegaConfBaseException, ValueError) as error:
        reason = str(error).splitlines()[0]
        raise ReportInputError(f"{kind} {path}: {reason}; see {keys_from} for the keys and types") from error


@dataclass
class Series:
    steps: np.ndarray
    values: np.ndarray


@dataclass
class Run:
    source: str  # where it was read from: a run directory, or a result table
    label: str  # its condition: the overrides that define it, without the seed
    config: dict[str, Any]
    scalars: dict[str, Series]
    last_step: int
    total_steps: int | None
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # provenance.json, or what a result table recorded

    def values(self, tag: str) -> np.ndarray | None:
        series = self.scalars.get(tag)
        return None if series is None or len(series.values) == 0 else series.values

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def name(self) -> str:
        """A name that says the run's condition, never a job number: ``clip=none seed=1``."""
        return f"{self.label or 'defaults'} seed={self.seed if self.seed is not None else '?'}"

    @property
    def device(self) -> str:
        device, name = self.provenance.get("device"), self.provenance.get("device_name")
        if not device:
            return UNKNOWN
        return f"{device} ({name})" if name else str(device)

    @property
    def commit(self) -> str:
        commit = self.provenance.get("commit")
        if not commit:
            return UNKNOWN
        return f"{str(commit)[:10]}{'+dirty' if self.provenance.get('dirty') else ''}"


def find_inputs(path: Path) -> list[Path]:
    """Run directories (holding tb/ event files) and result tables (``*.parquet``) at or below ``path``."""
    if not path.exists():
        raise ReportInputError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix == TABLE_SUFFIX:
            return [path]
        raise ReportInputError(f"{path}: not a run directory or a {TABLE_SUFFIX} result table")
    if not any(path.iterdir()):
        raise ReportInputError(f"{path} is empty: pass a run directory (outputs/DATE/TIME) or a multirun directory")
    runs = sorted({events.parent.parent for events in path.rglob(f"tb/{EVENTS_GLOB}")})
    tables = sorted(path.rglob(f"*{TABLE_SUFFIX}"))
    if not runs and not tables:
        raise ReportInputError(f"no TensorBoard event files or result tables under {path}: is it a td3exp run?")
    return runs + tables


def find_run_dirs(path: Path) -> list[Path]:
    """Run directories at or below ``path`` (result tables left out)."""
    return [p for p in find_inputs(path) if p.is_dir()]


def load_run(run_dir: Path, active_window_s: float = 120.0) -> Run:
    """Read one run directory; raises ReportInputError when its files are unusable or it is still being written."""
    config, overrides = _read_config(run_dir)
    scalars = _read_scalars(run_dir)
    if not scalars:
        raise ReportInputError(f"{run_dir}: event files hold no scalars (corrupt, or the run wrote nothing yet)")
    last_step = max(int(s.steps[-1]) for s in scalars.values() if len(s.steps))
    total = config.get("total_steps")
    run = Run(str(run_dir), condition_name(overrides), config, scalars, last_step, total,
              provenance=_read_provenance(run_dir))
    if total is not None and last_step < total:
        newest = max(p.stat().st_mtime for p in (run_dir / "tb").glob(EVENTS_GLOB))
        if time.time() - newest < active_window_s:
            raise ReportInputError(
                f"{run_dir}: still being written (step {last_step} of {total}); rerun the report when it finishes"
            )
        run.notes.append(f"incomplete: stopped at step {last_step} of {total}")
    return run


# overrides that change where or how a run is recorded, not the experimental condition
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


def _read_provenance(run_dir: Path) -> dict[str, Any]:
    """``provenance.json`` (commit, dirty, versions, device, device_name, threads); older runs have none."""
    path = run_dir / "provenance.json"
    if not path.is_file():
        return {}
    try:
        provenance = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ReportInputError(f"{path}: unreadable provenance ({error.msg})") from error
    return provenance if isinstance(provenance, dict) else {}


def _read_scalars(run_dir: Path) -> dict[str, Series]:
    try:
        scalars = read_scalars(run_dir / "tb")
    except CorruptEventFile as error:
        raise ReportInputError(f"{run_dir}: corrupt event file ({error})") from error
    return {tag: Series(steps, values) for tag, (steps, values) in scalars.items()}


def seed_free_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config that defines a condition: without the seed and the run's logging identity."""
    return {k: v for k, v in config.items() if k != "seed" and not f"{k}.".startswith(NOT_A_CONDITION)}


def until(run: Run, step: int) -> Run:
    """The run as it stood at ``step``: every series cut to steps <= step (what a gate evaluated then could see;
    the calibration's horizons and the in-training self-gate both judge such a cut).  Config, label, provenance and
    total steps are the run's own; ``last_step`` is the last step logged at or before ``step``."""
    scalars = {}
    for tag, series in run.scalars.items():
        keep = series.steps <= step
        if np.any(keep):
            scalars[tag] = Series(series.steps[keep], series.values[keep])
    last = max((int(s.steps.max()) for s in scalars.values()), default=0)
    return Run(run.source, run.label, run.config, scalars, last, run.total_steps,
               [*run.notes, f"cut at step {step:,}"], run.provenance)
