"""td3exp's update as training runs it, beside Stable-Baselines3's TD3 and the bare-math limit, in one process.

Variants, timed in interleaved rounds after a warm-up (medians; each timed block is an even number of updates, so
critic-only and critic+actor updates weigh alike):
  td3exp fp32 / bf16 / cuda graph  - replay.sample() + agent.update() with monitoring on; the agent and replay are
                                     built as training builds them (Hydra composition of conf/, td3exp.build)
  td3exp ... unmonitored           - the same agent built without its measuring (td3exp.build.build_agent(measure=
                                     False): plain optimizer steps, no norms, alerts, ratios or diagnostics)
  sb3 fp32                         - SB3 TD3 CnnPolicy with the same networks: TD3.train(1) (sample + update)
  limit fp32 channels_last         - the update's math alone on preallocated tensors (benchmarks/bare_limit.py)
Synthetic data: uint8 frame stacks (frame_stack x image_size^2, 4x84x84 by default), random actions and rewards.
Prints one `key: value` line per ratio (`n/a (reason)` where a variant cannot run here). Ratios, not promises: only
compare numbers measured in one run.

Run:  python -m benchmarks.update_throughput [--device auto|cpu|cuda] [--rounds 5] [--updates N] [--batch-size 256]
      [--quick] [config overrides, e.g. clip=none encoder=shared_detached]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import td3exp_setup
from benchmarks.bare_limit import BareTD3
from benchmarks.timing import Step, interleaved_medians, machine_lines, print_value, require_sb3, synchronizer
from td3exp.build import resolve_device
from td3exp.config import Config

BF16, GRAPH = "agent.precision=bf16", "agent.cuda_graph=true"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda[:N]")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds; medians over them")
    parser.add_argument("--updates", type=int, help="updates per variant and round (default 6 on CPU, 50 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup", type=int, help="untimed updates per variant first (default 4 on CPU, 20 on CUDA)")
    parser.add_argument("--fill", type=int, default=2000, help="transitions in each replay buffer")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: batch 16, 1 thread, 2 rounds of 2 updates")
    parser.add_argument("overrides", nargs="*", help="td3exp config overrides")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.rounds, args.updates, args.warmup, args.fill, args.threads = 16, 2, 2, 2, 300, 1
    return args


def add_td3exp(
    variants: dict[str, Step], notes: dict[str, str], name: str, cfg: Config | str, device: torch.device,
    unmonitored: bool,
) -> None:
    """Adds td3exp variant ``name`` (and its unmonitored twin, on its own replay filled alike)."""
    if isinstance(cfg, str):
        notes[name] = cfg
        return
    for label, measure in ((name, True), (f"{name} unmonitored", False))[: 2 if unmonitored else 1]:
        agent, replay = td3exp_setup.build_agent(cfg, device, measure), td3exp_setup.build_replay(cfg, device)
        td3exp_setup.fill_replay(replay, cfg, cfg.agent.buffer_size)
        variants[label] = td3exp_setup.update_step(agent, replay)


def main() -> None:
    args = parse_args()
    require_sb3()
    from benchmarks import sb3_anchor  # only with the bench extra

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    overrides = [f"agent.batch_size={args.batch_size}", f"agent.buffer_size={args.fill}", "agent.start_steps=0",
                 *args.overrides]
    cfg = td3exp_setup.compose_or_exit(overrides)
    updates = args.updates or (50 if device.type == "cuda" else 6)
    updates += updates % 2

    variants: dict[str, Step] = {}
    notes: dict[str, str] = {}  # variant -> why it did not run
    add_td3exp(variants, notes, "td3exp fp32", cfg, device, unmonitored=True)
    bf16 = td3exp_setup.compose_optional(overrides, BF16)
    add_td3exp(variants, notes, "td3exp bf16", bf16, device, unmonitored=True)
    graph = td3exp_setup.compose_optional(overrides, GRAPH) if device.type == "cuda" else "needs CUDA"
    add_td3exp(variants, notes, "td3exp cuda graph", graph, device, unmonitored=False)

    a, shape = cfg.agent, td3exp_setup.obs_shape(cfg)
    sb3 = sb3_anchor.build_td3(
        shape, td3exp_setup.ACTION_DIM, cfg.encoder.features_dim, list(a.hidden_dims), args.fill, a.batch_size,
        a.gamma, a.tau, a.policy_delay, a.target_noise, a.noise_clip, cfg.optim.critic_lr, device,
    )
    assert sb3.replay_buffer is not None
    sb3_anchor.fill_buffer(sb3.replay_buffer, args.fill, cfg.env.max_episode_steps)
    variants["sb3 fp32"] = sb3_anchor.update_step(sb3, a.batch_size)
    limit = BareTD3(a.batch_size, shape, td3exp_setup.ACTION_DIM, cfg.encoder.features_dim, list(a.hidden_dims),
                    a.policy_delay, device)
    variants["limit fp32 channels_last"] = limit.step

    warmup = args.warmup if args.warmup is not None else (20 if device.type == "cuda" else 4)
    seconds = interleaved_medians(variants, updates, args.rounds, warmup + warmup % 2, synchronizer(device))

    for line in machine_lines(device):
        print(line)
    print(f"batch {a.batch_size}, {args.rounds} rounds x {updates} updates per variant, medians")
    print(f"{'variant':<32} {'ms/update':>10} {'updates/s':>10}")
    for name, value in seconds.items():
        print(f"{name:<32} {1000 * value:>10.2f} {1 / value:>10.2f}")
    for name, reason in notes.items():
        print(f"{name:<32} {'n/a':>10}  ({reason})")

    def ratio(numerator: str, denominator: str) -> float | str:
        missing = [name for name in (numerator, denominator) if name not in seconds]
        if missing:
            return next((notes[name] for name in missing if name in notes), "not measured")
        return seconds[numerator] / seconds[denominator]

    def monitoring_cost(mode: str) -> float | str:
        name = f"td3exp {mode}"
        cost = ratio(f"{name} unmonitored", name)
        return 1.0 - cost if isinstance(cost, float) else cost

    print_value("update_ratio_vs_sb3", ratio("sb3 fp32", "td3exp fp32"))
    print_value("update_ratio_vs_sb3_bf16", ratio("sb3 fp32", "td3exp bf16"))
    print_value("fraction_of_limit", ratio("limit fp32 channels_last", "td3exp fp32"))
    print_value("monitoring_cost", monitoring_cost("fp32"))
    print_value("monitoring_cost_bf16", monitoring_cost("bf16"))
    print_value("cuda_graph_speedup", ratio("td3exp fp32", "td3exp cuda graph"))


if __name__ == "__main__":
    main()
