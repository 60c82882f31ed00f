"""The gate's criteria on planted histories in real TensorBoard event files: the strict gate's dead-actor signals,
layouts a criterion cannot apply to, and gate files with one side of a criterion disabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from td3exp.report.__main__ import main as report_main

from .test_report import healthy_history, verdict_of, write_run


def test_planted_saturated_actor_fails_strict_and_passes_seed(tmp_path: Path) -> None:
    history = healthy_history(5000)
    updates = [s for s, _ in history["grad/actor_cnn"]]
    # a dead tanh actor: tiny gradients, every output in tanh's tails, a healthy critic
    history["grad/actor_cnn"] = [(s, 1e-4) for s in updates]
    history["actor/saturation"] = [(s, min(1.0, 0.86 + i / 10)) for i, s in enumerate(updates)]
    history["update_ratio/actor_cnn"] = [(s, 3e-4) for s in updates]
    run_dir = write_run(tmp_path / "dead", history, 5000)
    assert verdict_of(run_dir, "seed").verdict == "GO"
    strict = verdict_of(run_dir, "strict")
    saturated = next(c for c in strict.criteria if c.name == "actor_saturation")
    assert strict.verdict == "NO-GO" and saturated.status == "FAIL" and "pixel_scale" in saturated.explanation


def test_strict_gate_checks_the_actor_cnn_update_ratio_band(tmp_path: Path) -> None:
    history = healthy_history(5000)
    updates = [s for s, _ in history["grad/actor_cnn"]]
    history.update(actor_diagnostics(updates, actor_cnn_ratio=0.5))  # runaway weights
    strict = verdict_of(write_run(tmp_path / "runaway", history, 5000), "strict")
    ratio = next(c for c in strict.criteria if c.name == "actor_cnn_update_ratio")
    assert ratio.status == "FAIL" and strict.verdict == "HOLD", [(c.name, c.status) for c in strict.failing]


def actor_diagnostics(updates: list[int], saturation: float = 0.1, saturation_max: float | None = 0.2,
                      actor_cnn_ratio: float = 1.5e-4, critic_cnn_ratio: float = 6e-4) -> dict:
    """The strict gate's signals, constant over the run (values of the committed healthy runs by default)."""
    history = {"actor/saturation": [(s, saturation) for s in updates],
               "update_ratio/actor_cnn": [(s, actor_cnn_ratio) for s in updates],
               "update_ratio/critic_cnn": [(s, critic_cnn_ratio) for s in updates]}
    if saturation_max is not None:
        history["actor/saturation_max"] = [(s, saturation_max) for s in updates]
    return history


def strict_verdict(tmp_path: Path, gate: str = "strict", config: list[str] | None = None, **signals):
    history = healthy_history(3000)
    history.update(actor_diagnostics([s for s, _ in history["grad/actor_cnn"]], **signals))
    return verdict_of(write_run(tmp_path / "run", history, 3000, config), gate)


def criterion(verdict, name: str):
    return next(c for c in verdict.criteria if c.name == name)


def test_healthy_run_is_go_under_the_strict_gate(tmp_path: Path) -> None:
    v = strict_verdict(tmp_path)
    assert v.verdict == "GO", [(c.name, c.status, c.value) for c in v.failing]


def test_one_pinned_action_dimension_is_no_go(tmp_path: Path) -> None:
    # steering stuck at a bound, throttle free: the dimension mean reads 0.5, the largest dimension 1.0
    v = strict_verdict(tmp_path, saturation=0.5, saturation_max=1.0)
    assert v.verdict == "NO-GO" and criterion(v, "actor_saturation").value == "1"


def test_runs_without_saturation_max_fall_back_to_the_dimension_mean_and_say_so(tmp_path: Path) -> None:
    v = strict_verdict(tmp_path / "a", saturation=0.5, saturation_max=None)
    sat = criterion(v, "actor_saturation")
    assert sat.status == "PASS" and "dimension mean" in sat.value and v.verdict == "GO"
    v = strict_verdict(tmp_path / "b", saturation=0.95, saturation_max=None)  # a lower bound at or over: certain
    assert criterion(v, "actor_saturation").status == "FAIL" and v.verdict == "NO-GO"


