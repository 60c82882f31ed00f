"""Replay memory per transition and sample() latency: td3exp's FrameReplay vs Stable-Baselines3's ReplayBuffer
(default: obs + next obs per transition; optimize_memory_usage: next obs read from the following slot).

Each buffer is filled to capacity in CarRacing's episode layout (a reset frame, then one frame per step up to the
time limit, 4-frame stacks clamped at the episode start), built as training builds it (td3exp: Hydra composition of
conf/ and td3exp.build.build_replay). Bytes per transition are counted from the arrays each buffer holds (every array
attribute with one row per slot), with the process's RSS growth during the fill beside them as a cross-check.
sample(batch) is timed in interleaved rounds (medians).

Run:  python -m benchmarks.replay_memory [--transitions 10000] [--batch-size 256] [--rounds 5] [--device auto]
      [--quick] [config overrides]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from benchmarks import td3exp_setup
from benchmarks.timing import Step, interleaved_medians, machine_lines, print_value, require_sb3, synchronizer
from td3exp.build import resolve_device


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="where sampled batches go: auto | cpu | cuda[:N]")
    parser.add_argument("--transitions", type=int, default=10_000, help="capacity of each buffer, filled")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=50, help="sample() calls per buffer and round")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1,500 transitions, 1 thread, 2 rounds of 5")
    parser.add_argument("overrides", nargs="*", help="td3exp config overrides")
    args = parser.parse_args()
    if args.quick:
        args.transitions, args.rounds, args.samples, args.threads = 1500, 2, 5, 1
    return args


def resident_bytes() -> int:
    """Resident set size of this process (Linux); 0 where /proc is missing."""
    statm = Path("/proc/self/statm")
    return int(statm.read_text().split()[1]) * 4096 if statm.exists() else 0


def held_arrays(buffer: object) -> Iterator[np.ndarray | torch.Tensor]:
    for value in vars(buffer).values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, (np.ndarray, torch.Tensor)):
                yield item


def bytes_per_slot(buffer: object, capacity: int) -> float:
    """Bytes of the arrays with one row per slot, per slot (fixed-size sampling buffers are left out)."""
    total = sum(a.nbytes for a in held_arrays(buffer) if a.ndim and a.shape[0] == capacity)
    return total / capacity


def main() -> None:
    args = parse_args()
    require_sb3()
    from stable_baselines3.common.buffers import ReplayBuffer

    from benchmarks import sb3_anchor  # only with the bench extra

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    overrides = [f"agent.buffer_size={args.transitions}", f"agent.batch_size={args.batch_size}", *args.overrides]
    cfg = td3exp_setup.compose_or_exit(overrides)
    n, episode_steps = args.transitions, cfg.env.max_episode_steps
    shape = td3exp_setup.obs_shape(cfg)
    spaces = sb3_anchor.FrameStackSpaces(shape, td3exp_setup.ACTION_DIM)

    def td3exp_buffer() -> tuple[object, Step]:
        replay = td3exp_setup.build_replay(cfg, device)
        td3exp_setup.fill_replay(replay, cfg, n)
        return replay, replay.sample

    def sb3_buffer(optimize: bool) -> tuple[object, Step]:
        buffer = ReplayBuffer(n, spaces.observation_space, spaces.action_space, device,
                              optimize_memory_usage=optimize, handle_timeout_termination=not optimize)
        sb3_anchor.fill_buffer(buffer, n, episode_steps)
        return buffer, lambda: buffer.sample(args.batch_size)

    builders: dict[str, Callable[[], tuple[object, Step]]] = {
        "td3exp": td3exp_buffer,
        "sb3 default": lambda: sb3_buffer(optimize=False),
        "sb3 optimize_memory_usage": lambda: sb3_buffer(optimize=True),
    }
    per_slot: dict[str, float] = {}
    rss_growth: dict[str, float] = {}
    samplers: dict[str, Step] = {}
    buffers: list[object] = []  # all kept alive, so each RSS growth is one buffer's own
    for name, build_filled in builders.items():
        before = resident_bytes()
        buffer, samplers[name] = build_filled()
        rss_growth[name] = (resident_bytes() - before) / n
        per_slot[name] = bytes_per_slot(buffer, n)
        buffers.append(buffer)
    seconds = interleaved_medians(samplers, args.samples, args.rounds, warmup=3, sync=synchronizer(device))

    for line in machine_lines(device):
        print(line)
    print(f"{n} transitions (episodes of {episode_steps}), sample({args.batch_size}), {args.rounds} rounds x "
          f"{args.samples} samples, medians")
    print(f"{'buffer':<28} {'bytes/transition':>16} {'RSS growth/transition':>22} {'GiB per 1M':>10} "
          f"{'sample ms':>10}")
    for name in samplers:
        print(f"{name:<28} {per_slot[name]:>16,.0f} {rss_growth[name]:>22,.0f} {per_slot[name] * 1e6 / 2**30:>10.1f} "
              f"{1000 * seconds[name]:>10.3f}")
    print(f"replay_bytes_per_transition: {per_slot['td3exp']:.0f}")
    for sb3_name, suffix in (("sb3 default", ""), ("sb3 optimize_memory_usage", "_optmem")):
        print_value(f"memory_saving_vs_sb3{suffix}", per_slot[sb3_name] / per_slot["td3exp"])
        print_value(f"sample_speedup_vs_sb3{suffix}", seconds[sb3_name] / seconds["td3exp"])


if __name__ == "__main__":
    main()
