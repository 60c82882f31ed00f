"""Training throughput of the real entrypoint: learning steps/s with one env and with N parallel envs, how much of the
env time hides behind the update, and the whole loop against the update alone.

Each measurement runs in its own process, in interleaved rounds (medians over rounds; the machine may be shared):
  update only  - replay.sample() + agent.update() on a filled replay, built as training builds them (the rate the
                 loop could reach at one update per step if acting and stepping cost nothing)
  loop 1 env   - `python -m td3exp` (the real entrypoint, env.num_envs=1, env.vector=async) for --start random
                 steps and then --learn learning steps at agent.utd_ratio=1, no evaluation, no checkpoint
  loop N envs  - the same with env.num_envs=N (N updates per vector step of N transitions)
Inside a loop run, the time the trainer blocks in ParallelEnvs.step_wait is recorded (a timer around the method,
nothing else changes): during the random phase it is the env step itself (nothing runs beside it), during learning
it is the part of the env step the update did not hide.  env_overlap = 1 - exposed / alone.

Prints one `key: value` line each: steps_per_s_1env, steps_per_s_nenv (learning agent steps/s), env_overlap,
env_overlap_nenv, end_to_end_vs_update_only (loop 1 env over update only; 1.0 = env and acting fully hidden),
end_to_end_vs_update_only_nenv.  Ratios, not promises: compare only numbers measured in one run.

Run:  python -m benchmarks.train_throughput [--device auto|cpu|cuda] [--envs 4] [--learn 60] [--start 256]
      [--rounds 3] [--threads T] [--quick] [config overrides, e.g. agent.batch_size=128]
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import td3exp_setup
from benchmarks.timing import machine_lines, print_value
from td3exp.build import resolve_device

GRAPH = "agent.cuda_graph=true"
WARM = 3  # vector steps of each phase left out (allocations, first updates)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda[:N]")
    parser.add_argument("--envs", type=int, default=4, help="N for the parallel-env loop")
    parser.add_argument("--learn", type=int, default=60, help="learning steps per env in each loop run")
    parser.add_argument("--start", type=int, default=256, help="random steps first (at least agent.batch_size)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians over them")
    parser.add_argument("--threads", type=int, help="torch CPU threads in every run (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: batch 16, 1 thread, 2 envs, 1 short round")
    parser.add_argument("--child", choices=("update", "loop"), help=argparse.SUPPRESS)
    parser.add_argument("--num-envs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="td3exp config overrides")
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.learn, args.start, args.rounds, args.threads = 2, 8, 16, 1, 1
        args.overrides = ["agent.batch_size=16", *args.overrides]
    return args


def loop_overrides(args: argparse.Namespace, run_dir: Path) -> list[str]:
    n = args.num_envs
    return [f"env.num_envs={n}", "env.vector=async", f"agent.start_steps={args.start * n}",
            f"total_steps={(args.start + args.learn) * n}", "agent.utd_ratio=1", "agent.train_freq=1",
            "eval.episodes=0", "checkpoint.every=0", "save_model=false", "logger.wandb.mode=disabled",
            "logger.progress_bar=false", f"logger.log_every={10**9}", f"hydra.run.dir={run_dir}", *args.overrides]


def child_loop(args: argparse.Namespace) -> dict[str, float]:
    """The real entrypoint with a timer around ParallelEnvs.step_async / step_wait."""
    from td3exp.envs.vector import ParallelEnvs

    started: list[float] = []
    waited: list[float] = []
    step_async, step_wait = ParallelEnvs.step_async, ParallelEnvs.step_wait

    def timed_async(self: ParallelEnvs, actions):  # type: ignore[no-untyped-def]
        started.append(time.perf_counter())
        return step_async(self, actions)

    def timed_wait(self: ParallelEnvs):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        result = step_wait(self)
        waited.append(time.perf_counter() - t)
        return result

    ParallelEnvs.step_async, ParallelEnvs.step_wait = timed_async, timed_wait  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        sys.argv = ["td3exp", *loop_overrides(args, Path(tmp) / "run")]
        try:
            runpy.run_module("td3exp", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            if exit_.code:
                raise
    random_steps = args.start  # vector steps before learning starts
    alone = statistics.mean(waited[WARM:random_steps])
    exposed = statistics.mean(waited[random_steps + WARM:])
    learning = started[random_steps + WARM:]
    return {"steps_per_s": (len(learning) - 1) * args.num_envs / (learning[-1] - learning[0]),
            "overlap": 1.0 - exposed / alone}


def child_update(args: argparse.Namespace) -> dict[str, float]:
    cfg = td3exp_setup.compose_config(args.overrides)
    device = resolve_device(cfg.device)
    agent, replay = td3exp_setup.build_agent(cfg, device), td3exp_setup.build_replay(cfg, device)
    td3exp_setup.fill_replay(replay, cfg, max(cfg.agent.batch_size, 2000))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for step in range(WARM * 2):
        agent.update(replay.sample(), step)
    sync()
    updates = max(args.learn, 10) // 2 * 2  # critic-only and critic+actor updates weigh alike
    t = time.perf_counter()
    for step in range(updates):
        agent.update(replay.sample(), step)
    sync()
    return {"updates_per_s": updates / (time.perf_counter() - t)}


def run_child(args: argparse.Namespace, kind: str, num_envs: int, overrides: list[str]) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.train_throughput", "--child", kind, "--num-envs", str(num_envs),
               "--learn", str(args.learn), "--start", str(args.start), *overrides]
    if args.threads:
        command[3:3] = ["--threads", str(args.threads)]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "WANDB_MODE": "disabled"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        sys.exit(result.returncode)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child_update(args) if args.child == "update" else child_loop(args)))
        return
    device = resolve_device(args.device)
    overrides = [f"device={device}", *args.overrides]
    td3exp_setup.compose_or_exit(overrides)  # a bad override: one line, exit 2
    if device.type == "cuda" and not isinstance(td3exp_setup.compose_optional(overrides, GRAPH), str):
        overrides.append(GRAPH)  # the fastest update path, where it exists
    variants = {"update only": ("update", 1), "loop 1 env": ("loop", 1), f"loop {args.envs} envs": ("loop", args.envs)}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(args.rounds):
        for name in names[round_ % 3:] + names[: round_ % 3]:
            results[name].append(run_child(args, *variants[name], overrides))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    for line in machine_lines(device):
        print(line)
    print(f"overrides: {' '.join(overrides)}; {args.rounds} rounds, {args.learn} learning steps per env, medians")
    update, one, many = median("update only", "updates_per_s"), median("loop 1 env", "steps_per_s"), \
        median(names[2], "steps_per_s")
    print(f"update only {update:.2f} updates/s; loop 1 env {one:.2f} steps/s; {names[2]} {many:.2f} steps/s")
    print_value("steps_per_s_1env", one)
    print_value("steps_per_s_nenv", many)
    print_value("env_overlap", median("loop 1 env", "overlap"))
    print_value("env_overlap_nenv", median(names[2], "overlap"))
    print_value("end_to_end_vs_update_only", one / update)
    print_value("end_to_end_vs_update_only_nenv", many / update)


if __name__ == "__main__":
    main()
