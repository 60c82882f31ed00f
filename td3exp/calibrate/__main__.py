"""``python -m td3exp.calibrate PATH [PATH ...] --outcome FILE [--horizons 2500,5000,10000,20000] [--gate seed]
[--out DIR]``: the gate judged at early horizons against each run's eventual outcome.  PATH is a run directory, a
multirun directory or a result table (``.parquet``), as for ``python -m td3exp.report``.  Writes calibration.md,
calibration.html, summary.csv and runs.csv into ``--out``.  Exit codes: 0 written, 2 unusable input (one line)."""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from pathlib import Path

from td3exp.calibrate.horizon import Judged, Summary, horizon_summaries, judge
from td3exp.calibrate.outcome import load_outcome, outcome
from td3exp.calibrate.render import markdown, write_all
from td3exp.report.__main__ import load_inputs
from td3exp.report.dataset import unique_names
from td3exp.report.gate import load_gate_file
from td3exp.report.runs import ReportInputError, Run


def horizons(text: str) -> list[int]:
    try:
        values = sorted({int(h.replace("_", "")) for h in text.split(",") if h.strip()})
    except ValueError as error:
        raise ReportInputError(f"--horizons {text!r}: use comma-separated agent steps, e.g. 2500,5000,10000") from error
    if not values or values[0] <= 0:
        raise ReportInputError(f"--horizons {text!r}: use positive agent steps, e.g. 2500,5000,10000")
    return values


def provenance(runs: list[Run]) -> str:
    """Which devices and commits the runs come from: a calibration compares runs, so a mix is named."""
    parts = []
    for what, values in (("device", [r.device for r in runs]), ("commit", [r.commit for r in runs])):
        counts = {v: values.count(v) for v in sorted(set(values))}
        listed = ", ".join(f"{v} ({n} runs)" for v, n in counts.items())
        parts.append(f"**MIXED {what}s**: {listed}" if len(counts) > 1 else f"every run's {what}: {listed}")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def run(args: argparse.Namespace, command: str) -> None:
    hs = horizons(args.horizons)
    gate, gate_path, gate_text = load_gate_file(args.gate)
    loaded = load_outcome(args.outcome)
    runs, notes = load_inputs(args.paths)
    if not runs:
        raise ReportInputError("no usable runs" + (f" ({notes[0]})" if notes else ""))
    names = unique_names(runs)
    labelled = [(r, n, outcome(r, loaded.config)) for r, n in zip(runs, names, strict=True)]
    notes += [f"`{n}`: outcome undecided ({'; '.join(o.reasons)})" for _, n, o in labelled if o.failed is None]
    decided = [(r, n, o) for r, n, o in labelled if o.failed is not None]
    if not decided:
        raise ReportInputError(f"no run has a decided outcome under {loaded.path} (e.g. {notes[-1]})")
    summaries: list[Summary] = []
    judged: list[Judged] = []
    for h in hs:
        at_h = judge([r for r, _, _ in decided], [n for _, n, _ in decided], [bool(o.failed) for _, _, o in decided],
                     gate, h, ["; ".join(o.reasons) for _, _, o in decided])
        if not at_h:
            notes.append(f"horizon {h:,}: no run is longer than it")
        judged += at_h
        summaries += horizon_summaries(at_h, args.bootstrap_reps)
    if not summaries:
        raise ReportInputError(f"no run is longer than any horizon ({args.horizons}); the longest has "
                               f"{max(r.last_step for r, _, _ in decided):,} steps")
    gate_hash = hashlib.sha256(gate_text.encode()).hexdigest()[:16]
    sources = f"Gate `{gate.name}` from `{gate_path}` (sha256 `{gate_hash}`). {provenance([r for r, _, _ in decided])}"
    text = markdown(summaries, judged, sources, loaded, command, notes)
    paths = write_all(args.out, text, summaries, judged)
    for s in summaries:
        if s.method.startswith("gate"):
            print(f"h={s.horizon:,}: {s.runs} runs, {s.failures} failures, NO-GO caught {s.tp:g}, missed {s.fn:g}, "
                  f"stopped {s.fp:g} successes; AUC {'-' if s.auc is None else f'{s.auc:.3f}'}")
    print("calibration: " + ", ".join(str(p) for p in paths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m td3exp.calibrate", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, multirun directories, result tables")
    parser.add_argument("--outcome", required=True,
                        help="pre-registered outcome: a name in conf/outcome/ or a YAML file")
    parser.add_argument("--horizons", default="2500,5000,10000,20000", help="agent steps, comma-separated")
    parser.add_argument("--gate", default="seed", help="gate name in conf/gate/ or a YAML file (default: seed)")
    parser.add_argument("--out", type=Path, default=Path("calibration"), help="output directory")
    parser.add_argument("--bootstrap-reps", type=int, default=2000, help="bootstrap resamples for the AUC CI")
    args = parser.parse_args(argv)
    command = "python -m td3exp.calibrate " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        run(args, command)
    except ReportInputError as error:
        print(f"td3exp.calibrate: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