@pytest.mark.parametrize("actor_cnn_ratio", [1.15e-5, 1.47e-5, 8.8e-6, 1.7e-5, 0.0])
def test_dead_but_nonzero_actor_cnn_is_no_go(tmp_path: Path, actor_cnn_ratio: float) -> None:
    # the committed dead runs' medians (seed_5k baseline, tanh + trunk_norm seed 2) and the ones the issue quotes
    v = strict_verdict(tmp_path, actor_cnn_ratio=actor_cnn_ratio)
    alive = criterion(v, "actor_cnn_alive")
    assert alive.status == "FAIL" and alive.nogo and v.verdict == "NO-GO" and "dead actor" in alive.explanation


def test_actor_cnn_orders_of_magnitude_below_the_critic_is_no_go(tmp_path: Path) -> None:
    gate = tmp_path / "relative.yaml"
    gate.write_text("name: relative\nactor_cnn_update_ratio_vs_critic_min: 0.01\n")
    v = strict_verdict(tmp_path, gate=str(gate), actor_cnn_ratio=3e-6, critic_cnn_ratio=6e-4)  # 0.005 x
    alive = criterion(v, "actor_cnn_alive")
    assert alive.status == "FAIL" and "0.005 x critic" in alive.value and v.verdict == "NO-GO"
    v = strict_verdict(tmp_path / "ok", gate=str(gate), actor_cnn_ratio=3e-5, critic_cnn_ratio=6e-4)  # 0.05 x
    assert criterion(v, "actor_cnn_alive").status == "PASS"


def test_shared_detached_skips_the_actor_cnn_criteria_with_a_reason(tmp_path: Path) -> None:
    history = healthy_history(3000)
    updates = [s for s, _ in history["grad/actor_cnn"]]
    history["grad/actor_cnn"] = [(s, 0.0) for s in updates]  # no actor CNN: a constant 0
    history.update(actor_diagnostics(updates, actor_cnn_ratio=0.0))
    run_dir = write_run(tmp_path / "run", history, 3000, ["encoder.layout=shared_detached"])
    v = verdict_of(run_dir, "strict")
    skipped = {c.name: c.value for c in v.criteria if c.status == "SKIPPED"}
    assert {"actor_cnn_grad_mean", "actor_cnn_alive", "actor_cnn_update_ratio"} <= skipped.keys()
    assert all("shared_detached" in reason for name, reason in skipped.items() if name.startswith("actor_cnn"))
    assert v.verdict == "GO"


@pytest.mark.parametrize(("go", "nogo", "mean", "status", "verdict"), [
    ("null", "5.0e4", 2e4, "PASS", "GO"),  # GO side off: only the NO-GO bound applies
    ("null", "5.0e4", 6e4, "FAIL", "NO-GO"),
    ("1.0e4", "null", 2e4, "FAIL", "HOLD"),  # NO-GO side off: above the GO bound is not cleared, not NO-GO
    ("1.0e4", "null", 5e3, "PASS", "GO"),
])
def test_one_side_of_a_go_nogo_pair_can_be_disabled(tmp_path: Path, go: str, nogo: str, mean: float, status: str,
                                                   verdict: str) -> None:
    gate = tmp_path / "one_sided.yaml"
    gate.write_text(f"name: one_sided\nactor_cnn_grad_mean_go: {go}\nactor_cnn_grad_mean_nogo: {nogo}\n"
                    "max_critical_alerts: null\n")
    history = healthy_history(3000)
    history["grad/actor_cnn"] = [(s, mean) for s, _ in history["grad/actor_cnn"]]
    v = verdict_of(write_run(tmp_path / "run", history, 3000), str(gate))
    grad = criterion(v, "actor_cnn_grad_mean")
    assert (grad.status, v.verdict) == (status, verdict)
    assert "null" not in grad.threshold and "None" not in grad.threshold


def test_a_malformed_gate_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path / "run", healthy_history(3000), 3000)
    gate = tmp_path / "typo.yaml"
    gate.write_text("saturation_maximum: 0.9\n")
    assert report_main([str(tmp_path / "run"), "--gate", str(gate), "--out", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1 and "saturation_maximum" in stderr


def test_skipped_nonfinite_updates_are_no_go(tmp_path: Path) -> None:
    # what debug.inject_nonfinite_at leaves behind: every metric finite, one update skipped and counted
    history = healthy_history(3000)
    history["alerts/nonfinite"] = [(s, float(s >= 2000)) for s, _ in history["alerts/nonfinite"]]
    v = verdict_of(write_run(tmp_path / "run", history, 3000))
    nonfinite = criterion(v, "nonfinite")
    assert v.verdict == "NO-GO" and nonfinite.value == "1 skipped updates"
