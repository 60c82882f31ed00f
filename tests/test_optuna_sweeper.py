"""The Optuna sweeper plugin (hydra/sweeper=optuna) with real Hydra, real SQLite storage and tiny training runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from .conftest import REPO, run_td3exp

# 60 steps, 20 updates, evaluations at steps 30 and 60 (one 20-step episode each): a trial takes seconds
TRIAL = [
    "total_steps=60", "agent.start_steps=40", "agent.batch_size=16", "agent.buffer_size=500", "eval.every=30",
    "eval.episodes=1", "env.max_episode_steps=20", "logger.log_every=30", "logger.wandb.mode=disabled",
    "logger.progress_bar=false",
]


def sweep(tmp_path: Path, *args: str, storage: Path | None = None, study: str = "test"):
    db = storage or tmp_path / "optuna.db"
    result = run_td3exp(["--multirun", "hydra/sweeper=optuna", f"hydra.sweeper.storage=sqlite:///{db}",
                         f"hydra.sweeper.study_name={study}", "hydra.sweeper.sampler.seed=0", *TRIAL, *args],
                        cwd=tmp_path, timeout=600)
    return result, optuna.load_study(study_name=study, storage=f"sqlite:///{db}")


def results(tmp_path: Path) -> dict:
    return yaml.safe_load(next((tmp_path / "multirun").rglob("optimization_results.yaml")).read_text())


def test_trials_match_the_requested_count_with_their_params(tmp_path: Path) -> None:
    result, study = sweep(tmp_path, "hydra.sweeper.n_trials=3", "clip=choice(none,norm1,norm10)",
                          "optim.actor_cnn_lr=tag(log, interval(1e-5, 1e-3))", "agent.policy_delay=range(1,3)")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        assert t.params["clip"] in ("none", "norm1", "norm10") and 1e-5 <= t.params["optim.actor_cnn_lr"] <= 1e-3
        assert t.params["agent.policy_delay"] in (1, 2) and sorted(t.intermediate_values) == [30, 60]
    assert isinstance(trials[0].distributions["optim.actor_cnn_lr"], FloatDistribution)
    assert trials[0].distributions["optim.actor_cnn_lr"].log
    assert results(tmp_path)["best_params"] == study.best_params


def test_a_planted_bad_trial_is_pruned(tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    study = optuna.create_study(study_name="test", storage=f"sqlite:///{db}", direction="maximize")
    # a finished trial whose evaluations were far better than any tiny run can reach
    study.add_trial(create_trial(value=1e6, intermediate_values={30: 1e6, 60: 1e6}, params={"seed": 0},
                                 distributions={"seed": optuna.distributions.IntDistribution(0, 9)}))
    # the job runs in a joblib worker process: its reports reach the pruner only through the shared storage
    result, study = sweep(tmp_path, "hydra.sweeper.n_trials=1", "seed=range(0,10)", "hydra.sweeper.pruner.name=median",
                          "hydra.sweeper.pruner.n_startup_trials=1", "hydra/launcher=parallel", storage=db)
    assert result.returncode == 0, result.stderr[-3000:]
    trial = study.get_trials()[-1]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [30]  # stopped at its first report
    run_dir = next((tmp_path / "multirun").glob("*/*/*,trial=1"))  # named by its values, seed and trial
    assert not (run_dir / "model.pt").exists()  # the run stopped before the end


def test_a_raising_trial_is_failed_and_the_sweep_completes(tmp_path: Path) -> None:
    # 1e300 makes every visited tile an infinite reward: that trial stops on non-finite updates
    result, study = sweep(tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.name=grid",
                          "reward.weights.progress=choice(0.6,1e300)", "reward.normalize=none",
                          "monitor.max_consecutive_nonfinite=1", "hydra.sweeper.max_failure_rate=0.9")
    assert result.returncode == 0, result.stderr[-3000:]
    states = {t.params["reward.weights.progress"]: t for t in study.get_trials()}
    assert states[0.6].state == TrialState.COMPLETE
    assert states[1e300].state == TrialState.FAIL and "NonFiniteError" in states[1e300].user_attrs["failure"]
    assert results(tmp_path)["trials"] == {"COMPLETE": 1, "FAIL": 1}


def test_multi_objective_writes_a_pareto_front(tmp_path: Path) -> None:
    result, study = sweep(tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.name=nsgaii",
                          "hydra.sweeper.direction=[maximize,minimize]",
                          "hydra.sweeper.objectives=[eval/return,grad/actor_cnn_mean]", "clip=choice(none,norm1)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(study.directions) == 2 and all(len(t.values) == 2 for t in study.get_trials())
    front = results(tmp_path)["pareto_front"]
    assert front and {p["trial"] for p in front} <= {t.number for t in study.get_trials()}
    assert all(v > 0 for p in front for v in p["values"][1:])  # a real mean actor-CNN gradient norm


def test_rerunning_the_same_study_resumes_the_search_instead_of_repeating_it(tmp_path: Path) -> None:
    """The same command twice (sampler seed 0 both times): the second run continues the study with new values."""
    db = tmp_path / "shared.db"
    proposed = []
    for expected in (2, 4):
        result, study = sweep(tmp_path, "hydra.sweeper.n_trials=2", "optim.actor_cnn_lr=interval(1e-5, 1e-3)",
                              storage=db)
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(study.get_trials()) == expected
        proposed.append([t.params["optim.actor_cnn_lr"] for t in study.get_trials()[expected - 2:]])
    first, second = proposed
    assert not set(first) & set(second), f"the resumed sweep proposed the first run's values again: {proposed}"


def test_two_joblib_workers_share_one_storage(tmp_path: Path) -> None:
    result, study = sweep(tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra/launcher=parallel",
                          "hydra.launcher.n_jobs=2", "clip=choice(none,norm1)")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.intermediate_values for t in trials)  # each worker process reported to its own trial


def test_submitit_local_runs_a_trial(tmp_path: Path) -> None:
    result, study = sweep(tmp_path, "hydra.sweeper.n_trials=1", "hydra/launcher=local", "clip=choice(none,norm1)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]
    assert list((tmp_path / "multirun").rglob(".submitit"))


POSTGRES_URL = os.environ.get("TD3EXP_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TD3EXP_POSTGRES_URL: `bash tests/postgres_setup.sh` (root) "
                    "starts Debian's PostgreSQL on loopback and prints it; .ci/run does this")
def test_two_sweepers_in_separate_processes_share_a_postgresql_study(tmp_path: Path) -> None:
    study_name = f"test-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "td3exp", "--multirun", "hydra/sweeper=optuna",
               f"hydra.sweeper.storage={POSTGRES_URL}", f"hydra.sweeper.study_name={study_name}",
               "hydra.sweeper.n_trials=2", "clip=choice(none,norm1,norm10)", *TRIAL]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    workers = []
    for i in range(2):  # two machines' worth of sweepers: separate processes, separate sweep directories
        (tmp_path / str(i)).mkdir()
        workers.append(subprocess.Popen(command, cwd=tmp_path / str(i), env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs[0][-2000:] + outputs[1][-2000:]
    study = optuna.load_study(study_name=study_name, storage=POSTGRES_URL)
    try:
        trials = study.get_trials()
        assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
        assert len({t.number for t in trials}) == 4 and all(t.intermediate_values for t in trials)
    finally:
        optuna.delete_study(study_name=study_name, storage=POSTGRES_URL)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TD3EXP_POSTGRES_URL: `bash tests/postgres_setup.sh` (root) "
                    "starts Debian's PostgreSQL on loopback and prints it; .ci/run does this")
def test_sweepers_started_together_on_a_fresh_database_all_open_the_storage() -> None:
    """Regression (CI, 2026-12-03): two sweepers on an empty PostgreSQL database raced on Optuna's schema and one died
    with a duplicate ``CREATE TYPE studydirection``.  A fresh schema stands for the fresh database; four processes."""
    from sqlalchemy import create_engine, text

    schema = f"race_{uuid.uuid4().hex[:8]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    opener = f"from td3exp.sweep_trial import open_storage; open_storage({url!r}); print('opened')"
    try:
        workers = [subprocess.Popen([sys.executable, "-c", opener], cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for _ in range(4)]
        outputs = [w.communicate(timeout=120)[0] for w in workers]
        assert [w.returncode for w in workers] == [0] * 4, "\n".join(o[-1500:] for o in outputs)
        with engine.connect() as connection:  # the schema landed where the URL pointed, once
            tables = connection.execute(text("SELECT count(*) FROM information_schema.tables "
                                             "WHERE table_schema = :s AND table_name = 'studies'"), {"s": schema})
            assert tables.scalar() == 1
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
