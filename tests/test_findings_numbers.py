"""The script behind every number in FINDINGS.md runs on both committed result tables and reproduces the counts the
text quotes (a changed report or table that moves them fails here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

RESULTS = REPO / "experiments" / "results"


@pytest.mark.parametrize(("table", "expected"), [
    ("explosion_ablation", ["56 runs in the table, 54 distinct", "p = 0.125"]),
    ("seed_5k", ["6 runs in the table, 6 distinct"]),
])
def test_findings_numbers_runs_on_the_committed_tables(table: str, expected: list[str]) -> None:
    script, data = RESULTS / "findings_numbers.py", RESULTS / table / "scalars.parquet"
    result = subprocess.run([sys.executable, str(script), str(data)], cwd=REPO, capture_output=True, text=True,
                            timeout=180, env={"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-2000:]
    for line in expected:
        assert line in result.stdout, line
