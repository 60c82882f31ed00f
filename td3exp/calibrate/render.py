"""calibration.md (and .html), summary.csv (one row per horizon and method) and runs.csv (one row per run and
horizon)."""

from __future__ import annotations

import csv
from pathlib import Path

from td3exp.calibrate.horizon import Judged, Summary
from td3exp.calibrate.measures import Rate
from td3exp.calibrate.outcome import LoadedOutcome
from td3exp.report.html import write_html

DEFINITIONS = """\
Each run is judged by the gate on its data cut at the horizon (every series to steps <= h), and labelled by the
outcome over the whole run. Only runs longer than the horizon count there. A failure is a positive: TP = failure
stopped (the gate said NO-GO at h; HOLD does not stop a run), FN = failure the gate let run, FP = success stopped,
TN = success let run. Sensitivity TP/(TP+FN), specificity TN/(TN+FP), PPV TP/(TP+FP), NPV TN/(TN+FN), each with a
Wilson 95% interval. **AUC**: P(gate score of a failure > that of a success), ties half (the gate score is the
largest criterion score: a criterion's value over its NO-GO bound, or over its blocking bound where it has no NO-GO
side, 1 at the bound, so criteria that can only HOLD count too); runs without a score are left out (`AUC runs`).
**AUC 95% CI**: percentile bootstrap resampling conditions (all runs of a drawn condition together); with few
conditions it is narrow because few distinct resamples exist, not because the AUC is certain. **LOCO AUC**: the AUC
with each condition held out in turn, min / median over the held-out sets that keep both classes (the gate fits
nothing: this asks whether one condition alone makes the AUC). **Compute saved**: agent steps from h to the end of
failures the rule stops, over all failures' steps (at most (steps - h) / steps). **Successes lost**: the share of
eventual successes the rule stops. Baselines at the same horizon: **early return**
(Optuna's MedianPruner on eval/return: stop when the run's best evaluation so far is below the median of the other
runs' evaluations at its latest evaluation step <= h, a run whose every evaluation is NaN stopped, as Optuna does;
its AUC ranks runs by that median minus their best; the gate's AUC minus it comes with a paired clustered CI),
**always GO**, and a **random** gate stopping each run with the gate's NO-GO rate (expected values, no intervals).
"""

COLUMNS = ["horizon", "method", "runs", "failures", "tp", "fp", "fn", "tn", "sensitivity", "sensitivity_low",
           "sensitivity_high", "specificity", "specificity_low", "specificity_high", "ppv", "ppv_low", "ppv_high",
           "npv", "npv_low", "npv_high", "stop_rate", "compute_saved", "successes_lost", "auc", "auc_runs",
           "auc_low", "auc_high", "auc_ci_note", "loco_auc_min", "loco_auc_median", "loco_conditions",
           "auc_minus_early_return", "auc_minus_early_return_runs", "auc_minus_early_return_low",
           "auc_minus_early_return_high"]


def _n(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _rate(rate: Rate) -> str:
    if rate.value is None:
        return "n/a (n=0)"
    if rate.low is None:
        return f"{rate.value:.2f}"
    return f"{rate.value:.2f} [{rate.low:.2f}, {rate.high:.2f}]"


def _count(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"


def _auc(s: Summary) -> str:
    if s.auc is None:
        return "not computable (one class)" if s.auc_runs else "-"
    text = f"{s.auc:.3f} (n={s.auc_runs})"
    if s.auc_ci is not None:
        ci = s.auc_ci
        text += f", 95% CI [{ci.low:.3f}, {ci.high:.3f}] ({ci.note})" if ci.low is not None else f", CI {ci.note}"
    return text


def _loco(s: Summary) -> str:
    if s.method.startswith(("gate", "early")):
        return "not computable" if s.loco is None else f"{s.loco[0]:.3f} / {s.loco[1]:.3f} ({s.loco[2]} held out)"
    return "-"


def _versus_early(s: Summary) -> list[str]:
    if s.auc_minus_early is None:
        return ["Gate AUC minus early-return AUC: not computable at this horizon (early return ranks no run, or one "
                "class only).", ""]
    ci = s.auc_minus_early_ci
    interval = f"95% CI [{ci.low:.3f}, {ci.high:.3f}] ({ci.note})" if ci and ci.low is not None else \
        f"CI {ci.note if ci else 'not computed'}"
    return [f"Gate AUC minus early-return AUC on the {s.auc_minus_early_runs} runs both rank: "
            f"{s.auc_minus_early:+.3f}, {interval}; paired, the same resamples of conditions.", ""]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]]


