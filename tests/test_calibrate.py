"""The gate's calibration and its task-scaled criteria on planted runs whose right answers are known, written as real
TensorBoard event files (tests/test_report.py's writer)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from td3exp.calibrate.__main__ import main as calibrate_main
from td3exp.calibrate.horizon import horizon_summaries, judge, median_rule
from td3exp.calibrate.measures import clustered_auc_difference_ci
from td3exp.report.criteria import evaluate, learning_metric
from td3exp.report.gate import load_gate
from td3exp.report.runs import Run, Series, load_run, until
from td3exp.report.scale import q_limit

from .test_report import healthy_history, write_run

STEPS, HORIZON = 3000, 2000


def planted(root: Path, kind: str, condition: str, seed: int, final_return: float = 50.0) -> Path:
    """healthy: GO throughout; exploding: |Q| past the seed gate's 200 before the horizon, NaN after it; missed:
    healthy up to the horizon, NaN after it (a failure the gate cannot see at the horizon)."""
    history = healthy_history(STEPS, seed=seed)
    if kind == "exploding":
        for tag in ("q/q1", "q/q2"):
            history[tag] = [(s, 20.0 + s) for s, _ in history[tag]]
    if kind in ("exploding", "missed"):
        history["loss/critic"] = [(s, float("nan") if s >= 2800 else v) for s, v in history["loss/critic"]]
    history["eval/return"] = [(1000, 10.0), (2000, 20.0), (STEPS, final_return)]
    return write_run(root / f"{kind}_{condition}_{seed}", history, STEPS,
                     [f"clip={condition}", "agent.gamma=0.99", "reward.normalize=none"], seed=seed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibrate")
    for seed in range(3):
        planted(root, "exploding", "none", seed)
        planted(root, "healthy", "norm1", seed)
    planted(root, "missed", "auto", 0)
    (root / "nonfinite.yaml").write_text("name: nonfinite\nnonfinite: true\n")
    return root


def judged(paths: list[Path], outcome_failed: list[bool], gate: str = "seed", horizon: int = HORIZON):
    loaded = [load_run(p) for p in paths]
    return judge(loaded, [p.name for p in paths], outcome_failed, load_gate(gate), horizon)


def test_a_score_that_separates_failures_perfectly_has_auc_1(runs: Path) -> None:
    paths = sorted(runs.glob("exploding_*")) + sorted(runs.glob("healthy_*"))
    at_h = judged(paths, [True] * 3 + [False] * 3)
    assert [j.verdict for j in at_h] == ["NO-GO"] * 3 + ["GO"] * 3
    gate = horizon_summaries(at_h, reps=200)[0]
    assert (gate.tp, gate.fp, gate.fn, gate.tn) == (3, 0, 0, 3) and gate.auc == 1.0
    assert gate.auc_ci is not None and (gate.auc_ci.low, gate.auc_ci.high) == (1.0, 1.0)
    assert gate.compute_saved == pytest.approx(3 * (STEPS - HORIZON) / (3 * STEPS))
    assert gate.successes_lost == 0 and gate.sensitivity.low is not None and gate.sensitivity.low < 1


def test_a_score_independent_of_the_outcome_has_auc_one_half(tmp_path: Path) -> None:
    # identical histories (equal gate scores); the outcome is the final return alone
    paths = [planted(tmp_path / f"{c}{r:g}", "healthy", c, 0, final_return=r) for c in ("norm1", "norm10")
             for r in (10.0, 90.0)]
    at_h = judged(paths, [True, False, True, False])
    assert len({j.score for j in at_h}) == 1
    gate, early, always, random = horizon_summaries(at_h, reps=200)
    assert gate.auc == 0.5 and random.auc == 0.5 and always.tp == always.fp == 0
    assert early.tp == 0  # every run evaluated 20 at step 2000: none is below the others' median


def test_a_failure_the_gate_misses_is_a_false_negative(runs: Path, capsys: pytest.CaptureFixture) -> None:
    out = runs / "out"
    code = calibrate_main([str(runs), "--outcome", str(runs / "nonfinite.yaml"), "--horizons", f"{HORIZON},{STEPS}",
                           "--out", str(out), "--bootstrap-reps", "200"])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    gate = next(r for r in rows if r["method"].startswith("gate") and r["horizon"] == str(HORIZON))
    assert (gate["tp"], gate["fn"], gate["fp"], gate["tn"]) == ("3", "1", "0", "3")
    assert float(gate["sensitivity"]) == 0.75
    assert gate["loco_conditions"] == "2"  # without clip=norm1 (every success) no success is left: not usable
    missed = next(r for r in csv.DictReader((out / "runs.csv").open()) if "clip=auto" in r["run"])
    assert (missed["failed"], missed["verdict"], missed["stopped"]) == ("1", "GO", "0")
    assert missed["failing"] == "" and "non-finite" in missed["why_failed"]  # why it failed, what the gate saw
    caught = next(r for r in csv.DictReader((out / "runs.csv").open()) if "clip=none" in r["run"])
    assert caught["verdict"] == "NO-GO" and caught["failing"].startswith("q_abs_max")
    report = (out / "calibration.md").read_text()
    assert "## Horizon 2,000 steps" in report and "Horizon 3,000" not in report  # no run is longer than 3,000
    assert (out / "calibration.html").is_file() and "no run is longer than it" in report
    assert "Gate `seed` from " in report and "(sha256 `" in report  # which gate file, frozen how
    assert "Every run's device: " in report and "MIXED" not in report


def test_the_gate_against_early_return_is_a_paired_difference_with_its_interval() -> None:
    """A score that ranks every failure first against one that ranks them at random, over 4 conditions."""
    y = [True, True, False, False] * 4
    conditions = [c for c in "abcd" for _ in range(4)]
    perfect, flat = [2.0, 2.0, 1.0, 1.0] * 4, [1.0] * 16
    ci = clustered_auc_difference_ci(perfect, flat, y, conditions, reps=300)
    assert ci.low == ci.high == 0.5 and "4 conditions cannot bound it" in ci.note  # 1 - 0.5 in every resample
    noisy = [2.0, 1.0, 1.5, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0]
    ci = clustered_auc_difference_ci(perfect, noisy, y, conditions, reps=300)
    assert ci.low is not None and ci.high is not None and 0 <= ci.low < ci.high <= 1 and "300 of 300" in ci.note


def test_one_condition_makes_the_auc_ci_not_computable(runs: Path) -> None:
    at_h = judged(sorted(runs.glob("exploding_*"))[:1] + sorted(runs.glob("healthy_*"))[:1], [True, False])
    at_h[1].run.label = at_h[0].run.label
    gate = horizon_summaries(at_h, reps=50)[0]
    assert gate.auc == 1.0 and gate.auc_ci is not None and "not computable" in gate.auc_ci.note
    assert gate.loco is None


def test_the_horizon_cut_ignores_data_after_it(runs: Path) -> None:
    run = load_run(runs / "missed_auto_0")
    cut = until(run, HORIZON)
    assert cut.last_step == HORIZON and all(s.steps.max() <= HORIZON for s in cut.scalars.values())
    assert evaluate(cut, load_gate("seed")).verdict == "GO" and evaluate(run, load_gate("seed")).verdict == "NO-GO"


@pytest.mark.parametrize(("bad", "message"), [
    (["--horizons", "soon"], "--horizons"),
    (["--outcome", "no_such_outcome"], "no_such_outcome"),
    (["--gate", "no_such_gate"], "no_such_gate"),
])
def test_bad_input_exits_2_with_one_line(runs: Path, capsys: pytest.CaptureFixture, bad: list[str],
                                         message: str) -> None:
    args = [str(runs / "healthy_norm1_0"), "--outcome", str(runs / "nonfinite.yaml"), "--out", str(runs / "x"), *bad]
    assert calibrate_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def scaled_q(tmp_path: Path, overrides: list[str], returns_scale: float = 1.0, q: float = 50.0):
    history = healthy_history(STEPS)  # episodes of 0.1 reward per step, finished from step 1,500 on
    history["episode/return"] = [(s, v * returns_scale) for s, v in history["episode/return"] if s >= 1500]
    history["episode/length"] = [(s, v) for s, v in history["episode/length"] if s >= 1500]
    for tag in ("q/q1", "q/q2"):
        history[tag] = [(s, q) for s, _ in history[tag]]
    run = load_run(write_run(tmp_path, history, STEPS, overrides))
    return run, next(c for c in evaluate(run, load_gate("scaled")).criteria if c.name == "q_abs_max")


def test_auto_q_limit_is_the_reward_bound_for_a_clipped_reward(tmp_path: Path) -> None:
    run, q = scaled_q(tmp_path, ["reward.normalize=clip", "reward.clip_range=5", "agent.gamma=0.9"], q=60.0)
    assert q_limit(run, "auto", 2.0).value == pytest.approx(5 / (1 - 0.9))  # type: ignore[union-attr]
    assert q.status == "FAIL" and q.threshold.startswith("< 50 (auto: reward.normalize=clip")
    assert q.score == pytest.approx(60 / 50)


def test_auto_q_limit_follows_the_returns_for_an_unbounded_reward(tmp_path: Path) -> None:
    config = ["reward.normalize=none", "agent.gamma=0.99"]
    small, q_small = scaled_q(tmp_path / "small", config)  # 0.1 reward per step: limit 2 x 0.1 / 0.01 = 20
    large, q_large = scaled_q(tmp_path / "large", config, returns_scale=100.0)  # limit 2,000
    lengths, returns = small.scalars["episode/length"].values, small.scalars["episode/return"].values
    per_step = float(np.max(np.abs(returns) / lengths))
    assert q_limit(small, "auto", 2.0).value == pytest.approx(2 * per_step / (1 - 0.99))  # type: ignore[union-attr]
    assert q_limit(large, "auto", 2.0).value == pytest.approx(200 * per_step / (1 - 0.99))  # type: ignore[union-attr]
    assert (q_small.status, q_large.status) == ("FAIL", "PASS") and "episode/return" in q_large.threshold
    # cut before the first finished episode there is nothing to scale by: UNKNOWN, never a silent pass
    early = next(c for c in evaluate(until(small, 1200), load_gate("scaled")).criteria if c.name == "q_abs_max")
    assert early.status == "UNKNOWN" and "no finished episode" in early.threshold


def test_learning_metric_auto_follows_the_task(tmp_path: Path) -> None:
    # a CarRacing policy that finishes laps: shorter episodes, higher native return
    history = healthy_history(STEPS)
    history["episode/length"] = [(s, 1000.0 - s / 10) for s in range(500, STEPS + 1, 500)]
    history["episode/native_return"] = [(s, s / 10) for s in range(500, STEPS + 1, 500)]
    gate = tmp_path / "learning.yaml"
    gate.write_text("name: learning\nlearning_metric: auto\nlearning_after_step: 1500\n")
    status = {}
    for env in ("carla", "car_racing", "gymnasium"):
        run = load_run(write_run(tmp_path / env, history, STEPS, [f"env.name={env}"]))
        assert learning_metric(run, "auto")[0] == ("episode/length" if env == "carla" else "episode/native_return")
        status[env] = next(c.status for c in evaluate(run, load_gate(str(gate))).criteria
                           if c.name == "learning_improving")
    assert status == {"carla": "FAIL", "car_racing": "PASS", "gymnasium": "PASS"}


def test_a_limit_that_is_neither_a_number_nor_auto_is_a_one_line_error(tmp_path: Path) -> None:
    from td3exp.report.runs import ReportInputError

    gate = tmp_path / "typo.yaml"
    gate.write_text("q_abs_max: automatic\n")
    with pytest.raises(ReportInputError, match="q_abs_max='automatic'; use a number, auto or null"):
        load_gate(str(gate))
    gate.write_text("q_abs_max: auto\ncritic_loss_mean_max: 300\n")
    assert (load_gate(str(gate)).q_abs_max, load_gate(str(gate)).critic_loss_mean_max) == ("auto", 300)


def eval_run(evals: dict[int, float]) -> Run:
    steps = np.array(sorted(evals), dtype=np.int64)
    return Run("planted", "c", {}, {"eval/return": Series(steps, np.array([evals[s] for s in steps]))},
               int(steps[-1]), None)


@pytest.mark.parametrize("evals, horizon", [
    ({5000: 5.0}, 5000),                  # below the others' median at 5,000: pruned
    ({5000: 25.0}, 5000),                 # above it: kept
    ({5000: math.nan}, 5000),             # every value NaN: Optuna prunes
    ({5000: 18.0, 10000: math.nan}, 10000),  # the latest step (10,000) counts even when its value is NaN
    ({5000: math.inf}, 5000),             # an infinite best is never below the median
    ({5000: 5.0, 10000: 30.0}, 5000),     # values after the horizon are not seen
])
def test_the_early_return_baseline_decides_as_optunas_median_pruner(evals: dict[int, float], horizon: int) -> None:
    """The baseline against the real optuna.pruners.MedianPruner on a study holding the other runs as trials."""
    others = [{5000: 10.0, 10000: 10.0}, {5000: 20.0, 10000: 12.0}, {5000: 30.0, 10000: math.nan}]
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=0, n_warmup_steps=0))
    for values in others:
        study.add_trial(optuna.trial.create_trial(value=0.0, params={}, distributions={},
                                                  intermediate_values=values))
    trial = study.ask()
    for step, value in sorted(evals.items()):
        if step <= horizon:
            trial.report(value, step)
    margin = median_rule(eval_run(evals), [eval_run(o) for o in others], horizon)
    assert margin is not None and (margin > 0) == trial.should_prune()
