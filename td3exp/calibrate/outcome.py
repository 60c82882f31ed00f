"""The pre-registered outcome: what counts as an eventual failure, read from a YAML file written before the runs are
judged (conf/outcome/*.yaml, or a path).  A run fails when any enabled condition holds over the whole run; a run
whose data cannot decide an enabled condition has no outcome and is left out (one line each)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from td3exp.report.criteria import actor_loss_growth, nonfinite_items
from td3exp.report.runs import ReportInputError, Run, load_named_yaml
from td3exp.report.windows import peak, windows

OUTCOMES_DIR = Path(__file__).resolve().parents[2] / "conf" / "outcome"


@dataclass
class OutcomeConfig:
    """Failure conditions; null (or false) disables one.  docs/gate-and-report.md, "Calibrating the gate"."""

    name: str = "failure"  # shown in the report
    description: str = ""  # the hypothesis in words, shown in the report
    nonfinite: bool = True  # failure: a NaN/Inf in any metric, or updates skipped as non-finite (alerts/nonfinite > 0)
    q_abs_max: Optional[float] = None  # failure: max |q/q1|, |q/q2| over the run at or above this (divergence)
    actor_loss_max_growth: Optional[float] = None  # failure: actor-loss growth (the gate's definition) above this
    final_return_min: Optional[float] = None  # failure: the last eval/return point (a mean over eval episodes) below


@dataclass
class Outcome:
    failed: bool | None  # None: an enabled condition could not be decided from the run's data
    reasons: list[str] = field(default_factory=list)  # the conditions that held (or why undecided)


@dataclass
class LoadedOutcome:
    config: OutcomeConfig
    path: Path
    text: str  # the file as written, quoted in the report with its sha256
    sha256: str


def load_outcome(name_or_path: str) -> LoadedOutcome:
    config, path, text = load_named_yaml("outcome", name_or_path, OUTCOMES_DIR, OutcomeConfig,
                                         "conf/outcome/failure.yaml")
    if not (config.nonfinite or any(v is not None for v in (config.q_abs_max, config.actor_loss_max_growth,
                                                             config.final_return_min))):
        raise ReportInputError(f"outcome {path}: every condition is disabled; enable at least one")
    return LoadedOutcome(config, path, text, hashlib.sha256(text.encode()).hexdigest())


def outcome(run: Run, c: OutcomeConfig) -> Outcome:
    failed = False
    reasons: list[str] = []
    undecided: list[str] = []
    if c.nonfinite:
        bad = nonfinite_items(run)
        if bad:
            failed, reasons = True, reasons + [f"non-finite: {', '.join(bad)}"]
    if c.q_abs_max is not None:
        q = [w for w in (windows(run, "q/q1"), windows(run, "q/q2")) if w is not None]
        if not q:
            undecided.append("no q/q1 data")
        elif not max(peak(w) for w in q) < c.q_abs_max:
            failed, reasons = True, reasons + [f"max |Q| {max(peak(w) for w in q):.4g} >= {c.q_abs_max:g}"]
    if c.actor_loss_max_growth is not None:
        w = windows(run, "loss/actor")
        if w is None or w.updates < 2:
            undecided.append("no loss/actor data")
        elif not (growth := actor_loss_growth(w)) <= c.actor_loss_max_growth:
            failed, reasons = True, reasons + [f"actor-loss growth x{growth:.3g} > x{c.actor_loss_max_growth:g}"]
    if c.final_return_min is not None:
        returns = run.values("eval/return")
        if returns is None:
            undecided.append("no eval/return data")
        elif not returns[-1] >= c.final_return_min:
            failed, reasons = True, reasons + [f"final eval/return {returns[-1]:.4g} < {c.final_return_min:g}"]
    if failed:
        return Outcome(True, reasons)
    if undecided:  # no condition held, and one could not be checked: the run's outcome is unknown
        return Outcome(None, undecided)
    return Outcome(False)
