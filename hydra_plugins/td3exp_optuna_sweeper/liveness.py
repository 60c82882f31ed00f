"""Which RUNNING trials still have a live sweeper behind them.

A sweeper stamps its in-flight trials (user attribute ``sweeper``: host, pid, time) every ``interval`` seconds while
their jobs run.  A sweeper that starts on the same study later finds trials whose sweeper is gone (same host and its
process has exited, or no stamp for ``stale_after`` seconds): it marks them FAIL with the reason and re-runs each in
its job's directory (``job_dir``), where the job resumes from its checkpoint.  A trial of another live sweeper (e.g.
on another machine sharing a PostgreSQL study) keeps running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)
STAMP = "sweeper"
JOB_DIR = "job_dir"  # where the trial's job runs: a re-run goes there and resumes from the job's checkpoint


def stamp() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def left_behind(trial: FrozenTrial, stale_after: float, now: float | None = None) -> str | None:
    """Why this RUNNING trial has no live sweeper, or None while it may have one."""
    now = time.time() if now is None else now
    mark = trial.user_attrs.get(STAMP)
    if mark is None:  # asked, never stamped: its sweeper died right after asking
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return f"RUNNING without a sweeper stamp for {now - started:.0f} s" if now - started > stale_after else None
    if mark["host"] == socket.gethostname() and not _process_exists(int(mark["pid"])):
        return f"its sweeper (pid {mark['pid']} on {mark['host']}) exited while the trial was RUNNING"
    if now - float(mark["time"]) > stale_after:
        return f"no heartbeat from its sweeper (pid {mark['pid']} on {mark['host']}) for {now - mark['time']:.0f} s"
    return None


def recover_left_behind(study: optuna.Study, storage: BaseStorage, stale_after: float) -> list[int]:
    """Mark trials left RUNNING by a dead sweeper FAIL (reason in the ``failure`` attribute) and queue each once
    more with the same parameters and intermediate values (``retry_of`` = its number).  Returns the numbers of the
    trials re-queued."""
    retried = []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = left_behind(trial, stale_after)
        if reason is None:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, "failure", f"left behind: {reason}; re-run")
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):  # another sweeper recovered it first (the trial is finished now)
            continue
        # enqueue_trial, plus the evaluations reported so far (as Optuna's RetryHeartbeatStaleTrialCallback with
        # inherit_intermediate_values=True): the re-run resumes from its checkpoint, so the pruner must judge the
        # whole history, not just what the re-run reports
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, system_attrs={"fixed_params": trial.params},
            user_attrs={"retry_of": trial.number, **_job_dir(trial)}, intermediate_values=trial.intermediate_values,
        ))
        log.warning("trial %d was left RUNNING (%s): marked FAIL and queued again", trial.number, reason)
        retried.append(trial.number)
    return retried


def _job_dir(trial: FrozenTrial) -> dict[str, str]:
    return {JOB_DIR: trial.user_attrs[JOB_DIR]} if JOB_DIR in trial.user_attrs else {}


class Heartbeat:
    """While its block runs, stamps the given trials every ``interval`` seconds from a background thread."""

    def __init__(self, trials: Iterable[optuna.trial.Trial], interval: float) -> None:
        self.trials, self.interval = list(trials), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="td3exp-sweeper-heartbeat", daemon=True)

    def beat(self) -> None:
        for trial in self.trials:
            try:
                trial.set_user_attr(STAMP, stamp())
            except Exception as error:  # a busy database must not end the sweep: the next beat tries again
                log.warning("heartbeat of trial %d failed: %s", trial.number, error)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
