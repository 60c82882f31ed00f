"""The real command with tiny budgets: exit codes, outputs under the run directory, the metric contract,
determinism and multirun."""

from __future__ import annotations

from pathlib import Path

import torch

from td3exp.metrics import CONTRACT, WINDOW_CONTRACT

from .conftest import TINY, read_scalars, run_td3exp


def test_tiny_run_writes_every_contract_tag(tiny_run: Path) -> None:
    scalars = read_scalars(tiny_run)
    missing = sorted((set(CONTRACT) | set(WINDOW_CONTRACT)) - set(scalars))
    assert not missing, f"tags missing from the event files: {missing}"
    # one point per logging window (log_every 30) once learning started: 80 updates between step 41 and 120
    assert [step for step, _ in scalars["loss/critic"]] == [60, 90, 120]
    assert scalars["window/updates"] == [(60, 20.0), (90, 30.0), (120, 30.0)]
    assert [v for _, v in scalars["window/actor_updates"]] == [10.0, 15.0, 15.0]
    assert all(v >= 0 for _, v in scalars["grad/actor_cnn"])
    assert all(peak >= abs(mean) for (_, mean), (_, peak) in zip(scalars["q/q1"], scalars["q_max/q1"], strict=True))
    assert len(scalars["episode/length"]) == 2 and scalars["episode/length"][0][1] == 50.0


def test_tiny_run_keeps_all_outputs_in_the_run_directory(tiny_run: Path) -> None:
    assert (tiny_run / ".hydra" / "config.yaml").is_file()
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))
    assert list((tiny_run / "wandb").glob("offline-run-*"))
    state = torch.load(tiny_run / "model.pt")
    assert set(state) == {"actor", "critic", "actor_target", "critic_target"}


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        result = run_td3exp(
            [*TINY, "deterministic=true", "seed=3", "logger.wandb.mode=disabled", f"hydra.run.dir={run_dir}"],
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        runs.append(read_scalars(run_dir))
    assert runs[0].keys() == runs[1].keys()
    for tag in runs[0]:
        assert runs[0][tag] == runs[1][tag], tag


def test_nonfinite_rewards_stop_the_run_with_exit_3_and_logs_intact(tmp_path: Path) -> None:
    # a 1e300 progress weight makes every newly visited tile an infinite float32 reward
    result = run_td3exp(
        [
            *TINY,
            "reward.weights.progress=1e300",
            "reward.normalize=none",
            "monitor.max_consecutive_nonfinite=2",
            "logger.wandb.mode=disabled",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "non-finite" in result.stderr and "Traceback" not in result.stderr
    scalars = read_scalars(tmp_path)
    assert scalars["alerts/nonfinite"][-1][1] >= 2


def test_multirun_over_groups_writes_under_multirun(tmp_path: Path) -> None:
    result = run_td3exp(
        [
            "--multirun",
            "clip=none,norm1",
            "seed=0",
            *TINY,
            "total_steps=60",
            "eval.episodes=0",
            "logger.wandb.mode=disabled",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted(p.parent.parent for p in (tmp_path / "multirun").rglob("tb/events.out.tfevents.*"))
    assert [j.name.split(",")[0] for j in jobs] == ["clip=none", "clip=norm1"]  # job directories named by condition
    assert "clip=none" in (jobs[0] / ".hydra" / "overrides.yaml").read_text()
    assert "clip=norm1" in (jobs[1] / ".hydra" / "overrides.yaml").read_text()
