"""The gate's criteria, each computed from a run's windows of updates (``windows.py``): exact means and maxima, medians
approximated by count-weighted medians of window means (exact for runs logged per update)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from td3exp.report.gate import AUTO, EXPLAIN, Criterion, GateConfig, Verdict
from td3exp.report.runs import Run
from td3exp.report.scale import critic_loss_limit, q_limit
from td3exp.report.windows import (
    Windows,
    after_warmup,
    first_and_last,
    is_max_twin,
    is_update_metric,
    median,
    peak,
    weighted_mean,
    weighted_median,
    windows,
)


def evaluate(run: Run, gate: GateConfig) -> Verdict:
    result = Verdict(run)
    for check in CHECKS:
        criterion = check(run, gate)
        if criterion is not None:
            if criterion.status in ("FAIL", "UNKNOWN"):
                criterion.explanation = EXPLAIN.get(criterion.name, "")
            result.criteria.append(criterion)
    return result


def _unknown(name: str, tag: str) -> Criterion:
    return Criterion(name, "UNKNOWN", f"no `{tag}` data", "-")


def ratio(value: float, bound: float) -> float:
    """Score of an upper-bound criterion: value / bound (1 at the bound); a non-finite value is infinitely far."""
    if not np.isfinite(value):
        return float("inf")
    return value / bound if bound > 0 else (float("inf") if value > 0 else 0.0)


def count_score(count: int, allowed: int) -> float:
    """Score of a count that may not exceed ``allowed``: count / (allowed + 1), so the first failing count is 1."""
    return count / (allowed + 1)


def _no_actor_cnn(run: Run, name: str, threshold: str) -> Criterion | None:
    """SKIPPED under a layout without an actor CNN (shared_detached: its actor-CNN metrics are a constant 0; mlp: a
    state vector, no CNN at all and no actor-CNN metrics)."""
    layout = (run.config.get("encoder") or {}).get("layout")
    if layout in ("shared_detached", "mlp"):
        return Criterion(name, "SKIPPED", f"no actor CNN under encoder.layout={layout}", threshold)
    return None


def _actor_cnn_grad(run: Run, g: GateConfig) -> Criterion | None:
    go, nogo = g.actor_cnn_grad_mean_go, g.actor_cnn_grad_mean_nogo
    if go is None and nogo is None:
        return None
    sides = ([f"< {go:g}"] if go is not None else []) + ([f"NO-GO > {nogo:g}"] if nogo is not None else [])
    threshold = ", ".join(sides)
    skipped = _no_actor_cnn(run, "actor_cnn_grad_mean", threshold)
    if skipped:
        return skipped
    w = windows(run, "grad/actor_cnn")
    if w is None:
        return _unknown("actor_cnn_grad_mean", "grad/actor_cnn")
    mean = weighted_mean(w)
    is_nogo = nogo is not None and mean > nogo
    failed = is_nogo or (go is not None and not mean < go)
    score = ratio(mean, nogo) if nogo is not None else ratio(mean, go or 0.0)  # the NO-GO side when there is one
    return Criterion("actor_cnn_grad_mean", "FAIL" if failed else "PASS", f"{mean:.4g}", threshold, is_nogo,
                     score=score)


def actor_loss_growth(w: Windows) -> float:
    """Median |loss| over the last 10% of actor updates / median |loss| over the first 10% (floored at 1)."""
    first, last = first_and_last(w, 0.1)
    head = weighted_median(np.abs(first.means), first.counts)
    tail = weighted_median(np.abs(last.means), last.counts)
    return tail / max(head, 1.0)


def _actor_loss_growth(run: Run, g: GateConfig) -> Criterion | None:
    if g.actor_loss_max_growth is None:
        return None
    w = windows(run, "loss/actor")
    if w is None or w.updates < 2:
        return _unknown("actor_loss_growth", "loss/actor")
    growth = actor_loss_growth(w)
    failed = not growth <= g.actor_loss_max_growth
    return Criterion("actor_loss_growth", "FAIL" if failed else "PASS", f"x{growth:.3g}",
                     f"<= x{g.actor_loss_max_growth:g}", nogo=failed, score=ratio(growth, g.actor_loss_max_growth))


def _critical_alerts(run: Run, g: GateConfig) -> Criterion | None:
    if g.max_critical_alerts is None:
        return None
    values = run.values("alerts/critical")  # cumulative: the last value is the run's count
    if values is None:
        return _unknown("critical_alerts", "alerts/critical")
    count = int(values[-1])
    failed = count > g.max_critical_alerts
    return Criterion("critical_alerts", "FAIL" if failed else "PASS", str(count), f"<= {g.max_critical_alerts}",
                     nogo=failed, score=count_score(count, g.max_critical_alerts))


def _q_abs(run: Run, g: GateConfig) -> Criterion | None:
    if g.q_abs_max is None:
        return None
    q = [w for w in (windows(run, "q/q1"), windows(run, "q/q2")) if w is not None]
    if not q:
        return _unknown("q_abs_max", "q/q1")
    largest = max(peak(w) for w in q)
    limit = q_limit(run, g.q_abs_max, g.scale_slack)
    if isinstance(limit, str):
        return Criterion("q_abs_max", "UNKNOWN", f"{largest:.4g}", limit)
    failed = not largest < limit.value
    return Criterion("q_abs_max", "FAIL" if failed else "PASS", f"{largest:.4g}", limit.text, nogo=failed,
                     score=ratio(largest, limit.value))


def _critic_loss(run: Run, g: GateConfig) -> Criterion | None:
    if g.critic_loss_mean_max is None:
        return None
    w = windows(run, "loss/critic")
    if w is None:
        return _unknown("critic_loss_mean", "loss/critic")
    mean = weighted_mean(w)
    limit = critic_loss_limit(run, g.critic_loss_mean_max, g.critic_td_fraction)
    if isinstance(limit, str):
        return Criterion("critic_loss_mean", "UNKNOWN", f"{mean:.4g}", limit)
    return Criterion("critic_loss_mean", "PASS" if mean < limit.value else "FAIL", f"{mean:.4g}", limit.text,
                     score=ratio(mean, limit.value))


def nonfinite_items(run: Run) -> list[str]:
    """Tags holding a NaN/Inf (update metrics: in windows that held updates) and the count of skipped updates."""
    bad = []
    for tag, series in sorted(run.scalars.items()):
        if is_max_twin(tag):
            continue  # read with its mean, as the window's peak
        if is_update_metric(tag):
            w = windows(run, tag)  # windows without updates carry no value to judge
            finite = w is None or bool(np.all(np.isfinite(w.means)) and np.all(np.isfinite(w.peaks)))
        else:
            finite = bool(np.all(np.isfinite(series.values)))
        if not finite:
            bad.append(tag)
    skipped = run.values("alerts/nonfinite")
    if skipped is not None and skipped[-1] > 0:
        bad.append(f"{int(skipped[-1])} skipped updates")
    return bad


def _nonfinite(run: Run, g: GateConfig) -> Criterion | None:
    if not g.forbid_nonfinite:
        return None
    bad = nonfinite_items(run)
    value = ", ".join(bad) if bad else "none"
    return Criterion("nonfinite", "FAIL" if bad else "PASS", value, "no NaN/Inf", nogo=bool(bad),
                     score=count_score(len(bad), 0))


def learning_metric(run: Run, setting: str) -> tuple[str, str]:
    """The tag the learning criterion follows and why.  auto: episode/length under CARLA (a longer episode survived
    longer); the native return elsewhere (CarRacing ends an episode early when a lap is finished, so a shorter episode
    can be a better one; a MuJoCo task's own reward is what it is judged by)."""
    if setting != AUTO:
        return setting, "learning_metric"
    env = (run.config.get("env") or {}).get("name")
    if env == "carla":
        return "episode/length", "auto, env.name=carla"
    return "episode/native_return", f"auto, env.name={env}"


def improvement_score(before: float, after: float) -> float:
    """1 - (after - before) / (|before| + |after|): 1 when equal (the bound), below 1 improving, up to 2 worsening;
    sign-safe for returns."""
    total = abs(before) + abs(after)
    if not np.isfinite(total):
        return float("inf")
    return 1.0 - (after - before) / total if total > 0 else 1.0


def _learning(run: Run, g: GateConfig) -> Criterion | None:
    after = g.learning_after_step
    if after is None:
        return None
    tag, why = learning_metric(run, g.learning_metric)
    name, threshold = "learning_improving", f"mean `{tag}` after step {after:,} > mean before ({why})"
    if run.last_step <= after:
        return Criterion(name, "SKIPPED", f"run has {run.last_step:,} steps", threshold)
    series = run.scalars.get(tag)
    if series is None or len(series.values) == 0:
        return _unknown(name, tag)
    before, later = series.values[series.steps <= after], series.values[series.steps > after]
    if len(before) == 0 or len(later) == 0:
        return Criterion(name, "UNKNOWN", f"{len(before)} episodes before, {len(later)} after", threshold)
    mean_before, mean_after = float(np.mean(before)), float(np.mean(later))
    improving = mean_after > mean_before
    value = f"{mean_before:.1f} -> {mean_after:.1f}"
    return Criterion(name, "PASS" if improving else "FAIL", value, threshold,
                     score=improvement_score(mean_before, mean_after))


def _median_after_warmup(run: Run, tag: str, fraction: float) -> float | None:
    w = windows(run, tag)
    if w is None:
        return None
    w = after_warmup(w, fraction)
    return median(w) if len(w) else None


def _saturation(run: Run, g: GateConfig) -> Criterion | None:
    if g.saturation_max is None:
        return None
    threshold = f"median after warm-up < {g.saturation_max:g}"
    value = _median_after_warmup(run, "actor/saturation_max", g.warmup_fraction)
    note = ""
    if value is None:  # runs before actor/saturation_max: the dimension mean, a lower bound of the largest dimension
        value = _median_after_warmup(run, "actor/saturation", g.warmup_fraction)
        note = " (dimension mean; no actor/saturation_max)"
    if value is None:
        return _unknown("actor_saturation", "actor/saturation_max")
    failed = value >= g.saturation_max
    return Criterion("actor_saturation", "FAIL" if failed else "PASS", f"{value:.3g}{note}", threshold, nogo=failed,
                     score=ratio(value, g.saturation_max))


def _actor_cnn_alive(run: Run, g: GateConfig) -> Criterion | None:
    floor, relative = g.actor_cnn_update_ratio_floor, g.actor_cnn_update_ratio_vs_critic_min
    if floor is None and relative is None:
        return None
    name = "actor_cnn_alive"
    threshold = " and ".join(([f">= {floor:g}"] if floor is not None else [])
                             + ([f">= {relative:g} x critic CNN's"] if relative is not None else []))
    threshold = f"median update_ratio/actor_cnn after warm-up {threshold}"
    skipped = _no_actor_cnn(run, name, threshold)
    if skipped:
        return skipped
    actor = _median_after_warmup(run, "update_ratio/actor_cnn", g.warmup_fraction)
    if actor is None:
        return _unknown(name, "update_ratio/actor_cnn")
    failed = floor is not None and actor < floor
    value = f"{actor:.3g}"
    scores = [ratio(floor, actor)] if floor is not None else []  # a lower bound: floor / value
    if relative is not None:
        critic = _median_after_warmup(run, "update_ratio/critic_cnn", g.warmup_fraction)
        if critic is None:
            return _unknown(name, "update_ratio/critic_cnn")
        share = actor / critic if critic > 0 else (float("inf") if actor > 0 else 0.0)
        failed = failed or share < relative
        value += f" ({share:.3g} x critic CNN's)"
        scores.append(ratio(relative, share))
    return Criterion(name, "FAIL" if failed else "PASS", value, threshold, nogo=failed, score=max(scores))


def _update_ratio_max(run: Run, g: GateConfig) -> Criterion | None:
    if g.actor_cnn_update_ratio_max is None:
        return None
    name, threshold = "actor_cnn_update_ratio", f"median after warm-up <= {g.actor_cnn_update_ratio_max:g}"
    skipped = _no_actor_cnn(run, name, threshold)
    if skipped:
        return skipped
    value = _median_after_warmup(run, "update_ratio/actor_cnn", g.warmup_fraction)
    if value is None:
        return _unknown(name, "update_ratio/actor_cnn")
    return Criterion(name, "PASS" if value <= g.actor_cnn_update_ratio_max else "FAIL", f"{value:.3g}", threshold,
                     score=ratio(value, g.actor_cnn_update_ratio_max))


CHECKS: list[Callable[[Run, GateConfig], Criterion | None]] = [
    _actor_cnn_grad, _actor_loss_growth, _critical_alerts, _q_abs, _critic_loss, _nonfinite, _learning,
    _saturation, _actor_cnn_alive, _update_ratio_max,
]
