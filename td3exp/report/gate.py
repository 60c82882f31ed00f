"""GO / NO-GO gate: criteria evaluated on one run's logged metrics.

Each criterion gives PASS, FAIL, UNKNOWN (its data is missing: never a silent pass) or SKIPPED (it does not apply,
e.g. a run shorter than the step it starts at).  A FAIL is either blocking (the run is not cleared: HOLD) or a NO-GO
condition.  Verdict: NO-GO if any NO-GO failure; GO only if every criterion passed or was skipped; HOLD otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from omegaconf import OmegaConf

from td3exp.report.runs import Run

GATES_DIR = Path(__file__).resolve().parents[2] / "conf" / "gate"


@dataclass
class GateConfig:
    """Thresholds; null disables a criterion (conf/gate/*.yaml documents each)."""

    name: str = "custom"
    actor_cnn_grad_mean_go: Optional[float] = 1e4
    actor_cnn_grad_mean_nogo: Optional[float] = 5e4
    actor_loss_max_growth: Optional[float] = 100.0
    max_critical_alerts: Optional[int] = 0
    q_abs_max: Optional[float] = 200.0
    critic_loss_mean_max: Optional[float] = 200.0
    forbid_nonfinite: bool = True
    episode_length_after_step: Optional[int] = 10_000
    warmup_fraction: float = 0.25
    saturation_max: Optional[float] = None
    actor_cnn_update_ratio_band: Optional[list[float]] = None


@dataclass
class Criterion:
    name: str
    status: str  # PASS | FAIL | UNKNOWN | SKIPPED
    value: str
    threshold: str
    nogo: bool = False  # a FAIL that is a NO-GO condition
    explanation: str = ""


@dataclass
class Verdict:
    run: Run
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if any(c.status == "FAIL" and c.nogo for c in self.criteria):
            return "NO-GO"
        if all(c.status in ("PASS", "SKIPPED") for c in self.criteria):
            return "GO"
        return "HOLD"

    @property
    def failing(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status in ("FAIL", "UNKNOWN")]


EXPLAIN = {
    "actor_cnn_grad_mean": "The actor CNN's gradients are huge: usually the actor loss sees an unbounded action or "
    "features that grow without limit, not a missing clip (under Adam, clipping barely changes the step).",
    "actor_loss_growth": "The actor loss magnitude grows by orders of magnitude: the actor pushes Q(s, pi(s)) where "
    "the critic extrapolates without bound, typically an action outside the range the critic was trained on.",
    "critical_alerts": "Some module's pre-clip gradient norm crossed its critical threshold during the run.",
    "q_abs_max": "Q-values left the plausible range: overestimation, an unscaled reward, or a diverging critic.",
    "critic_loss_mean": "The critic's TD error is large on average: rewards too large for the learning rate, or "
    "targets moving too fast.",
    "nonfinite": "A metric became NaN/Inf: training diverged numerically.",
    "actor_saturation": "The actor's outputs sit in tanh's flat tails, so its gradients vanish and the policy is "
    "dead (one corner action); typical cause: unnormalized (raw 0..255) pixels or unbounded features; try "
    "encoder.pixel_scale=unit, encoder.trunk_norm=true or agent.preactivation_penalty.",
    "actor_cnn_update_ratio": "The actor CNN's parameter steps are outside a healthy size relative to its weights: "
    "too small means it is not learning (learning rate too low, or vanished gradients), too large means runaway "
    "weights (an unbounded objective).",
    "episode_length_improving": "Episodes after the threshold step are not longer than before it: the policy is not "
    "learning to stay on the road.",
}


def load_gate(name_or_path: str) -> GateConfig:
    path = Path(name_or_path)
    if not path.suffix:
        path = GATES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in GATES_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"gate {name_or_path!r} not found; available: {available}, or a path to a YAML file")
    merged = OmegaConf.merge(OmegaConf.structured(GateConfig), OmegaConf.load(path))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def _unknown(name: str, tag: str) -> Criterion:
    return Criterion(name, "UNKNOWN", f"no `{tag}` data", "-")


def evaluate(run: Run, gate: GateConfig) -> Verdict:
    result = Verdict(run)
    checks = [_actor_cnn_grad, _actor_loss_growth, _critical_alerts, _q_abs, _critic_loss, _nonfinite, _episode_length,
              _saturation, _update_ratio]
    for check in checks:
        criterion = check(run, gate)
        if criterion is not None:
            if criterion.status in ("FAIL", "UNKNOWN"):
                criterion.explanation = EXPLAIN.get(criterion.name, "")
            result.criteria.append(criterion)
    return result


def _actor_cnn_grad(run: Run, g: GateConfig) -> Criterion | None:
    if g.actor_cnn_grad_mean_go is None and g.actor_cnn_grad_mean_nogo is None:
        return None
    values = run.values("grad/actor_cnn")
    if values is None:
        return _unknown("actor_cnn_grad_mean", "grad/actor_cnn")
    mean = float(np.mean(values))
    threshold = f"< {g.actor_cnn_grad_mean_go:g} (NO-GO > {g.actor_cnn_grad_mean_nogo:g})"
    nogo = g.actor_cnn_grad_mean_nogo is not None and mean > g.actor_cnn_grad_mean_nogo
    failed = nogo or (g.actor_cnn_grad_mean_go is not None and not mean < g.actor_cnn_grad_mean_go)
    return Criterion("actor_cnn_grad_mean", "FAIL" if failed else "PASS", f"{mean:.4g}", threshold, nogo)


def actor_loss_growth(values: np.ndarray) -> float:
    """Median |loss| over the last 10% of updates / median |loss| over the first 10% (floored at 1)."""
    k = max(1, len(values) // 10)
    return float(np.median(np.abs(values[-k:])) / max(float(np.median(np.abs(values[:k]))), 1.0))


def _actor_loss_growth(run: Run, g: GateConfig) -> Criterion | None:
    if g.actor_loss_max_growth is None:
        return None
    values = run.values("loss/actor")
    if values is None or len(values) < 2:
        return _unknown("actor_loss_growth", "loss/actor")
    growth = actor_loss_growth(values)
    failed = not growth <= g.actor_loss_max_growth
    return Criterion("actor_loss_growth", "FAIL" if failed else "PASS", f"x{growth:.3g}",
                     f"<= x{g.actor_loss_max_growth:g}", nogo=failed)


def _critical_alerts(run: Run, g: GateConfig) -> Criterion | None:
    if g.max_critical_alerts is None:
        return None
    values = run.values("alerts/critical")
    if values is None:
        return _unknown("critical_alerts", "alerts/critical")
    count = int(values[-1])
    failed = count > g.max_critical_alerts
    return Criterion("critical_alerts", "FAIL" if failed else "PASS", str(count), f"<= {g.max_critical_alerts}",
                     nogo=failed)


def _q_abs(run: Run, g: GateConfig) -> Criterion | None:
    if g.q_abs_max is None:
        return None
    q = [v for v in (run.values("q/q1"), run.values("q/q2")) if v is not None]
    if not q:
        return _unknown("q_abs_max", "q/q1")
    peak = float(np.max(np.abs(np.concatenate(q))))
    failed = not peak < g.q_abs_max
    return Criterion("q_abs_max", "FAIL" if failed else "PASS", f"{peak:.4g}", f"< {g.q_abs_max:g}", nogo=failed)


def _critic_loss(run: Run, g: GateConfig) -> Criterion | None:
    if g.critic_loss_mean_max is None:
        return None
    values = run.values("loss/critic")
    if values is None:
        return _unknown("critic_loss_mean", "loss/critic")
    mean = float(np.mean(values))
    return Criterion("critic_loss_mean", "PASS" if mean < g.critic_loss_mean_max else "FAIL", f"{mean:.4g}",
                     f"< {g.critic_loss_mean_max:g}")


def _nonfinite(run: Run, g: GateConfig) -> Criterion | None:
    if not g.forbid_nonfinite:
        return None
    bad = sorted(tag for tag, s in run.scalars.items() if not np.all(np.isfinite(s.values)))
    skipped = run.values("alerts/nonfinite")
    if skipped is not None and skipped[-1] > 0:
        bad.append(f"{int(skipped[-1])} skipped updates")
    value = ", ".join(bad) if bad else "none"
    return Criterion("nonfinite", "FAIL" if bad else "PASS", value, "no NaN/Inf", nogo=bool(bad))


def _episode_length(run: Run, g: GateConfig) -> Criterion | None:
    after = g.episode_length_after_step
    if after is None:
        return None
    name, threshold = "episode_length_improving", f"mean after step {after:,} > mean before"
    if run.last_step <= after:
        return Criterion(name, "SKIPPED", f"run has {run.last_step:,} steps", threshold)
    series = run.scalars.get("episode/length")
    if series is None or len(series.values) == 0:
        return _unknown(name, "episode/length")
    before, later = series.values[series.steps <= after], series.values[series.steps > after]
    if len(before) == 0 or len(later) == 0:
        return Criterion(name, "UNKNOWN", f"{len(before)} episodes before, {len(later)} after", threshold)
    improving = float(np.mean(later)) > float(np.mean(before))
    value = f"{np.mean(before):.1f} -> {np.mean(later):.1f}"
    return Criterion(name, "PASS" if improving else "FAIL", value, threshold)


def _after_warmup(run: Run, tag: str, fraction: float) -> np.ndarray | None:
    values = run.values(tag)
    return None if values is None else values[int(len(values) * fraction):]


def _saturation(run: Run, g: GateConfig) -> Criterion | None:
    if g.saturation_max is None:
        return None
    values = _after_warmup(run, "actor/saturation", g.warmup_fraction)
    if values is None or len(values) == 0:
        return _unknown("actor_saturation", "actor/saturation")
    median = float(np.median(values))
    failed = median > g.saturation_max
    return Criterion("actor_saturation", "FAIL" if failed else "PASS", f"{median:.3g}",
                     f"median after warm-up <= {g.saturation_max:g}", nogo=failed)


def _update_ratio(run: Run, g: GateConfig) -> Criterion | None:
    if g.actor_cnn_update_ratio_band is None:
        return None
    low, high = g.actor_cnn_update_ratio_band
    values = _after_warmup(run, "update_ratio/actor_cnn", g.warmup_fraction)
    if values is None or len(values) == 0:
        return _unknown("actor_cnn_update_ratio", "update_ratio/actor_cnn")
    median = float(np.median(values))
    inside = low <= median <= high
    return Criterion("actor_cnn_update_ratio", "PASS" if inside else "FAIL", f"{median:.3g}",
                     f"median after warm-up in [{low:g}, {high:g}]")