def markdown(summaries: list[Summary], judged: list[Judged], sources: str, outcome: LoadedOutcome,
             command: str, notes: list[str]) -> str:
    """``sources``: the gate file with its hash, and the runs' devices and commits, in one paragraph."""
    out = ["# Gate calibration", "", f"Generated by `{command}`.", "", sources, "",
           f"Outcome `{outcome.config.name}` from `{outcome.path}` (sha256 `{outcome.sha256[:16]}`):", "",
           "```yaml", outcome.text.rstrip(), "```", "", DEFINITIONS]
    if notes:
        out += ["Left out:", "", *[f"- {n}" for n in notes], ""]
    for horizon in sorted({s.horizon for s in summaries}):
        rows = [s for s in summaries if s.horizon == horizon]
        gate_row = rows[0]
        out += [f"## Horizon {horizon:,} steps", "",
                f"{gate_row.runs} runs, {gate_row.failures} eventual failures.", "",
                *_table(["gate at h", "failure", "success"],
                        [["NO-GO (stopped)", _count(gate_row.tp), _count(gate_row.fp)],
                         ["GO / HOLD (let run)", _count(gate_row.fn), _count(gate_row.tn)]]), "",
                *_table(["method", "TP", "FP", "FN", "TN", "sensitivity", "specificity", "PPV", "NPV",
                         "compute saved", "successes lost", "AUC", "LOCO AUC min / median"],
                        [[s.method, _count(s.tp), _count(s.fp), _count(s.fn), _count(s.tn), _rate(s.sensitivity),
                          _rate(s.specificity), _rate(s.ppv), _rate(s.npv), _n(s.compute_saved),
                          _n(s.successes_lost), _auc(s), _loco(s)] for s in rows]), "", *_versus_early(gate_row)]
    out += ["## Runs", "", *_table(
        ["horizon", "run", "steps", "outcome (why)", "verdict at h", "score at h", "failing at h", "early return"],
        [[f"{j.horizon:,}", f"`{j.name}`", f"{j.run.last_step:,}",
          f"failure ({j.why_failed})" if j.failed else "success", j.verdict, _n(j.score), j.failing or "-",
          "prune" if j.pruned else ("-" if j.margin is None else "keep")] for j in judged])]
    return "\n".join(out) + "\n"


def _row(s: Summary) -> list[object]:
    rates = [x for r in (s.sensitivity, s.specificity, s.ppv, s.npv) for x in (r.value, r.low, r.high)]
    ci = s.auc_ci
    loco = s.loco or (None, None, None)
    return [s.horizon, s.method, s.runs, s.failures, s.tp, s.fp, s.fn, s.tn, *rates, s.stop_rate, s.compute_saved,
            s.successes_lost, s.auc, s.auc_runs, ci.low if ci else None, ci.high if ci else None,
            ci.note if ci else "", *loco, s.auc_minus_early, s.auc_minus_early_runs or None,
            *((s.auc_minus_early_ci.low, s.auc_minus_early_ci.high) if s.auc_minus_early_ci else (None, None))]


def write_all(out: Path, text: str, summaries: list[Summary], judged: list[Judged]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "calibration.md", out / "calibration.html", out / "summary.csv", out / "runs.csv"]
    paths[0].write_text(text)
    write_html(text, paths[1], title="Gate calibration")
    with paths[2].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(["" if v is None else v for v in _row(s)] for s in summaries)
    with paths[3].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["horizon", "run", "condition", "seed", "steps", "failed", "verdict", "score", "stopped",
                         "early_return_pruned", "early_return_margin", "failing", "why_failed", "device",
                         "commit"])
        writer.writerows([j.horizon, j.name, j.run.label, j.run.seed, j.run.last_step, int(j.failed), j.verdict,
                          "" if j.score is None else j.score, int(j.stopped), int(j.pruned),
                          "" if j.margin is None else j.margin, j.failing, j.why_failed, j.run.device, j.run.commit]
                         for j in judged)
    return paths
