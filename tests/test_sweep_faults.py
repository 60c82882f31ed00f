"""Sweeps survive their jobs and their sweeper: real Hydra, real SQLite studies, real tiny training runs, real
SIGKILLs of a joblib worker and of the sweeper process itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from hydra_plugins.td3exp_optuna_sweeper.liveness import STAMP, recover_left_behind, stamp
from hydra_plugins.td3exp_optuna_sweeper.sweeper import stored

from .conftest import REPO, read_scalars
from .test_optuna_sweeper import TRIAL, sweep


def test_config_errors_in_one_trial_fail_it_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # norm7 is no clip option (Hydra cannot compose it); batch 1000 > buffer 500 fails td3exp's validation in the job
    result, study = sweep(tmp_path, "hydra.sweeper.sampler.name=grid", "hydra.sweeper.n_trials=4",
                          "hydra.sweeper.max_failure_rate=0.9", "clip=choice(none,norm7)",
                          "agent.batch_size=choice(16,1000)")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = {(t.params["clip"], t.params["agent.batch_size"]): t for t in study.get_trials()}
    assert trials["none", 16].state == TrialState.COMPLETE
    for batch in (16, 1000):
        trial = trials["norm7", batch]
        assert trial.state == TrialState.FAIL and "norm7" in trial.user_attrs["failure"]
    failure = trials["none", 1000].user_attrs["failure"]
    assert trials["none", 1000].state == TrialState.FAIL
    assert failure.startswith("StartupError: config error: agent.batch_size")


def start_sweep(cwd: Path, db: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "td3exp", "--multirun", "hydra/sweeper=optuna", f"hydra.sweeper.storage=sqlite:///{db}",
               "hydra.sweeper.study_name=test", "hydra.sweeper.sampler.seed=0", *TRIAL, *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: the test can kill it with its children


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def job_started(cwd: Path, trial: int) -> bool:
    return any(cwd.glob(f"multirun/*/*/*trial={trial}/.hydra/config.yaml"))


def descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def test_a_sigkilled_worker_fails_its_trial_and_the_sweep_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    sweeper = start_sweep(tmp_path, db, "hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=0.9",
                          "seed=choice(0,1)", "hydra/launcher=parallel")  # 2 loky workers (n_jobs=1 runs in-process)
    wait_for(lambda: job_started(tmp_path, 0))
    workers = [pid for pid in descendants(sweeper.pid)
               if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert workers
    for pid in workers:  # the joblib (loky) worker running trial 0
        os.kill(pid, signal.SIGKILL)
    output = sweeper.communicate(timeout=300)[0]
    assert sweeper.returncode == 0, output[-3000:]
    trials = optuna.load_study(study_name="test", storage=f"sqlite:///{db}").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert "TerminatedWorkerError" in trials[0].user_attrs["failure"]


def test_killing_the_sweeper_and_rerunning_the_command_continues_the_study(tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    args = ("hydra.sweeper.n_trials=2", "clip=choice(none,norm1,norm10,norm40)", "checkpoint.every=10")
    sweeper = start_sweep(tmp_path, db, *args)
    wait_for(lambda: any(tmp_path.glob("multirun/*/*/*,trial=1/checkpoints/step_*[0-9]")))
    os.killpg(sweeper.pid, signal.SIGKILL)  # the sweeper and the job it runs in-process die mid-trial
    sweeper.communicate(timeout=60)
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{db}")
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE, TrialState.RUNNING]
    interrupted = study.get_trials()[1]

    rerun = start_sweep(tmp_path, db, *args)  # the same command
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, output[-3000:]
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.COMPLETE]  # none left RUNNING, none lost
    assert trials[1].user_attrs["failure"].startswith("left behind: its sweeper (pid")
    retry = trials[2]
    assert retry.user_attrs["retry_of"] == 1 and retry.params == interrupted.params  # re-run once, same values
    assert "retry_of" not in trials[3].user_attrs
    results = yaml.safe_load(next(tmp_path.glob("multirun/*/*/optimization_results.yaml")).read_text())
    assert results["trials"] == {"COMPLETE": 3, "FAIL": 1}
    # the re-run continued the interrupted job from its checkpoint, in its directory, without duplicate steps
    assert "td3exp: resumed from" in output and not list(tmp_path.glob("multirun/*/*/*,trial=2"))
    (job,) = tmp_path.glob("multirun/*/*/*,trial=1")
    steps = [step for step, _ in read_scalars(job)["loss/critic"]]
    assert steps == sorted(set(steps)) and steps[-1] == 60


def test_a_re_queued_trial_inherits_the_intermediate_values_of_the_one_left_behind(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="test", storage=storage, direction="maximize")
    space: dict[str, optuna.distributions.BaseDistribution] = {
        "clip": optuna.distributions.CategoricalDistribution(["none", "norm1"])}
    left = study.ask(space)
    left.report(-3.0, 30)
    left.report(-1.0, 60)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left.set_user_attr(STAMP, {**stamp(), "pid": int(gone.stdout)})  # its sweeper has exited
    assert recover_left_behind(study, storage, stale_after=300) == [left.number]
    retry = study.ask(space)
    assert retry.params == left.params and retry.user_attrs["retry_of"] == left.number
    assert stored(study, retry).intermediate_values == {30: -3.0, 60: -1.0}  # the pruner judges the whole history
    retry.report(0.5, 90)  # the resumed job reports on from its checkpoint
    assert stored(study, retry).intermediate_values == {30: -3.0, 60: -1.0, 90: 0.5}
