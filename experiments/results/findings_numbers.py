"""Every number FINDINGS.md (and docs/gate-and-report.md's calibration table) states, recomputed from a result table
(run from the repository root, on either committed table):

    python experiments/results/findings_numbers.py experiments/results/explosion_ablation/scalars.parquet
    python experiments/results/findings_numbers.py experiments/results/seed_5k/scalars.parquet

Counts each run once (a run bitwise identical in the table to one of the same condition and seed, e.g. the fixes
sweep's seed-0 controls, is the grid's run read twice), then prints the per-condition table (seed by seed), the
extremes FINDINGS quotes, which runs each criterion of each gate fails (the calibration), how the final returns
coincide, and the tests on GO counts: per condition pair the sign test over seed pairs (McNemar's exact test: both
cells ran the same seeds, and runs that share a seed are not independent draws), and for pooled comparisons Fisher's
test over runs (which treats them as independent) beside a seed-level sign test.

"Bitwise identical" is judged on the table only: the explosion ablation's table keeps 16 significant bits of each
value (``round_significant``), so two runs that agree there may differ below 2**-16 relative in the original event
files, which were not kept.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from td3exp.report.aggregate import condition_labels, group_by_config
from td3exp.report.criteria import actor_loss_growth, evaluate
from td3exp.report.dataset import read_table
from td3exp.report.gate import GateConfig, load_gate
from td3exp.report.runs import Run
from td3exp.report.stats import compare_go_counts, compare_paired_go
from td3exp.report.windows import after_warmup, median, weighted_mean, windows

GRID = "explosion_ablation"  # the preset of the actor_head x pixel_scale x clip grid


def preset(run: Run) -> str:
    return next((t.split("=", 1)[1] for t in run.label.split() if t.startswith("experiments=")), "")


def cell(run: Run) -> str:
    """A short name of the run's condition: head, pixels, clip, fixes (and the preset outside the ablation)."""
    c = run.config
    clip = c["clip"]
    clip_name = "auto" if clip.get("auto_percentile") else ("none" if clip["max_norm"] is None else "norm1")
    fixes = [name for name, on in (("trunk_norm", c["encoder"]["trunk_norm"]),
                                   ("penalty", c["agent"]["preactivation_penalty"] > 0)) if on]
    name = f"{c['agent']['actor_head']}, {c['encoder']['pixel_scale']} px, {clip_name}" + "".join(
        f" + {f}" for f in fixes)
    return name if preset(run).startswith(GRID) else f"{preset(run)}: {name}"


def fingerprint(run: Run) -> str:
    """A digest of every scalar (tags, steps, values) as the table holds them: equal digests are runs bitwise
    identical in the table (to its precision: 16 significant bits in the explosion ablation's)."""
    digest = hashlib.sha256()
    for tag, series in sorted(run.scalars.items()):
        digest.update(tag.encode() + np.ascontiguousarray(series.steps).tobytes()
                      + np.ascontiguousarray(series.values).tobytes())
    return digest.hexdigest()


def distinct_runs(runs: list[Run]) -> list[Run]:
    """Each run once: a repeat of a condition and seed with bitwise identical scalars is dropped (said so), keeping
    the run named as most runs of its condition are (the grid's, not the fixes sweep's copy of a control)."""
    kept: dict[tuple[str, str, str], Run] = {}
    named = sorted(zip(runs, condition_labels(runs), strict=True), key=lambda pair: pair[0].label != pair[1])
    for run, label in named:
        key = (label, str(run.seed), fingerprint(run))
        if key in kept:
            print(f"counted once (bitwise identical in the table): {run.label} seed={run.seed} == {kept[key].label}")
        else:
            kept[key] = run
    by_data: dict[str, list[Run]] = {}
    for run in kept.values():
        by_data.setdefault(fingerprint(run), []).append(run)
    for same in (r for r in by_data.values() if len(r) > 1):
        print(f"bitwise identical runs (in the table) of different conditions (kept, each is its condition's run): "
              f"{'; '.join(f'{cell(r)} seed {r.seed}' for r in same)}")
    print(f"{len(runs)} runs in the table, {len(kept)} distinct\n")
    return list(kept.values())


