"""A run that gates itself: at each horizon of ``gate.at`` (agent steps) the stability report's verdict on the run's
own metrics so far, with the report's own code (``td3exp.report``: no second implementation of any criterion).

At a horizon the run has flushed its logs; the gate reads them back from the run directory like ``python -m
td3exp.report`` would, writes that report into ``<run dir>/gate/step_<N>/``, prints one line, and returns what to log
(``gate/verdict``: 0 GO, 1 HOLD, 2 NO-GO, ``gate/score`` and each criterion's score where the gate defines one).
``stop_on`` says which verdicts end the run there (after its checkpoint): ``nogo``, ``hold`` (HOLD or NO-GO) or
``never``.  A GO run goes on: the validation run becomes the long run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from td3exp.report.gate import GateConfig, Verdict

VERDICT_CODES = {"GO": 0.0, "HOLD": 1.0, "NO-GO": 2.0}
STOP_ON = ("nogo", "hold", "never")


class MetricSink(Protocol):
    """What the gate logs to (td3exp.loggers.Logger)."""

    def record(self, step: int, metrics: dict[str, Any]) -> None: ...

    def flush(self) -> dict[str, float]: ...

    def summary(self, values: dict[str, Any]) -> None: ...


class GateStopped(Exception):
    """The run stopped on its own verdict at a horizon (exit code 7); its checkpoint holds the step."""

    def __init__(self, step: int, verdict: str, reason: str, checkpoint: str | None) -> None:
        self.step, self.verdict, self.reason, self.checkpoint = step, verdict, reason, checkpoint
        resume = ("; to go on anyway, run the same command with gate.stop_on=never" if checkpoint else "")
        super().__init__(f"stopped at step {step} on its gate verdict {verdict}: {reason}{resume}")

    def __reduce__(self) -> tuple:  # pickled across a launcher's worker processes
        return GateStopped, (self.step, self.verdict, self.reason, self.checkpoint)


def summary_line(step: int, verdict: Verdict) -> str:
    """``gate at step 5000: NO-GO - actor_cnn_grad_mean 1.8e6 > 5e4``: the failing criteria, NO-GO ones first."""
    failing = sorted(verdict.failing, key=lambda c: not c.nogo)
    why = "; ".join(f"{c.name} {c.value} ({c.status}; needs {c.threshold})" for c in failing[:3])
    return f"gate at step {step}: {verdict.verdict}" + (f" - {why}" if why else "")


class SelfGate:
    """Judges the run in ``run_dir`` at each step of ``horizons`` with ``gate``; ``stop_on``: see the module doc."""

    def __init__(self, run_dir: Path, gate: GateConfig, horizons: Sequence[int], stop_on: str,
                 note: Callable[[str], None] = print) -> None:
        if stop_on not in STOP_ON:
            raise ValueError(f"gate.stop_on must be one of {', '.join(STOP_ON)} (got {stop_on!r})")
        self.run_dir, self.gate, self.horizons = run_dir, gate, sorted(set(horizons))
        self.stop_on, self.note = stop_on, note

    def due(self, before: int, after: int) -> int | None:
        """The last horizon this vector step (agent steps ``before`` -> ``after``) reached, or None."""
        reached = [h for h in self.horizons if before < h <= after]
        return reached[-1] if reached else None

    def judge(self, step: int) -> tuple[Verdict, dict[str, float]]:
        """The verdict on the logs flushed so far, the report for this horizon, and the metrics to log."""
        from td3exp.report.__main__ import write_report  # matplotlib and rliable: only when a horizon is reached
        from td3exp.report.runs import load_run

        run = load_run(self.run_dir, active_window_s=0.0)
        run.notes = [f"judged at step {step} of {run.total_steps} (gate.at): the run goes on unless it stops here"]
        out = self.run_dir / "gate" / f"step_{step}"
        (verdict,), _ = write_report([run], self.gate, out, f"gate.at={step} (the run's own metrics so far)",
                                     reps=200)
        self.note(summary_line(step, verdict))
        return verdict, self.metrics(verdict)

    def check(self, step: int, logger: MetricSink, final: bool) -> dict[str, Any] | None:
        """Judge at this horizon and log it; the stop (step, verdict, reason) when ``stop_on`` ends the run here (a
        finished run has nothing left to stop)."""
        verdict, metrics = self.judge(step)
        logger.record(step, metrics)
        logger.flush()
        logger.summary({f"{key}_at_{step}": value for key, value in metrics.items()})
        if final or not self.stops(verdict):
            return None
        return {"step": step, "verdict": verdict.verdict, "reason": self.reason(verdict)}

    def stop_error(self, stop: dict[str, Any], checkpoint: str | None) -> GateStopped | None:
        """The error that ends a run stopped on ``stop`` (also a resumed one), or None when ``stop_on`` no longer
        stops on that verdict (the user lets it go on)."""
        if not self.stops_on(stop["verdict"]):
            return None
        return GateStopped(stop["step"], stop["verdict"], stop["reason"], checkpoint or "its checkpoint")

    @staticmethod
    def metrics(verdict: Verdict) -> dict[str, float]:
        metrics = {"gate/verdict": VERDICT_CODES[verdict.verdict]}
        score = getattr(verdict, "score", None)  # the gate's continuous score, where the gate defines one
        if score is not None:
            metrics["gate/score"] = float(score)
        for criterion in verdict.criteria:
            criterion_score = getattr(criterion, "score", None)
            if criterion_score is not None:
                metrics[f"gate/{criterion.name}"] = float(criterion_score)
        return metrics

    def stops(self, verdict: Verdict) -> bool:
        return self.stops_on(verdict.verdict)

    def stops_on(self, verdict: str) -> bool:
        """Whether ``stop_on`` ends a run on this verdict ("GO" | "HOLD" | "NO-GO")."""
        if self.stop_on == "nogo":
            return verdict == "NO-GO"
        return self.stop_on == "hold" and verdict != "GO"

    @staticmethod
    def reason(verdict: Verdict) -> str:
        failing = sorted(verdict.failing, key=lambda c: not c.nogo)
        return ", ".join(f"{c.name} {c.value}" for c in failing) or "no criterion failed"
