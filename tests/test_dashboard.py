"""Dashboards: run names from conditions (also through real Hydra composition), the panels derived from the metric
contract, and the W&B workspace built offline (saving it needs network and a login, which tests do not have)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from wandb_workspaces.expr import Metric, string_to_filterexpr_list

from td3exp.config import register_configs
from td3exp.dashboard.names import MAX_DIR_NAME, condition_name, job_dir, register_resolvers, run_name
from td3exp.dashboard.panels import sections
from td3exp.dashboard.wandb_workspace import build_workspace
from td3exp.metrics import CONTRACT, WINDOW_CONTRACT

from .conftest import REPO


def test_names_say_the_condition_without_bookkeeping_keys() -> None:
    overrides = ["clip=none", "seed=1", "logger.wandb.mode=offline", "trial.study_name=s", "trial.number=4",
                 "device=cpu", "checkpoint.every=500", "resume=outputs/a", "+experiments=explosion_ablation"]
    assert condition_name(overrides) == "clip=none +experiments=explosion_ablation"
    assert run_name(overrides) == "clip=none +experiments=explosion_ablation seed=1"
    assert job_dir(overrides) == "clip=none,+experiments=explosion_ablation,seed=1,trial=4"
    assert (run_name([]), run_name(["seed=2"]), job_dir(["seed=2"])) == ("defaults", "seed=2", "seed=2")
    assert condition_name(["debug.inject_nonfinite_at=3"]) == "debug.inject_nonfinite_at=3"  # changes the run


def test_job_directories_are_file_system_safe_and_distinct_when_cut() -> None:
    a = job_dir(["logger.x=1", "env.path='/data/my maps/a b'", *[f"agent.k{i}={i}" for i in range(40)], "seed=0"])
    b = job_dir(["env.path='/data/my maps/a b'", *[f"agent.k{i}={i}" for i in range(40)], "agent.k0=9", "seed=0"])
    for name in (a, b):
        assert "/" not in name and " " not in name and "'" not in name and name.endswith(",seed=0")
        assert len(name) <= MAX_DIR_NAME + len(",seed=0")
    assert a != b  # same first 111 characters, different conditions: the hash tells them apart


def test_the_sweep_subdir_resolves_to_the_job_directory_name() -> None:
    register_resolvers()
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["clip=none", "seed=3"], return_hydra_config=True)
    assert cfg.hydra.sweep.subdir == "clip=none,seed=3"


def test_panels_cover_the_metric_contract_once_in_named_sections() -> None:
    drawn = [tag for s in sections() for p in s.panels for tag in p.tags]
    assert sorted(drawn) == sorted([*CONTRACT, *WINDOW_CONTRACT])  # every tag, once
    assert "Other" not in [s.title for s in sections()]  # each tag has a section that says what it is
    grads = next(s for s in sections() if s.title.startswith("Gradient norms"))
    assert [p.tags for p in grads.panels][1] == ("grad/actor_cnn", "grad_max/actor_cnn", "grad_clipped/actor_cnn",
                                                 "grad_clipped_max/actor_cnn")  # window means beside window maxima


def test_wandb_workspace_has_the_standard_panels_and_groups_runs_by_condition() -> None:
    workspace = build_workspace("my-team", "td3exp", group="explosion")
    assert (workspace.entity, workspace.project) == ("my-team", "td3exp")
    assert [s.name for s in workspace.sections] == [s.title for s in sections()]
    for built, section in zip(workspace.sections, sections(), strict=True):
        assert [(p.title, list(p.y)) for p in built.panels] == [(p.title, list(p.tags)) for p in section.panels]
    assert [key.name for key in workspace.runset_settings.groupby] == ["condition"]
    # the workspace keeps its filters as an expression string; parsed back, they are one filter on the run's group
    filters = string_to_filterexpr_list(workspace.runset_settings.filters)
    assert [(type(f.key), f.key.name, f.op, f.value) for f in filters] == [(Metric, "Group", "=", "explosion")]
    no_group = build_workspace("my-team", "td3exp").runset_settings.filters
    assert string_to_filterexpr_list(no_group) == []  # no group: every run of the project
