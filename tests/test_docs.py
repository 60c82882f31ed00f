"""The README documents the metric contract and the commands it promises."""

from __future__ import annotations

from td3exp.metrics import CONTRACT

from .conftest import REPO


def test_readme_metric_table_names_every_contract_tag() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [tag for tag in CONTRACT if f"`{tag}`" not in readme]
    assert not missing, f"README metric table lacks {missing}"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make train" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
