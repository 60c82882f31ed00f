"""``python -m td3exp.report PATH [PATH ...] [--gate seed] [--out DIR]``: GO / NO-GO per run, comparison plots,
seed aggregates.  Exit codes: 0 every run GO, 1 any run not GO, 2 unusable input."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from td3exp.report.aggregate import aggregate
from td3exp.report.gate import evaluate, load_gate
from td3exp.report.plots import plot_all
from td3exp.report.render import console_table, markdown
from td3exp.report.runs import ReportInputError, find_run_dirs, load_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m td3exp.report", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, multirun directories, or both")
    parser.add_argument("--gate", default="seed", help="gate name in conf/gate/ or a YAML file (default: seed)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output directory (default: ./report)")
    parser.add_argument("--bootstrap-reps", type=int, default=5000, help="bootstrap resamples for the CIs")
    args = parser.parse_args(argv)

    try:
        gate = load_gate(args.gate)
    except FileNotFoundError as error:
        print(f"td3exp.report: {error}", file=sys.stderr)
        return 2
    runs, skipped = [], []
    for path in args.paths:
        try:
            run_dirs = find_run_dirs(path)
        except ReportInputError as error:
            print(f"td3exp.report: {error}", file=sys.stderr)
            skipped.append(str(error))
            continue
        for run_dir in run_dirs:
            try:
                runs.append(load_run(run_dir))
            except ReportInputError as error:
                print(f"td3exp.report: {error}", file=sys.stderr)
                skipped.append(str(error))
    if not runs:
        print("td3exp.report: no usable runs", file=sys.stderr)
        return 2

    verdicts = [evaluate(run, gate) for run in runs]
    args.out.mkdir(parents=True, exist_ok=True)
    plots = plot_all(runs, args.out)
    aggregates = aggregate(runs, reps=args.bootstrap_reps)
    command = "python -m td3exp.report " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    (args.out / "report.md").write_text(markdown(verdicts, aggregates, gate, plots, command, skipped))
    print(console_table(verdicts))
    print(f"report: {args.out / 'report.md'}")
    return 0 if all(v.verdict == "GO" for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
