"""Where a run came from: td3exp's git commit (and whether the tree was dirty), library versions, device and
threads.  Comparisons are only fair within one device and one commit, so every run records both."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def package_version(package: str) -> str | None:
    """The installed version of ``package``, or None when it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect(device: torch.device) -> dict[str, Any]:
    """The provenance record of a run on ``device``."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    gpu = device.type == "cuda"
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "td3exp": package_version("td3exp"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None,
        "gymnasium": package_version("gymnasium"),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if gpu else cpu_name(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def write(run_dir: Path, record: dict[str, Any]) -> None:
    (run_dir / "provenance.json").write_text(json.dumps(record, indent=1) + "\n")
