"""Update throughput and the cost of monitoring, measured in one run (ratios, not absolute promises).

Builds the default agent and replay through the real factories (batch 256, 4x84x84 uint8 frames, separate
NatureCNNs), fills the replay with random frames and times, in interleaved rounds:
  full       - agent.update(replay.sample()) as training runs it (per-module norms, clipping, alerts, guard)
  unmonitored - the same update with every measurement patched out (norms, clipping, alerts, update ratios,
                saturation, feature norms)
  sample     - replay.sample() alone
Run:  .venv/bin/python benchmarks/update_speed.py [--device cpu|cuda] [--updates 10] [--rounds 3] [overrides...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from td3exp import agent as agent_module
from td3exp import build
from td3exp.config import register_configs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def monitoring_off(agent: Any):
    """Patch out every measurement (norms, clipping, alerts, update ratios, saturation, feature norms); the update
    math stays."""
    zero = torch.zeros((), device=agent.device)
    patches = [
        (agent_module, "clip_modules", lambda modules, max_norm: ({k: zero for k in modules},) * 2 + (zero,)),
        (agent_module, "saturation", lambda preactivation, bounded: zero),
        (agent_module, "mean_feature_norm", lambda features: zero),
        (agent.monitor, "observe_norms", lambda norms: None),
        (agent.monitor, "observe_saturation", lambda share: None),
    ]
    for ratio in (agent.actor_ratio, agent.critic_ratio):
        patches.append((ratio, "snapshot", lambda: None))
        patches.append((ratio, "measure", lambda r=ratio: dict.fromkeys(r.params, zero)))
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fill", type=int, default=5000)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. clip=none encoder=shared_detached")
    args = parser.parse_args()
    device = torch.device(args.device)

    register_configs()
    conf_dir = str(Path(__file__).resolve().parents[1] / "conf")
    with initialize_config_dir(conf_dir, version_base="1.3"):
        overrides = ["agent.buffer_size=10000", "agent.start_steps=0", *args.overrides]
        cfg = OmegaConf.to_object(compose("config", overrides))
    obs_shape = (4, 84, 84)
    agent = build.build_agent(cfg, obs_shape, 2, device)  # type: ignore[arg-type]
    replay = build.build_replay(cfg, obs_shape, 2, device)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (64, 84, 84), dtype=np.uint8)
    for t in range(args.fill):
        if t % 1000 == 0:
            replay.start_episode(pool[0])
        replay.add(pool[t % 64], rng.uniform(-1, 1, 2).astype(np.float32), float(rng.normal()), False)

    def time_updates() -> float:
        for _ in range(2):  # warm-up
            agent.update(replay.sample(), 0)
        sync(device)
        start = time.perf_counter()
        for i in range(args.updates):
            agent.update(replay.sample(), i)
        sync(device)
        return (time.perf_counter() - start) / args.updates

    results: dict[str, list[float]] = {"full": [], "unmonitored": [], "sample": []}
    for round_ in range(args.rounds):
        # alternate which variant goes first: the first timing of a round tends to be slower
        for variant in (("full", "unmonitored") if round_ % 2 == 0 else ("unmonitored", "full")):
            if variant == "full":
                results["full"].append(time_updates())
            else:
                with monitoring_off(agent):
                    results["unmonitored"].append(time_updates())
        start = time.perf_counter()
        for _ in range(20):
            replay.sample()
        sync(device)
        results["sample"].append((time.perf_counter() - start) / 20)

    median = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {cfg.agent.batch_size}"
    )
    print(f"full update        {1000 * median['full']:8.2f} ms  ({1 / median['full']:.2f} updates/s)")
    print(f"unmonitored update {1000 * median['unmonitored']:8.2f} ms  ({1 / median['unmonitored']:.2f} updates/s)")
    print(f"replay.sample(256) {1000 * median['sample']:8.2f} ms")
    print(f"monitoring overhead: {100 * (median['full'] / median['unmonitored'] - 1):+.1f}% of an update")


if __name__ == "__main__":
    main()
