"""Results as data: every scalar of a set of runs in one compressed Parquet table, read back as runs.

Columns: ``run`` (the run's name, e.g. ``clip=none seed=1``), ``condition``, ``seed``, ``device``, ``commit``, ``tag``,
``step``, ``value`` (float32, as TensorBoard stores scalars).  The file's ``td3exp`` metadata holds, per run, what the
gate and the grouping need besides the scalars: the saved config, total steps, notes, provenance and source.
Strings are dictionary-encoded, steps delta-encoded, values byte-stream-split, all zstd-compressed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from td3exp.report.runs import ReportInputError, Run, Series

METADATA_KEY = b"td3exp"
FORMAT = 1
FLOAT32_BITS = 24  # significant bits of a float32: keeping all of them is lossless


def round_significant(values: np.ndarray, bits: int) -> np.ndarray:
    """float32 values rounded to ``bits`` significant bits (relative error below 2**-bits: 1.5e-5 at 16); 24 keeps
    them exact. Fewer bits make the table smaller: the low mantissa bits of noisy metrics do not compress."""
    values = np.asarray(values, dtype=np.float32)
    if bits >= FLOAT32_BITS:
        return values
    drop = FLOAT32_BITS - bits
    raw = values.view(np.uint32)
    rounded = ((raw + np.uint32(1 << (drop - 1))) & ~np.uint32((1 << drop) - 1)).view(np.float32)
    return np.where(np.isfinite(values) & np.isfinite(rounded), rounded, values)


def unique_names(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        name, k = run.name, 2
        while name in names:  # the same condition and seed read twice (e.g. from two sweeps)
            name, k = f"{run.name} #{k}", k + 1
        names.append(name)
    return names


def write_table(runs: list[Run], path: Path, bits: int = FLOAT32_BITS) -> None:
    columns: dict[str, list[np.ndarray]] = {c: [] for c in ("run", "tag", "step", "value")}
    identity: dict[str, list] = {c: [] for c in ("condition", "seed", "device", "commit")}
    metadata = {}
    for run, name in zip(runs, unique_names(runs), strict=True):
        for tag, series in sorted(run.scalars.items()):
            n = len(series.steps)
            columns["run"].append(np.full(n, name, dtype=object))
            columns["tag"].append(np.full(n, tag, dtype=object))
            columns["step"].append(np.asarray(series.steps, dtype=np.int64))
            columns["value"].append(round_significant(series.values, bits))
            for key, value in (("condition", run.label), ("seed", run.seed), ("device", run.device),
                               ("commit", run.commit)):
                identity[key].append(np.full(n, value, dtype=object))
        metadata[name] = {"config": run.config, "total_steps": run.total_steps, "notes": run.notes,
                          "provenance": run.provenance, "source": run.source}
    table = pa.table({
        "run": pa.array(np.concatenate(columns["run"]), pa.string()).dictionary_encode(),
        "condition": pa.array(np.concatenate(identity["condition"]), pa.string()).dictionary_encode(),
        "seed": pa.array(np.concatenate(identity["seed"]), pa.int64()),
        "device": pa.array(np.concatenate(identity["device"]), pa.string()).dictionary_encode(),
        "commit": pa.array(np.concatenate(identity["commit"]), pa.string()).dictionary_encode(),
        "tag": pa.array(np.concatenate(columns["tag"]), pa.string()).dictionary_encode(),
        "step": pa.array(np.concatenate(columns["step"]), pa.int64()),
        "value": pa.array(np.concatenate(columns["value"]), pa.float32()),
    })
    note = {"format": FORMAT, "significant_bits": min(bits, FLOAT32_BITS), "runs": metadata}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(note, default=str).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", compression_level=19, row_group_size=1 << 24,
                   use_dictionary=["run", "condition", "device", "commit", "tag"],
                   column_encoding={"seed": "DELTA_BINARY_PACKED", "step": "DELTA_BINARY_PACKED",
                                    "value": "BYTE_STREAM_SPLIT"})


def read_table(path: Path) -> list[Run]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ReportInputError(f"{path}: unreadable result table ({str(error).splitlines()[0]})") from error
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ReportInputError(f"{path}: a Parquet file without td3exp metadata; write tables with --export")
    note = json.loads(raw)
    frame = table.select(["run", "condition", "tag", "step", "value"]).to_pandas()
    runs = []
    for name, rows in frame.groupby("run", observed=True, sort=False):
        meta = note["runs"][name]
        scalars = {str(tag): Series(part["step"].to_numpy(np.int64), part["value"].to_numpy(float))
                   for tag, part in rows.groupby("tag", observed=True, sort=False)}
        last_step = max(int(s.steps.max()) for s in scalars.values())
        runs.append(Run(f"{path} [{name}]", str(rows["condition"].iloc[0]), meta["config"] or {}, scalars, last_step,
                        meta["total_steps"], list(meta["notes"]), meta["provenance"] or {}))
    return runs
