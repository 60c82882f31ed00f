"""Every number FINDINGS.md states, recomputed from the result table (run from the repository root):

    python experiments/results/findings_numbers.py experiments/results/explosion_ablation/scalars.parquet

Prints the per-condition table (seed by seed), the extremes FINDINGS quotes, which runs each strict-gate criterion
flags (the README's calibration table), and Fisher's exact test on GO counts for the comparisons FINDINGS draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from td3exp.report.aggregate import group_by_config
from td3exp.report.criteria import evaluate
from td3exp.report.dataset import read_table
from td3exp.report.gate import load_gate
from td3exp.report.runs import Run
from td3exp.report.stats import compare_go_counts
from td3exp.report.windows import after_warmup, median, weighted_mean, windows


def cell(run: Run) -> str:
    """A short name of the run's condition: head, pixels, clip, fixes."""
    c = run.config
    clip = c["clip"]
    clip_name = "auto" if clip.get("auto_percentile") else ("none" if clip["max_norm"] is None else "norm1")
    fixes = [name for name, on in (("trunk_norm", c["encoder"]["trunk_norm"]),
                                   ("penalty", c["agent"]["preactivation_penalty"] > 0)) if on]
    return f"{c['agent']['actor_head']}, {c['encoder']['pixel_scale']} px, {clip_name}" + "".join(
        f" + {f}" for f in fixes)


def signals(run: Run) -> dict[str, float]:
    grad = windows(run, "grad/actor_cnn")
    assert grad is not None
    saturation = after_warmup(windows(run, "actor/saturation"), 0.25)  # type: ignore[arg-type]
    ratio = after_warmup(windows(run, "update_ratio/actor_cnn"), 0.25)  # type: ignore[arg-type]
    return {"grad_mean": weighted_mean(grad), "grad_max": float(np.max(grad.peaks)),
            "critic_cnn_mean": weighted_mean(windows(run, "grad/critic_cnn")),  # type: ignore[arg-type]
            "saturation": median(saturation), "ratio": median(ratio),
            "critical": float(run.values("alerts/critical")[-1])}  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path)
    runs = read_table(parser.parse_args().table)
    seed_gate, strict = load_gate("seed"), load_gate("strict")
    groups = group_by_config(runs)
    print("| condition | seeds | grad/actor_cnn mean / max | actor-loss growth | median saturation | median "
          "update_ratio/actor_cnn | grad/critic_cnn mean | critical alerts | seed / strict |")
    go_counts: dict[str, tuple[int, int]] = {}
    for group in groups.values():
        rows = [(r, signals(r), evaluate(r, seed_gate), evaluate(r, strict)) for r in group]
        growth = [next(c.value for c in v.criteria if c.name == "actor_loss_growth") for _, _, v, _ in rows]
        go_counts[cell(group[0])] = (sum(s.verdict == "GO" for *_, s in rows), len(rows))

        def col(key: str, fmt: str, rows: list = rows) -> str:
            return " ; ".join(format(s[key], fmt) for _, s, _, _ in rows)

        print(f"| {cell(group[0])} | {', '.join(str(r.seed) for r in group)} | "
              + " ; ".join(f"{s['grad_mean']:.2g}/{s['grad_max']:.2g}" for _, s, _, _ in rows)
              + f" | {' ; '.join(growth)} | {col('saturation', '.2f')} | {col('ratio', '.2g')} | "
              f"{col('critic_cnn_mean', '.2g')} | {col('critical', '.0f')} | "
              + " ; ".join(f"{a.verdict}/{b.verdict}" for _, _, a, b in rows) + " |")

    tanh_grid = [r for r in runs if r.config["agent"]["actor_head"] == "tanh" and "explosion_ablation_fixes"
                 not in r.label]
    print(f"\ntanh grid runs: {len(tanh_grid)}, largest grad/actor_cnn: "
          f"{max(signals(r)['grad_max'] for r in tanh_grid):.4g}")
    clipped = [r for r in runs if r.config["agent"]["actor_head"] == "unbounded" and "fixes" not in r.label
               and "none" not in cell(r)]
    for pixels in ("unit", "raw", None):
        chosen = [r for r in clipped if pixels is None or r.config["encoder"]["pixel_scale"] == pixels]
        no_go = sum(evaluate(r, strict).verdict == "NO-GO" for r in chosen)
        print(f"clipped unbounded runs ({pixels or 'all'} px): {no_go} of {len(chosen)} NO-GO (strict)")

    print("\nstrict criteria and the runs they fail (calibration):")
    flagged: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for c in evaluate(run, strict).criteria:
            if c.status == "FAIL":
                flagged.setdefault(c.name, {}).setdefault(cell(run), []).append(str(run.seed))
    for name, cells in flagged.items():
        print(f"  {name}: " + "; ".join(f"{k} (seed {', '.join(v)})" for k, v in cells.items()))

    print("\nFisher's exact test on strict GO counts (pooled cells are a modelling choice, said where used):")
    pairs = [("tanh, raw px, none + trunk_norm + penalty", "tanh, raw px, none"),
             ("tanh, raw px, none + trunk_norm", "tanh, raw px, none"),
             ("tanh, raw px, none + trunk_norm + penalty", "tanh, raw px, none + trunk_norm")]
    for a, b in pairs:
        print(f"  {a} vs {b}: {compare_go_counts(*go_counts[a], *go_counts[b])}")
    pooled = {px: [0, 0] for px in ("unit", "raw")}
    for name, (go, n) in go_counts.items():
        if name.startswith("tanh") and "+" not in name:
            pooled["unit" if "unit px" in name else "raw"][0] += go
            pooled["unit" if "unit px" in name else "raw"][1] += n
    print(f"  tanh unit px vs raw px, pooled over the three clip settings: "
          f"{compare_go_counts(*pooled['unit'], *pooled['raw'])}")


if __name__ == "__main__":
    main()
