"""``python -m td3exp.report PATH [PATH ...] [--gate seed] [--out DIR] [--export TABLE]``: GO / NO-GO per run,
comparison plots, per-condition statistics, report.md and report.html.  PATH is a run directory, a multirun
directory, or a result table (``.parquet``, written by ``--export``).  Exit codes: 0 every run GO, 1 any run not GO,
2 unusable input."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from td3exp.report.aggregate import compare, provenance_warnings, seed_order, summarize
from td3exp.report.criteria import evaluate
from td3exp.report.dataset import FLOAT32_BITS, read_table, write_table
from td3exp.report.gate import GateConfig, Verdict, load_gate
from td3exp.report.html import write_html
from td3exp.report.plots import plot_all
from td3exp.report.render import Report, console_table, markdown
from td3exp.report.runs import TABLE_SUFFIX, ReportInputError, Run, find_inputs, load_run


def load_inputs(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """Every usable run under the paths, and one line for each input that was not usable."""
    runs: list[Run] = []
    skipped: list[str] = []
    for path in paths:
        try:
            inputs = find_inputs(path)
        except ReportInputError as error:
            skipped.append(str(error))
            continue
        for item in inputs:
            try:
                runs += read_table(item) if item.is_file() else [load_run(item)]
            except ReportInputError as error:
                skipped.append(str(error))
    return runs, skipped


def write_report(runs: list[Run], gate: GateConfig, out: Path, command: str, skipped: list[str] | None = None,
                 reps: int = 5000, embed_plots: bool = False) -> tuple[list[Verdict], Report]:
    """Every run's verdict, and report.md / report.html (with the plots) in ``out``: what ``python -m td3exp.report``
    writes, and what a run that gates itself writes for each of its horizons."""
    verdicts = [evaluate(run, gate) for run in runs]
    out.mkdir(parents=True, exist_ok=True)
    report = Report(verdicts, summarize(runs, reps), compare(verdicts), provenance_warnings(runs), gate,
                    plot_all(runs, out), command, skipped or [])
    text = markdown(report)
    (out / "report.md").write_text(text)
    write_html(text, out / "report.html", embed=embed_plots)
    return verdicts, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m td3exp.report", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, multirun directories, result tables")
    parser.add_argument("--gate", default="seed", help="gate name in conf/gate/ or a YAML file (default: seed)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output directory (default: ./report)")
    parser.add_argument("--export", type=Path, help=f"also write every scalar of the runs to this {TABLE_SUFFIX} table")
    parser.add_argument("--export-bits", type=int, default=FLOAT32_BITS, choices=range(8, FLOAT32_BITS + 1),
                        metavar=f"8..{FLOAT32_BITS}",
                        help=f"significant bits kept per value in --export ({FLOAT32_BITS}: lossless float32)")
    parser.add_argument("--bootstrap-reps", type=int, default=5000, help="bootstrap resamples for the CIs")
    parser.add_argument("--embed-plots", action="store_true", help="embed the PNGs in report.html (base64)")
    args = parser.parse_args(argv)
    if args.export is not None and args.export.suffix != TABLE_SUFFIX:
        print(f"td3exp.report: --export {args.export}: the table name must end in {TABLE_SUFFIX}", file=sys.stderr)
        return 2

    try:
        gate = load_gate(args.gate)
    except ReportInputError as error:
        print(f"td3exp.report: {error}", file=sys.stderr)
        return 2
    runs, skipped = load_inputs(args.paths)
    for line in skipped:
        print(f"td3exp.report: {line}", file=sys.stderr)
    if not runs:
        print("td3exp.report: no usable runs", file=sys.stderr)
        return 2
    runs.sort(key=lambda run: (run.label, seed_order(run)))  # conditions together, seeds in order

    if args.export is not None:
        write_table(runs, args.export, args.export_bits)
    command = "python -m td3exp.report " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    verdicts, report = write_report(runs, gate, args.out, command, skipped, args.bootstrap_reps, args.embed_plots)
    print(console_table(verdicts))
    for line in report.warnings:
        print(f"warning: {line}")
    print(f"report: {args.out / 'report.md'}, {args.out / 'report.html'}")
    if args.export is not None:
        print(f"table: {args.export}")
    return 0 if all(v.verdict == "GO" for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
