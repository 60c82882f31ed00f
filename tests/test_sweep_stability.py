"""The stability pruner (hydra.sweeper.pruner.name=stability): its rule on flushed values, and a real sweep in which
trials that raise a critical alert or stop on non-finite values are PRUNED with the reason on the trial."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from td3exp.sweep_trial import StabilityRule, make_pruner

from .conftest import read_scalars
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
