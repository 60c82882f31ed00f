"""Secrets stay out of a sweep's files: the storage URL (it may hold a database password) and the W&B API key.
A real sweep with offline W&B runs; every file under the sweep directory is searched for the markers."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

from .conftest import run_td3exp
from .test_optuna_sweeper import TRIAL

URL_MARKER = "urlsecret7c1e"
KEY_MARKER = "keysecret" + "9" * 31  # W&B API keys are 40 characters
POSTGRES_URL = os.environ.get("TD3EXP_POSTGRES_URL")


def storages(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "db").mkdir()
    # SQLite ignores the query argument, yet it is part of the URL a leak would copy
    urls = {"sqlite": f"sqlite:///{tmp_path / 'db' / 'optuna.db'}?application_name={URL_MARKER}"}
    if POSTGRES_URL:  # the test database's password is "td3exp", everywhere in the tree: mark the URL's query
        urls["postgresql"] = f"{POSTGRES_URL}?application_name={URL_MARKER}"
    return urls


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_no_file_of_a_sweep_holds_the_storage_url_or_the_wandb_key(tmp_path: Path, kind: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "postgresql" and not POSTGRES_URL:
        pytest.skip("needs TD3EXP_POSTGRES_URL: `bash tests/postgres_setup.sh` (root); .ci/run does this")
    url = storages(tmp_path)[kind]
    study_name = f"secrets-{tmp_path.name}"[:60]
    monkeypatch.setenv("WANDB_API_KEY", KEY_MARKER)
    result = run_td3exp(["--multirun", "hydra/sweeper=optuna", f"hydra.sweeper.storage='{url}'",
                         f"hydra.sweeper.study_name={study_name}", "hydra.sweeper.n_trials=1",
                         "clip=choice(none,norm1)", *TRIAL, "logger.wandb.mode=offline"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name=study_name, storage=url)
    try:
        (trial,) = study.get_trials()
        assert trial.intermediate_values  # the job found its study without the URL in its config
    finally:
        optuna.delete_study(study_name=study_name, storage=url)
    files = [p for p in (tmp_path / "multirun").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "hydra.yaml" for p in files)
    leaks = [p for p in files for marker in (URL_MARKER, KEY_MARKER) if marker.encode() in p.read_bytes()]
    assert leaks == []
    assert URL_MARKER not in result.stdout + result.stderr and KEY_MARKER not in result.stdout + result.stderr
