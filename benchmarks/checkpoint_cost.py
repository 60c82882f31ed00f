"""Checkpoint cost: size, write time and peak-RSS growth while saving a run's state with a full replay buffer.

    .venv/bin/python benchmarks/checkpoint_cost.py                 # 100K and 1M transitions (~14 GiB RAM, 8 GiB disk)
    .venv/bin/python benchmarks/checkpoint_cost.py --sizes 100000  # one size

Builds a real FrameReplay (84x84 uint8 frames, 1,000-step episodes) and a real TD3 agent, saves them with the
training run's CheckpointStore into a temporary directory, and prints, per size, the checkpoint's size, the write
time, ``checkpoint_seconds_per_gib: X``, the load+validate time and ``peak_rss_growth_mib: X`` (how much the
process's peak resident memory rose while saving: the replay's arrays are streamed to disk, never copied whole).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from td3exp import build, cli
from td3exp.checkpoint import CheckpointStore


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def filled_replay(size: int):
    from hydra import compose, initialize_config_dir

    cli.register()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="config", overrides=[f"agent.buffer_size={size}"]))
    device = torch.device("cpu")
    replay = build.build_replay(cfg, (4, 84, 84), 2, device)  # type: ignore[arg-type]
    agent = build.build_agent(cfg, (4, 84, 84), 2, device)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (84, 84), dtype=np.uint8)
    for start in range(0, size, 1000):  # frames differ per step (a constant page would compress in the page cache)
        replay.start_episode(frame)
        for t in range(min(1000, size - start) - 1):
            frame[t % 84] = t % 251
            replay.add(frame, rng.uniform(-1, 1, 2).astype(np.float32), 0.1, False)
    return replay, agent


def measure(size: int, root: Path) -> None:
    replay, agent = filled_replay(size)
    state, arrays = replay.state_dict()
    full = {"agent": agent.training_state(), "replay": state}
    store = CheckpointStore(root / f"ckpt_{size}", keep=1)
    before = peak_rss_mib()
    started = time.perf_counter()
    path = store.save(1, full, {f"replay_{k}": v for k, v in arrays.items()})
    seconds = time.perf_counter() - started
    growth = peak_rss_mib() - before
    gib = sum(f.stat().st_size for f in path.iterdir()) / 2**30
    started = time.perf_counter()
    loaded = store.latest()
    assert loaded is not None
    replay.load_state_dict(loaded.state["replay"], {k[7:]: v for k, v in loaded.arrays.items()})
    load_seconds = time.perf_counter() - started
    print(f"transitions: {size}")
    print(f"checkpoint_gib: {gib:.3f}")
    print(f"checkpoint_seconds: {seconds:.2f}")
    print(f"checkpoint_seconds_per_gib: {seconds / gib:.2f}")
    print(f"load_and_validate_seconds: {load_seconds:.2f}")
    print(f"peak_rss_growth_mib: {growth:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        for size in args.sizes:
            measure(size, Path(root))


if __name__ == "__main__":
    main()