def signals(run: Run) -> dict[str, float]:
    grad = windows(run, "grad/actor_cnn")
    assert grad is not None
    saturation = after_warmup(windows(run, "actor/saturation"), 0.25)  # type: ignore[arg-type]
    ratio = after_warmup(windows(run, "update_ratio/actor_cnn"), 0.25)  # type: ignore[arg-type]
    return {"grad_mean": weighted_mean(grad), "grad_max": float(np.max(grad.peaks)),
            "critic_cnn_mean": weighted_mean(windows(run, "grad/critic_cnn")),  # type: ignore[arg-type]
            "saturation": median(saturation), "ratio": median(ratio),
            "critical": float(run.values("alerts/critical")[-1])}  # type: ignore[index]


def exploded(run: Run) -> bool:
    """The actor-CNN gradient norm passed the run's own critical alert level."""
    critical = run.config["monitor"]["thresholds"]["actor_cnn"]["critical"]
    return bool(np.max(run.values("grad/actor_cnn")) > critical)  # type: ignore[arg-type]


def print_table(groups: dict[str, list[Run]], seed_gate: GateConfig, strict: GateConfig) -> None:
    print("| condition | seeds | grad/actor_cnn mean / max | actor-loss growth | median saturation | median "
          "update_ratio/actor_cnn | grad/critic_cnn mean | critical alerts | seed / strict |")
    for group in groups.values():
        rows = [(signals(r), evaluate(r, seed_gate), evaluate(r, strict)) for r in group]
        growth = [next(c.value for c in v.criteria if c.name == "actor_loss_growth") for _, v, _ in rows]

        def col(key: str, fmt: str, rows: list = rows) -> str:
            return " ; ".join(format(s[key], fmt) for s, _, _ in rows)

        print(f"| {cell(group[0])} | {', '.join(str(r.seed) for r in group)} | "
              + " ; ".join(f"{s['grad_mean']:.2g}/{s['grad_max']:.2g}" for s, _, _ in rows)
              + f" | {' ; '.join(growth)} | {col('saturation', '.2f')} | {col('ratio', '.2g')} | "
              f"{col('critic_cnn_mean', '.2g')} | {col('critical', '.0f')} | "
              + " ; ".join(f"{a.verdict}/{b.verdict}" for _, a, b in rows) + " |")


def print_extremes(runs: list[Run], strict: GateConfig) -> None:
    grid = [r for r in runs if preset(r) == GRID]
    tanh = [r for r in grid if r.config["agent"]["actor_head"] == "tanh"]
    if tanh:
        print(f"\ntanh grid runs: {len(tanh)}, largest grad/actor_cnn: {max(signals(r)['grad_max'] for r in tanh):.4g}")
    clipped = [r for r in grid if r.config["agent"]["actor_head"] == "unbounded" and "none" not in cell(r)]
    for pixels in ("unit", "raw", None) if clipped else ():
        chosen = [r for r in clipped if pixels is None or r.config["encoder"]["pixel_scale"] == pixels]
        no_go = sum(evaluate(r, strict).verdict == "NO-GO" for r in chosen)
        print(f"clipped unbounded grid runs ({pixels or 'all'} px): {no_go} of {len(chosen)} NO-GO (strict)")


def print_tanh_gradients(runs: list[Run], strict: GateConfig) -> None:
    """Which tanh runs could have exploded at all: an actor CNN with (next to) no gradient cannot."""
    tanh = [r for r in runs if r.config["agent"]["actor_head"] == "tanh"]
    dead = [r for r in tanh if any(c.name == "actor_cnn_alive" and c.status == "FAIL"
                                   for c in evaluate(r, strict).criteria)]
    alive = [r for r in tanh if r not in dead]
    for name, chosen in (("dead actor CNN (strict actor_cnn_alive fails)", dead), ("live actor CNN", alive)):
        if chosen:
            print(f"tanh runs with a {name}: {len(chosen)} ({sum(preset(r) == GRID for r in chosen)} in the grid), "
                  f"largest grad/actor_cnn {max(signals(r)['grad_max'] for r in chosen):.4g}")


