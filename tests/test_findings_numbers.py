"""The script behind every number in FINDINGS.md runs on both committed result tables and reproduces the counts the
text quotes (a changed report or table that moves them fails here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

RESULTS = REPO / "experiments" / "results"


@pytest.mark.parametrize(("table", "expected"), [
    ("explosion_ablation", [
        "56 runs in the table, 54 distinct", "p = 0.125",
        # which tanh runs could explode at all (FINDINGS 1)
        "tanh runs with a dead actor CNN (strict actor_cnn_alive fails): 10 (9 in the grid), largest grad/actor_cnn "
        "12.07",
        "tanh runs with a live actor CNN: 17 (9 in the grid), largest grad/actor_cnn 1230",
        "tanh, raw px, none seed 1: of 1000 actor updates, grad/actor_cnn nonzero in 0,",
        "tanh, raw px, auto seed 2: of 1000 actor updates, grad/actor_cnn nonzero in 126 ",
        # what clipping changed (FINDINGS 2)
        "seed 0, norm1: actor-loss growth x4.45 (x1.58e+03 clipped), median update ratio x1.26, "
        "mean grad/actor_cnn x8.65",
        "seed 0, auto: actor-loss growth x0.705 (x9.97e+03 clipped), median update ratio x1.14, "
        "mean grad/actor_cnn x2.81",
        "seed 1, norm1: actor-loss growth x243 (x3.52e+04 clipped), median update ratio x2.47, "
        "mean grad/actor_cnn x110",
        "seed 1, auto: actor-loss growth x42.5 (x2.01e+05 clipped), median update ratio x1.94, "
        "mean grad/actor_cnn x27.6",
        "seed 2, norm1: actor-loss growth x886 (x2.96e+05 clipped), median update ratio x2.5, "
        "mean grad/actor_cnn x301",
        "seed 2, auto: actor-loss growth x3.06e+03 (x8.56e+04 clipped), median update ratio x2.63, "
        "mean grad/actor_cnn x929",
        # unit-pixel tanh actors saturate early and come back here (FINDINGS 3)
        "tanh, unit px, none seed 0 (start_steps 1000, 2000 updates): first >= 0.9 at update 58, median per quarter "
        "0.48 ; 0.44 ; 0.30 ; 0.08, last 0.05",
        "tanh, unit px, none seed 1 (start_steps 1000, 2000 updates): first >= 0.9 at update 188",
        "last 0.66",
        # paired per-cell tests (FINDINGS 3 and 4)
        "3/3 vs 0/3 GO, sign test on 3 seed pairs (B ahead in 0, A in 3) p = 0.25 (floor 0.25)",
        "3/3 vs 2/3 GO, sign test on 3 seed pairs (B ahead in 0, A in 1) p = 1 (floor 0.25)",
        "0/3 vs 2/3 exploded, sign test on 3 seed pairs (B ahead in 2, A in 0) p = 0.5 (floor 0.25)",
    ]),
    ("seed_5k", [
        "6 runs in the table, 6 distinct",
        # the same configuration as the grid's seed-0 unclipped tanh, unit-pixel run, never recovering (FINDINGS 3)
        "seed_5k_baseline: tanh, unit px, none seed 0 (start_steps 2500, 2500 updates): first >= 0.9 at update 52, "
        "median per quarter 0.93 ; 1.00 ; 1.00 ; 1.00, last 1.00",
    ]),
])
def test_findings_numbers_runs_on_the_committed_tables(table: str, expected: list[str]) -> None:
    script, data = RESULTS / "findings_numbers.py", RESULTS / table / "scalars.parquet"
    result = subprocess.run([sys.executable, str(script), str(data)], cwd=REPO, capture_output=True, text=True,
                            timeout=180, env={"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-2000:]
    for line in expected:
        assert line in result.stdout, line
