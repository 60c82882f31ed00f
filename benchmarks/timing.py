"""Interleaved timing rounds, medians and a description of the machine.

Shared machines drift (other processes, frequency scaling), so every variant is timed in each round, in a rotating
order, and only medians of rounds measured in the same process are compared.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.util import find_spec

import torch

from td3exp.provenance import cpu_name, package_version

Step = Callable[[], object]  # one timed unit of work; its result is dropped


def require_sb3() -> None:
    """Stable-Baselines3 is the benchmarks' anchor and only comes with the ``bench`` extra."""
    if find_spec("stable_baselines3") is None:
        print("stable-baselines3 is not installed: run `make bench` "
              "(or `pip install -c requirements.lock -e .[bench]`)", file=sys.stderr)
        sys.exit(2)


def synchronizer(device: torch.device) -> Step:
    """Waits for queued device work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def interleaved_medians(
    variants: dict[str, Step], steps: int, rounds: int, warmup: int, sync: Step
) -> dict[str, float]:
    """Median seconds per step of each variant over ``rounds`` rounds of ``steps`` steps each.

    Every variant runs ``warmup`` steps first (allocator, autotuning, graph capture). Each round starts with a
    different variant: the first timing of a round tends to be slower.
    """
    for step in variants.values():
        for _ in range(warmup):
            step()
    sync()
    names = list(variants)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            step = variants[name]
            start = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            seconds[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in seconds.items()}


def machine_lines(device: torch.device) -> list[str]:
    def installed(package: str) -> str:
        return package_version(package) or "not installed"

    return [
        f"machine: {cpu_name()}, torch threads {torch.get_num_threads()}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"cpu capability: {torch.backends.cpu.get_cpu_capability()} (the vector ISA torch's CPU kernels use)",
        f"versions: python {platform.python_version()}, torch {torch.__version__}, "
        f"stable-baselines3 {installed('stable-baselines3')}, numpy {installed('numpy')}",
    ]


def print_value(key: str, value: float | str) -> None:
    """One ``key: value`` line: a number, or ``n/a (reason)`` when the variant could not run here."""
    print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: n/a ({value})", flush=True)
