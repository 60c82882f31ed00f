"""The stability pruner (hydra.sweeper.pruner.name=stability): its rule on flushed values, and a real sweep in which
trials that raise a critical alert or stop on non-finite values are PRUNED with the reason on the trial."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.trial import TrialState

from td3exp.sweep_trial import STORAGE_ENV, StabilityRule, make_pruner

from .conftest import read_scalars, run_td3exp
from .test_optuna_sweeper import sweep

HEALTHY = {"alerts/critical": 0.0, "actor/saturation": 0.2}
SATURATED = {"alerts/critical": 0.0, "actor/saturation": 0.99}


def test_a_critical_alert_stops_at_once() -> None:
    rule = StabilityRule(saturation_critical=0.95)
    assert rule.verdict(100, HEALTHY) is None
    assert "critical gradient alert by step 200" in (rule.verdict(200, {**HEALTHY, "alerts/critical": 3.0}) or "")


def test_saturation_counts_after_warm_up_and_only_in_a_row() -> None:
    rule = StabilityRule(saturation_critical=0.95, warmup_steps=100, patience=2)
    assert rule.verdict(50, {"episode/return": 1.0}) is None  # no update yet: the warm-up has not started
    assert [rule.verdict(step, SATURATED) for step in (60, 110, 160)] == [None, None, None]  # warm-up ends at 160
    assert rule.verdict(170, HEALTHY) is None  # a healthy flush resets the count
    assert rule.verdict(180, SATURATED) is None
    assert "actor saturated (0.99 > 0.95) at 2 flushes in a row by step 190" in (rule.verdict(190, SATURATED) or "")


def test_one_pinned_dimension_is_pruned_though_the_dimension_mean_is_half() -> None:
    rule = StabilityRule(saturation_critical=0.95, warmup_steps=0, patience=2)
    pinned = {"alerts/critical": 0.0, "actor/saturation": 0.5, "actor/saturation_max": 1.0}
    assert rule.verdict(10, pinned) is None
    assert "actor saturated (1.00 > 0.95) at 2 flushes in a row by step 20" in (rule.verdict(20, pinned) or "")


def test_runs_without_saturation_max_fall_back_to_the_dimension_mean() -> None:
    rule = StabilityRule(saturation_critical=0.95, warmup_steps=0, patience=1)
    assert rule.verdict(10, {"alerts/critical": 0.0, "actor/saturation": 0.5}) is None
    assert "actor saturated (0.99 > 0.95)" in (rule.verdict(20, SATURATED) or "")


def test_stability_defers_evaluations_to_the_wrapped_pruner() -> None:
    assert isinstance(make_pruner({"name": "stability", "wrap": "median"}), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner({"name": "stability"}), optuna.pruners.NopPruner)


def test_unstable_trials_are_pruned_with_their_reason_and_stop_early(tmp_path: Path) -> None:
    # a critical threshold no gradient stays under; a reward so large that the first update is non-finite
    result, study = sweep(tmp_path, "hydra.sweeper.sampler.name=grid", "hydra.sweeper.n_trials=4",
                          "hydra.sweeper.pruner.name=stability", "monitor.max_consecutive_nonfinite=1",
                          "reward.normalize=none", "monitor.thresholds.critic.warning=1e-10",
                          "monitor.thresholds.critic.critical=choice(1e9,1e-9)",
                          "reward.weights.progress=choice(0.6,1e300)", "logger.log_every=10")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = {(t.params["monitor.thresholds.critic.critical"], t.params["reward.weights.progress"]): t
              for t in study.get_trials()}
    assert trials[1e9, 0.6].state == TrialState.COMPLETE
    assert all(trials[key].state == TrialState.PRUNED for key in ((1e-9, 0.6), (1e9, 1e300), (1e-9, 1e300)))
    assert trials[1e-9, 0.6].user_attrs["pruned"].startswith("critical gradient alert by step 50")
    assert trials[1e9, 1e300].user_attrs["pruned"].startswith("stopped on non-finite values")
    for key in ((1e-9, 0.6), (1e9, 1e300)):
        run_dir = next((tmp_path / "multirun").glob(f"*/*/*,trial={trials[key].number}"))
        assert max(step for series in read_scalars(run_dir).values() for step, _ in series) < 60  # stopped early


# raw pixels saturate the tanh actor from its first update; no gradient alert may prune first
SATURATING = [
    "agent.start_steps=40", "agent.batch_size=16", "agent.buffer_size=500", "eval.every=1000", "eval.episodes=1",
    "env.max_episode_steps=20", "logger.log_every=10", "logger.wandb.mode=disabled", "logger.progress_bar=false",
    "encoder.pixel_scale=raw", "monitor.saturation.warning=0.01", "monitor.saturation.critical=0.02",
    *(f"monitor.thresholds.{m}.{level}=1e30" for m in ("actor", "actor_cnn", "critic", "critic_cnn")
      for level in ("warning", "critical")),
]


def test_a_resumed_job_keeps_the_stability_pruners_count(tmp_path: Path) -> None:
    """Flushes at steps 50 and 60 count 2 of 3 saturated flushes; the job resumed from its step-60 checkpoint is
    pruned at its first flush (70), not after 3 more (90) as it would be had the count restarted."""
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="test", storage=db, direction="maximize")
    study.set_user_attr("pruner", {"name": "stability", "saturation_warmup_steps": 0, "saturation_patience": 3})
    trial = study.ask()
    env = {**os.environ, STORAGE_ENV: db}
    run = ["trial.study_name=test", f"trial.number={trial.number}", *SATURATING, f"hydra.run.dir={tmp_path / 'run'}"]
    first = run_td3exp(["total_steps=60", *run], cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_td3exp(["total_steps=90", *run], cwd=tmp_path, env=env)
    assert "td3exp: resumed from" in resumed.stderr and resumed.returncode != 0
    pruned = study.get_trials()[0].user_attrs["pruned"]
    assert "at 3 flushes in a row by step 70" in pruned, pruned
