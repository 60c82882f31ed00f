"""Crash-safe checkpoints: one directory per checkpoint, written atomically, validated before use.

Layout: ``<run dir>/checkpoints/step_0000010000/`` holds ``state.pt`` (networks, optimizers, counters, RNG states:
small), one ``.npy`` file per large array (the replay's frames and transitions, streamed to disk in chunks so saving
never holds a second copy in RAM) and ``manifest.json`` (size and CRC-32 of every file), written last.  The directory
is built under a ``.tmp`` name, every file is fsynced, then it is renamed into place and the parent directory is
fsynced: a crash at any moment leaves either the complete new checkpoint or none, never a broken newest one.
No save ever renames onto or away from a complete checkpoint: a step written again (a resumed run stopping at once)
gets a new revision, ``step_0000010000.r1``, and the older revisions go only once it is in place, so a failure or a
second Ctrl-C at any point leaves a valid checkpoint (the loader takes the newest revision of the newest step).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

MANIFEST = "manifest.json"
STATE = "state.pt"
_CHUNK = 64 << 20  # bytes read per CRC chunk
# step_<step>, step_<step>.r<revision> (the same step written again), step_<step>.old (left by versions that renamed
# a re-written step away: the older copy, still valid, ranked below the complete one of the same step)
_NAME = re.compile(r"step_(\d+)(?:\.r(\d+)|(\.old))?")


def _rank(path: Path) -> tuple[int, int] | None:
    """(step, revision) of a checkpoint directory's name, or None for anything else (e.g. a ``.tmp`` left-over)."""
    match = _NAME.fullmatch(path.name)
    if match is None:
        return None
    return int(match[1]), -1 if match[3] else int(match[2] or 0)


class CheckpointError(RuntimeError):
    """Writing a checkpoint failed (e.g. a full disk); the previous checkpoint is intact."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _CrcWriter:
    """A binary file that keeps the CRC-32 of everything written to it (np.save streams arrays through it in
    bounded chunks)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.crc = 0
        self.size = 0
        self.error: OSError | None = None  # torch.save reports a failed write as a RuntimeError: keep the cause

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.crc = zlib.crc32(view, self.crc)
        self.size += view.nbytes
        try:
            return self.file.write(view)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


def _write(path: Path, dump: Callable[[_CrcWriter], object]) -> dict[str, int]:
    writer = _CrcWriter(path)
    try:
        dump(writer)
        writer.close()
    except Exception as error:
        with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
            writer.file.close()
        if writer.error is not None and writer.error is not error:
            raise writer.error from error
        raise
    return {"size": writer.size, "crc32": writer.crc}


def _crc_of(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through a temp file, fsync and rename: a crash never leaves a truncated ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    _write(tmp, lambda f: torch.save(obj, f))  # type: ignore[arg-type]
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]
    arrays: dict[str, np.ndarray]  # memory-mapped, read-only


class CheckpointStore:
    """Writes, lists, validates and prunes the checkpoints of one run (``directory`` = <run dir>/checkpoints)."""

    def __init__(self, directory: Path, keep: int, warn: Callable[[str], None] = print) -> None:
        self.directory, self.keep, self.warn = directory, keep, warn

    def save(self, step: int, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
        """Write a complete checkpoint atomically under a name no other checkpoint has, then delete the older
        revisions of the same step and all but the newest ``keep`` steps."""
        for leftover in self.directory.glob("step_*.tmp"):  # what a crash mid-write left behind
            shutil.rmtree(leftover, ignore_errors=True)
        same_step = [(revision, p) for (s, revision), p in self._ranked() if s == step]
        revision = max((r + 1 for r, _ in same_step), default=0)
        final = self.directory / (f"step_{step:010d}" + (f".r{revision}" if revision else ""))
        tmp = final.with_name(final.name + ".tmp")
        try:
            tmp.mkdir(parents=True)
            files = {STATE: _write(tmp / STATE, lambda f: torch.save(state, f))}  # type: ignore[arg-type]
            for name, array in arrays.items():
                files[f"{name}.npy"] = _write(tmp / f"{name}.npy", lambda f, a=array: np.save(f, a))  # type: ignore[misc]
            manifest = {"step": step, "files": files}
            _write(tmp / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
            _fsync_dir(tmp)
            os.rename(tmp, final)  # a new name: every older checkpoint stays complete until this one is
            _fsync_dir(self.directory)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError(
                f"could not write checkpoint {final} ({error.strerror or error}); the previous checkpoint is kept"
            ) from error
        for _, old in same_step:
            shutil.rmtree(old, ignore_errors=True)
        ranked = self._ranked()
        dropped = sorted({s for (s, _), _ in ranked})[: -self.keep]
        for (s, _), old in ranked:
            if s in dropped:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def complete(self) -> list[Path]:
        """Checkpoint directories that were fully renamed into place, oldest first: by step, then revision (``.tmp``
        ones are left-overs of a crash mid-write, removed by the next save)."""
        return [p for _, p in self._ranked()]

    def _ranked(self) -> list[tuple[tuple[int, int], Path]]:
        if not self.directory.is_dir():
            return []
        return sorted((rank, p) for p in self.directory.glob("step_*")
                      if p.is_dir() and (rank := _rank(p)) is not None)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that validates; each one skipped as corrupt or truncated is reported in one line."""
        for path in reversed(self.complete()):
            problem = self.problem(path)
            if problem is None:
                return self.load(path)
            self.warn(f"td3exp: checkpoint {path} is unusable ({problem}); trying the previous one")
        return None

    def problem(self, path: Path) -> str | None:
        """Why the checkpoint at ``path`` cannot be used, or None when every file has its recorded size and CRC."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            return "no readable manifest: it was not completely written"
        for name, expected in manifest["files"].items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != expected["size"]:
                return f"{name} is truncated ({file.stat().st_size} of {expected['size']} bytes)"
            if _crc_of(file) != expected["crc32"]:
                return f"{name} is corrupt (checksum mismatch)"
        return None

    def load(self, path: Path) -> Checkpoint:
        manifest = json.loads((path / MANIFEST).read_text())
        state = torch.load(path / STATE, map_location="cpu", weights_only=False)
        arrays = {name[: -len(".npy")]: np.load(path / name, mmap_mode="r")
                  for name in manifest["files"] if name.endswith(".npy")}
        return Checkpoint(path, manifest["step"], state, arrays)
