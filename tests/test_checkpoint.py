"""Checkpoint files: atomic, validated, pruned; a broken newest one falls back to the previous; a full disk keeps the
previous one valid.  Real files on the real file system (RLIMIT_FSIZE makes writes fail like a full disk)."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from td3exp import checkpoint
from td3exp.checkpoint import CheckpointError, CheckpointStore, save_atomic

from .conftest import REPO, TINY


def store(tmp_path: Path, messages: list[str] | None = None, keep: int = 2) -> CheckpointStore:
    return CheckpointStore(tmp_path / "checkpoints", keep, warn=(messages if messages is not None else []).append)


def save(s: CheckpointStore, step: int) -> Path:
    arrays = {"frames": np.full((50, 8, 8), step, dtype=np.uint8), "rewards": np.arange(50, dtype=np.float32)}
    return s.save(step, {"step": step, "weights": torch.full((3,), float(step))}, arrays)


def test_round_trip_and_keep_only_the_newest(tmp_path: Path) -> None:
    s = store(tmp_path, keep=2)
    for step in (10, 20, 30):
        save(s, step)
    assert [p.name for p in s.complete()] == ["step_0000000020", "step_0000000030"]
    latest = s.latest()
    assert latest is not None and latest.step == 30 and latest.state["step"] == 30
    assert torch.equal(latest.state["weights"], torch.full((3,), 30.0))
    assert (latest.arrays["frames"] == 30).all() and latest.arrays["rewards"][-1] == 49


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_manifest"])
def test_a_broken_newest_checkpoint_falls_back_to_the_previous_with_one_line(tmp_path: Path, damage: str) -> None:
    messages: list[str] = []
    s = store(tmp_path, messages)
    save(s, 10)
    newest = save(s, 20)
    frames = newest / "frames.npy"
    if damage == "truncate":
        frames.write_bytes(frames.read_bytes()[:-100])
    elif damage == "flip":
        data = bytearray(frames.read_bytes())
        data[-1] ^= 0xFF
        frames.write_bytes(bytes(data))
    else:
        (newest / "manifest.json").unlink()
    latest = s.latest()
    assert latest is not None and latest.step == 10
    assert len(messages) == 1 and str(newest) in messages[0] and "\n" not in messages[0]


def test_a_crash_mid_write_leaves_a_tmp_directory_that_is_ignored_then_removed(tmp_path: Path) -> None:
    s = store(tmp_path)
    save(s, 10)
    (s.directory / "step_0000000020.tmp").mkdir()  # what a SIGKILL during the next save leaves behind
    latest = s.latest()
    assert latest is not None and latest.step == 10
    save(s, 30)  # the next save cleans up
    assert sorted(p.name for p in s.directory.iterdir()) == ["step_0000000010", "step_0000000030"]


def test_rewriting_a_step_replaces_it_whole(tmp_path: Path) -> None:
    s = store(tmp_path, keep=1)
    save(s, 10)
    s.save(10, {"step": "again"}, {"frames": np.zeros(3, dtype=np.uint8)})
    latest = s.latest()
    assert latest is not None and latest.state["step"] == "again" and set(latest.arrays) == {"frames"}
    assert len(list(s.directory.iterdir())) == 1


class _Stop(BaseException):
    """A failure injected between two file-system operations (as a second Ctrl-C or a SIGKILL would stop it)."""


def _stop_at(monkeypatch: pytest.MonkeyPatch, k: int) -> list[str]:
    """Let the first ``k`` file-system operations of a save run, then stop it; returns the operations seen."""
    seen: list[str] = []

    def stopping(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            if len(seen) > k:
                raise _Stop
            return real(*args, **kwargs)
        return wrapped

    for owner, name in [(checkpoint, "_write"), (checkpoint, "_fsync_dir"), (os, "replace"), (os, "rename"),
                        (shutil, "rmtree"), (Path, "mkdir")]:
        monkeypatch.setattr(owner, name, stopping(name, getattr(owner, name)))
    return seen


def test_a_rewrite_stopped_at_any_point_leaves_a_valid_checkpoint_and_the_next_rewrite_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = store(tmp_path, keep=1)
    save(s, 10)
    k = 0
    while True:
        with monkeypatch.context() as patch:
            seen = _stop_at(patch, k)
            try:
                s.save(10, {"step": f"stopped after {k}"}, {"frames": np.zeros(3, dtype=np.uint8)})
                finished = True
            except (_Stop, CheckpointError):
                finished = False
        latest = s.latest()
        assert latest is not None and latest.step == 10, f"no valid checkpoint after a stop at operation {k} {seen}"
        s.save(10, {"step": f"after stop {k}"}, {})  # a later rewrite of the same step is never blocked
        latest = s.latest()
        assert latest is not None and latest.state["step"] == f"after stop {k}" and len(s.complete()) == 1
        if finished:
            break
        k += 1
    assert k >= 8  # every operation of a save was a stop point (mkdir, 3 writes, fsync, rename, fsync, rmtree)


def test_a_copy_left_by_an_interrupted_rename_is_used_and_does_not_block_a_rewrite(tmp_path: Path) -> None:
    """Versions that renamed a re-written step away to ``.old`` could be stopped with only the ``.old`` copy."""
    s = store(tmp_path, keep=1)
    first = save(s, 10)
    first.rename(first.with_name(first.name + ".old"))
    latest = s.latest()
    assert latest is not None and latest.step == 10 and latest.state["step"] == 10
    save(s, 10)
    save(s, 10)
    assert [p.name for p in s.directory.iterdir()] == [s.complete()[-1].name]


@pytest.fixture
def file_size_limit():
    """Writes past 2 MB fail with EFBIG, as a full disk fails them with ENOSPC (both OSError)."""
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, previous[1]))
    yield
    resource.setrlimit(resource.RLIMIT_FSIZE, previous)
    signal.signal(signal.SIGXFSZ, previous_handler)


def test_a_failed_write_keeps_the_previous_checkpoint_valid(tmp_path: Path, file_size_limit) -> None:
    s = store(tmp_path)
    save(s, 10)
    big = {"frames": np.zeros((3_000_000,), dtype=np.uint8)}
    with pytest.raises(CheckpointError, match="previous checkpoint is kept"):
        s.save(20, {}, big)
    assert [p.name for p in s.directory.iterdir()] == ["step_0000000010"]  # no half-written directory either
    latest = s.latest()
    assert latest is not None and latest.step == 10


def test_save_atomic_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_atomic({"a": torch.ones(2)}, path)
    save_atomic({"a": torch.zeros(2)}, path)
    assert torch.equal(torch.load(path)["a"], torch.zeros(2)) and not list(tmp_path.glob("*.tmp"))


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000_000, resource.RLIM_INFINITY))


def test_a_run_whose_checkpoint_cannot_be_written_exits_6_in_one_line(tmp_path: Path) -> None:
    """The real command on a 'full disk': state.pt (~60 MB) cannot be written; the run says so and stops."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "td3exp", *TINY, "checkpoint.every=60", "logger.wandb.mode=disabled",
         "logger.progress_bar=false", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size,
    )
    assert result.returncode == 6, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "could not write checkpoint" in last and "step_0000000060" in last
    assert not list((run_dir / "checkpoints").glob("*.tmp"))