def loss_growth(run: Run) -> float:
    return actor_loss_growth(windows(run, "loss/actor"))  # type: ignore[arg-type]


def print_clipping(runs: list[Run]) -> None:
    """What clipping changed in the unbounded, unit-pixel grid cells, seed by seed: unclipped / clipped."""
    if not any(preset(r) == GRID for r in runs):
        return
    print("\nclipping in the unbounded, unit-pixel grid cells (unclipped / clipped, same seed):")
    for seed in sorted({r.seed for r in runs}):
        by_clip = {cell(r).rsplit(", ", 1)[1]: r for r in runs if preset(r) == GRID and r.seed == seed
                   and r.config["agent"]["actor_head"] == "unbounded" and r.config["encoder"]["pixel_scale"] == "unit"}
        none = by_clip["none"]
        for clip in ("norm1", "auto"):
            clipped = by_clip[clip]
            print(f"  seed {seed}, {clip}: actor-loss growth x{loss_growth(none) / loss_growth(clipped):.3g} "
                  f"(x{loss_growth(clipped):.3g} clipped), median update ratio "
                  f"x{signals(none)['ratio'] / signals(clipped)['ratio']:.3g}, mean grad/actor_cnn "
                  f"x{signals(none)['grad_mean'] / signals(clipped)['grad_mean']:.3g}")


def print_tanh_unit_saturation(runs: list[Run]) -> None:
    """The tanh, unit-pixel runs over time: when the dimension-mean saturation first reached 0.9, and where it ended."""
    chosen = [r for r in runs if r.config["agent"]["actor_head"] == "tanh"
              and r.config["encoder"]["pixel_scale"] == "unit" and not r.config["encoder"]["trunk_norm"]]
    if chosen:
        print("\ntanh, unit-pixel runs: actor/saturation (dimension mean) over the actor updates:")
    for run in chosen:
        series = run.scalars["actor/saturation"]
        updates = series.steps - run.config["agent"]["start_steps"]
        high = np.flatnonzero(series.values >= 0.9)
        quarter = np.array_split(series.values, 4)
        print(f"  {cell(run)} seed {run.seed} (start_steps {run.config['agent']['start_steps']}, "
              f"{int(updates[-1])} updates): first >= 0.9 at update "
              + (f"{int(updates[high[0]])}" if len(high) else "never")
              + f", median per quarter {' ; '.join(f'{np.median(q):.2f}' for q in quarter)}, "
              f"last {series.values[-1]:.2f}")


def print_dead_actors(runs: list[Run], strict: GateConfig) -> None:
    """How far apart each signal puts the dead actor CNNs and the strict-GO runs, and when a dead one last moved."""
    verdicts = [evaluate(r, strict) for r in runs]
    dead = [r for r, v in zip(runs, verdicts, strict=True)
            if any(c.name == "actor_cnn_alive" and c.status == "FAIL" for c in v.criteria)]
    live = [r for r, v in zip(runs, verdicts, strict=True) if v.verdict == "GO"]
    for key in ("grad_mean", "ratio") if dead and live else ():
        top, bottom = max(signals(r)[key] for r in dead), min(signals(r)[key] for r in live)
        print(f"actor_cnn {key}: dead runs ({len(dead)}) <= {top:.3g}, strict-GO runs ({len(live)}) >= {bottom:.3g}"
              + (f": a gap of x{bottom / top:.2f}" if top else ""))
    for run in (r for r in dead if signals(r)["ratio"] == 0):  # a median of exactly 0: did it ever move?
        moving = {t: np.flatnonzero(run.scalars[t].values) for t in ("grad/actor_cnn", "update_ratio/actor_cnn")}
        print(f"  {cell(run)} seed {run.seed}: of {len(run.scalars['update_ratio/actor_cnn'].values)} actor updates, "
              + ", ".join(f"{t} nonzero in {len(i)}" + (f" (updates {i.min() + 1}-{i.max() + 1})" if len(i) else "")
                          for t, i in moving.items()))


