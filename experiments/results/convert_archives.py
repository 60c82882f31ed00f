"""How the committed .tgz archives of event files became result tables (kept as the record of that conversion).

    tar xzf runs.tgz -C /tmp/results_x        # each archive of a result set, extracted outside the repository
    python experiments/results/convert_archives.py /tmp/results_x experiments/results/NAME/scalars.parquet --bits 16

The runs predate provenance.json.  Their device comes from the saved config's ``device`` value, which matches what
FINDINGS.md and seed_5k/README.md record: ``device=cuda`` runs ran on the lent H100, ``device=auto`` runs on the
2-core CPU.  Their commit was not recorded and stays ``unknown``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from td3exp.report.__main__ import load_inputs
from td3exp.report.dataset import FLOAT32_BITS, write_table

DEVICES = {  # saved config `device` -> where FINDINGS.md / seed_5k/README.md say those runs ran
    "cuda": {"device": "cuda", "device_name": "H100"},
    "auto": {"device": "cpu", "device_name": "2-core CPU"},
}
NOTE = "no provenance.json: device from the saved config and FINDINGS.md / README.md, commit not recorded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("extracted", type=Path, help="directory the archives were extracted into")
    parser.add_argument("table", type=Path, help="the .parquet table to write")
    parser.add_argument("--bits", type=int, default=FLOAT32_BITS, help="significant bits kept per value")
    args = parser.parse_args()
    runs, skipped = load_inputs([args.extracted])
    if skipped:
        raise SystemExit("\n".join(skipped))
    for run in runs:
        if not run.provenance:
            run.provenance = {**DEVICES[run.config["device"]], "note": NOTE}
        run.source = str(Path(run.source).relative_to(args.extracted))  # the path inside the archives
    write_table(runs, args.table, args.bits)
    print(f"{len(runs)} runs, {sum(len(s.values) for r in runs for s in r.scalars.values()):,} scalars -> "
          f"{args.table} ({args.table.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