def print_q_peaks(runs: list[Run]) -> None:
    """The critic's raw-pixel blow-up per seed: runs of one seed that differ only in the actor peak together."""
    raw = [r for r in runs if r.config["encoder"]["pixel_scale"] == "raw" and not r.config["encoder"]["trunk_norm"]]
    for seed in sorted({r.seed for r in raw}):
        peaks = []
        for run in (r for r in raw if r.seed == seed):
            q1, q2 = run.scalars["q/q1"], run.scalars["q/q2"]
            q = np.abs(np.concatenate([q1.values, q2.values]))
            peaks.append((float(q.max()), int(np.concatenate([q1.steps, q2.steps])[np.argmax(q)])))
        print(f"max |Q| of the {len(peaks)} raw-pixel runs without trunk norm, seed {seed}: "
              f"{min(p for p, _ in peaks):.6g} to {max(p for p, _ in peaks):.6g}, "
              f"at steps {min(s for _, s in peaks)}-{max(s for _, s in peaks)}")


def print_calibration(runs: list[Run], gate: GateConfig) -> None:
    print(f"\n{gate.name} gate: criteria and the runs they fail (of {len(runs)} distinct runs; * the dimension mean "
          "actor/saturation, for runs without actor/saturation_max):")
    flagged: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for c in evaluate(run, gate).criteria:
            if c.status == "FAIL":
                value = c.value.replace(" (dimension mean; no actor/saturation_max)", "*")
                flagged.setdefault(c.name, {}).setdefault(cell(run), []).append(f"{run.seed}: {value}")
    for name, cells in flagged.items():
        print(f"  {name}: {sum(map(len, cells.values()))} runs: "
              + "; ".join(f"{k} (seed {', '.join(v)})" for k, v in cells.items()))


def print_returns(runs: list[Run]) -> None:
    """How many runs of a seed share their final evaluation return with another run of that seed."""
    episodes = " or ".join(map(str, sorted({r.config["eval"]["episodes"] for r in runs})))
    print(f"\nfinal eval/return (a mean over {episodes} evaluation episodes) shared within a seed:")
    for seed in sorted({r.seed for r in runs}):
        for name in ("all", *sorted({preset(r) for r in runs})):
            chosen = [r for r in runs if r.seed == seed and name in ("all", preset(r))]
            counts = Counter(float(r.values("eval/return")[-1]) for r in chosen)  # type: ignore[index]
            print(f"  seed {seed}, {name}: {len(chosen)} runs, {sum(n for n in counts.values() if n > 1)} share a "
                  f"value, {len(counts)} distinct values")


def seed_level(runs_a: list[Run], runs_b: list[Run], outcome: Callable[[Run], bool]) -> str:
    """Fisher's exact test over runs, and the sign test over seeds: the seed is the independent unit."""
    fisher = compare_go_counts(sum(map(outcome, runs_a)), len(runs_a), sum(map(outcome, runs_b)), len(runs_b))
    seeds = sorted({r.seed for r in runs_a} & {r.seed for r in runs_b})
    diffs = [np.mean([outcome(r) for r in runs_a if r.seed == s]) - np.mean([outcome(r) for r in runs_b if r.seed == s])
             for s in seeds]
    nonzero = [d for d in diffs if d != 0]
    sign = binomtest(sum(d > 0 for d in nonzero), len(nonzero), alternative="greater").pvalue if nonzero else 1.0
    return (f"pooled over runs {fisher.go_a}/{fisher.n_a} vs {fisher.go_b}/{fisher.n_b}, Fisher p = {fisher.p:.2g} "
            f"(treats runs as independent); seed level: A ahead in {sum(d > 0 for d in diffs)} of {len(seeds)} seeds, "
            f"sign test one-sided p = {sign:.3g} (floor with {len(seeds)} seeds: {0.5 ** len(seeds):.3g})")


def seed_pairs(runs_a: list[Run], runs_b: list[Run], outcome: Callable[[Run], bool], what: str = "GO") -> str:
    """Two cells' outcomes seed by seed (runs of one seed share its environment and initialization): McNemar's exact
    test, the two-sided sign test over the seed pairs whose outcomes differ."""
    seeds = sorted({r.seed for r in runs_a} & {r.seed for r in runs_b})
    a = [outcome(next(r for r in runs_a if r.seed == s)) for s in seeds]
    b = [outcome(next(r for r in runs_b if r.seed == s)) for s in seeds]
    return str(compare_paired_go(a, b)).replace(" GO,", f" {what},", 1)


def print_tests(runs: list[Run], strict: GateConfig) -> None:
    pairs: list[str] = []  # paired per condition pair: both cells ran the same seeds
    by_cell: dict[str, list[Run]] = {}
    for run in runs:
        by_cell.setdefault(cell(run), []).append(run)
    for a, b in (("tanh, raw px, none + trunk_norm + penalty", "tanh, raw px, none"),
                 ("tanh, raw px, none + trunk_norm", "tanh, raw px, none"),
                 ("tanh, raw px, none + trunk_norm + penalty", "tanh, raw px, none + trunk_norm")):
        if a in by_cell and b in by_cell:
            pairs.append(f"strict GO, {a} vs {b}: "
                         f"{seed_pairs(by_cell[a], by_cell[b], lambda r: evaluate(r, strict).verdict == 'GO')}")
    a, b = "unbounded, raw px, none + trunk_norm", "unbounded, raw px, none"
    if a in by_cell and b in by_cell:
        pairs.append(f"actor-CNN explosion (max above the critical level), {a} vs {b}: "
                     f"{seed_pairs(by_cell[a], by_cell[b], exploded, 'exploded')}")
    pooled: list[str] = []  # a modelling choice: the pooled factor is assumed not to matter
    grid_tanh = [r for r in runs if preset(r) == GRID and r.config["agent"]["actor_head"] == "tanh"]
    unit = [r for r in grid_tanh if r.config["encoder"]["pixel_scale"] == "unit"]
    raw = [r for r in grid_tanh if r.config["encoder"]["pixel_scale"] == "raw"]
    if unit and raw:
        pooled.append(f"strict GO, tanh unit px (A) vs raw px, pooled over clip: "
                      f"{seed_level(unit, raw, lambda r: evaluate(r, strict).verdict == 'GO')}")
    fixes = [r for r in runs if r.config["encoder"]["pixel_scale"] == "raw" and r.config["clip"]["max_norm"] is None
             and not r.config["clip"].get("auto_percentile")]
    trunk = [r for r in fixes if r.config["encoder"]["trunk_norm"]]
    if trunk:
        plain = [r for r in fixes if not r.config["encoder"]["trunk_norm"]]
        pooled.append(f"no critical alert, raw px unclipped, trunk norm (A) vs none, pooled over head and penalty: "
                      f"{seed_level(trunk, plain, lambda r: signals(r)['critical'] == 0)}")
    for title, lines in (("sign test (McNemar's exact) over the seed pairs of each condition pair (3 pairs cannot "
                          "reach p < 0.05: floor 0.25)", pairs),
                         ("pooled comparisons (the pooled factor is assumed not to matter)", pooled)):
        if lines:
            print(f"\n{title}:\n  " + "\n  ".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path)
    runs = distinct_runs(read_table(parser.parse_args().table))
    seed_gate, strict = load_gate("seed"), load_gate("strict")
    print_table(group_by_config(runs), seed_gate, strict)
    print_extremes(runs, strict)
    print_tanh_gradients(runs, strict)
    print_clipping(runs)
    print_tanh_unit_saturation(runs)
    print_dead_actors(runs, strict)
    print_q_peaks(runs)
    for gate in (seed_gate, strict):
        print_calibration(runs, gate)
    print_returns(runs)
    print_tests(runs, strict)


if __name__ == "__main__":
    main()
