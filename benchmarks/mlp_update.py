"""The state-task update (encoder=mlp, agent=fujimoto) beside Stable-Baselines3's, and what td3exp's monitoring costs
there, in one process.

Variants, timed in interleaved rounds after a warm-up (medians; even numbers of updates, so critic-only and
critic+actor updates weigh alike), all with one torch thread:
  td3exp              - replay.sample() + agent.update() + the metric window, as the trainer runs them
  td3exp unmonitored  - the same agent built with build_agent(measure=False): plain optimizer steps, no norms,
                        alerts, update ratios or diagnostics (and nothing for the window to aggregate)
  sb3                 - SB3 TD3 MlpPolicy with the same hyperparameters: TD3.train(1) (sample + update)
  rest of a step      - what a training step adds besides the update on the real task: act_batch, env step,
                        replay add (td3exp's, timed on its own)
  td3exp bf16         - the same update under agent.precision=bf16 (only on a CPU with native bf16), monitored and
                        unmonitored
Prints `key: value` lines: update_ratio_vs_sb3_mlp (SB3's time over td3exp's), monitoring_cost_update_mlp (share of
the update), monitoring_cost_loop_mlp (the monitoring time over a whole training step: update + the rest), and under
bf16 update_ratio_vs_sb3_mlp_bf16 and monitoring_cost_loop_mlp_bf16.  Ratios, not promises: compare only numbers
measured in one run.

The fp32 ceiling: an update's FLOPs (torch's FLOP counter, averaged over a critic-only and a critic+actor update)
over the rate one thread reaches on the update's largest matmul (batch x 256 @ 256 x 256) is a floor no fp32
implementation of this update beats on this core (its smaller matmuls run slower than that rate).
``update_floor_ms_fp32`` is that floor; ``step_ratio_ceiling_vs_sb3`` the steps/s ratio over SB3 a training step
with an update could reach if td3exp's update took only its floor (SB3's update and the rest of the step as measured):
random warm-up steps without an update pull a whole run's ratio further toward 1.

Run:  python -m benchmarks.mlp_update [--env Hopper-v5] [--device cpu] [--rounds 5] [--updates 40] [--quick]
"""

from __future__ import annotations

import argparse
import itertools

import gymnasium as gym
import numpy as np
import torch

from benchmarks import td3exp_setup
from benchmarks.timing import Step, interleaved_medians, machine_lines, print_value, require_sb3, synchronizer
from td3exp import build
from td3exp.build import resolve_device
from td3exp.envs import make_gymnasium_task
from td3exp.metric_window import MetricWindow


def td3exp_step(cfg, obs_dim: int, action_dim: int, measure: bool, fill: int,  # type: ignore[no-untyped-def]
                device: torch.device) -> Step:
    agent = build.build_agent(cfg, (obs_dim,), action_dim, device, measure=measure)
    replay = build.build_replay(cfg, (obs_dim,), action_dim, device)
    rng = np.random.default_rng(0)
    replay.start_episode(rng.normal(size=obs_dim).astype(np.float32))
    for _ in range(fill):
        replay.add(rng.normal(size=obs_dim).astype(np.float32), rng.uniform(-1, 1, action_dim).astype(np.float32),
                   float(rng.normal()), False)
    window, counter = MetricWindow(), itertools.count()

    def step() -> None:
        window.add(agent.update(replay.sample(), next(counter)))

    return step


def sb3_step(env_id: str, cfg, fill: int, device: torch.device) -> Step:  # type: ignore[no-untyped-def]
    from stable_baselines3 import TD3

    a = cfg.agent
    model = TD3("MlpPolicy", gym.make(env_id), learning_rate=cfg.optim.actor_lr, buffer_size=fill + 10,
                learning_starts=0, batch_size=a.batch_size, tau=a.tau, gamma=a.gamma, policy_delay=a.policy_delay,
                target_policy_noise=a.target_noise, target_noise_clip=a.noise_clip,
                policy_kwargs={"net_arch": list(a.hidden_dims)}, device=device, seed=0)
    model.learn(fill)  # fills the buffer with real transitions (and trains meanwhile: state like a live run)
    return lambda: model.train(gradient_steps=1, batch_size=a.batch_size)


def update_flops(step: Step) -> float:
    """FLOPs of one update: the mean of a critic-only and a critic+actor update (the policy delay is 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
        step()
    return counter.get_total_flops() / 2


def matmul_flops_per_s(batch: int, width: int, device: torch.device, seconds: float = 1.0) -> float:
    """FLOP/s of the update's largest matmul shape (batch x width @ width x width) on this thread."""
    import time

    a, b = torch.randn(batch, width, device=device), torch.randn(width, width, device=device)
    out, sync = torch.empty(batch, width, device=device), synchronizer(device)
    for _ in range(20):  # warm-up
        torch.mm(a, b, out=out)
    sync()
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            torch.mm(a, b, out=out)
        sync()
        repeats += 50
    return 2 * batch * width * width * repeats / (time.perf_counter() - started)


def rest_of_step(env_id: str, cfg, steps: int, device: torch.device) -> float:  # type: ignore[no-untyped-def]
    """Seconds per training step spent outside the update: act, env step, replay add (the real task)."""
    import time

    env = make_gymnasium_task(env_id, None, 1, "none", 10.0, 0.99)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = build.build_agent(cfg, (obs_dim,), action_dim, device)
    replay = build.build_replay(cfg, (obs_dim,), action_dim, device)
    obs, _ = env.reset(seed=0)
    replay.start_episode(obs)
    started = time.perf_counter()
    for t in range(steps):
        action = agent.act_batch(obs[None], cfg.agent.start_steps + t)[0]  # the policy, not uniform actions
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(obs, action, float(reward), terminated)
        if terminated or truncated:
            obs, _ = env.reset()
            replay.start_episode(obs)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--device", default="cpu", help="cpu | cuda[:N] | auto")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--fill", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="smoke mode: 2 rounds of 4 updates, batch 32")
    args = parser.parse_args()
    require_sb3()
    torch.set_num_threads(1)
    overrides = ["env=gymnasium", f"env.id={args.env}", "agent=fujimoto", f"agent.buffer_size={args.fill + 10}"]
    if args.quick:
        args.rounds, args.updates, args.fill = 2, 4, 300
        overrides += ["agent.batch_size=32", f"agent.buffer_size={args.fill + 10}"]
    cfg = td3exp_setup.compose_or_exit(overrides)
    device = resolve_device(args.device)
    probe = gym.make(args.env)
    obs_dim, action_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    unmonitored = td3exp_step(cfg, obs_dim, action_dim, False, args.fill, device)
    variants = {
        "td3exp": td3exp_step(cfg, obs_dim, action_dim, True, args.fill, device),
        "td3exp unmonitored": unmonitored,
        "sb3": sb3_step(args.env, cfg, args.fill, device),
    }
    if device.type == "cpu" and any(torch.cpu.get_capabilities().get(f) for f in build.NATIVE_BF16):
        bf16 = td3exp_setup.compose_or_exit([*overrides, "agent.precision=bf16"])
        variants["td3exp bf16"] = td3exp_step(bf16, obs_dim, action_dim, True, args.fill, device)
        variants["td3exp bf16 unmon."] = td3exp_step(bf16, obs_dim, action_dim, False, args.fill, device)
    updates = args.updates + args.updates % 2
    seconds = interleaved_medians(variants, updates, args.rounds, 4, synchronizer(device))
    rest = rest_of_step(args.env, cfg, 20 * updates, device)

    for line in machine_lines(device):
        print(line)
    print(f"{args.env}, batch {cfg.agent.batch_size}, {args.rounds} rounds x {updates} updates per variant, medians")
    for name, value in seconds.items():
        print(f"{name:<20} {1000 * value:8.3f} ms/update")
    print(f"{'rest of a step':<20} {1000 * rest:8.3f} ms/step (act, env step, replay add)")
    monitoring = seconds["td3exp"] - seconds["td3exp unmonitored"]
    print_value("update_ratio_vs_sb3_mlp", seconds["sb3"] / seconds["td3exp"])
    print_value("monitoring_cost_update_mlp", monitoring / seconds["td3exp"])
    print_value("monitoring_cost_loop_mlp", monitoring / (seconds["td3exp"] + rest))
    if "td3exp bf16" in seconds:
        print_value("update_ratio_vs_sb3_mlp_bf16", seconds["sb3"] / seconds["td3exp bf16"])
        monitoring_bf16 = seconds["td3exp bf16"] - seconds["td3exp bf16 unmon."]
        print_value("monitoring_cost_loop_mlp_bf16", monitoring_bf16 / (seconds["td3exp bf16"] + rest))
    flops = update_flops(unmonitored)
    rate = matmul_flops_per_s(cfg.agent.batch_size, max(cfg.agent.hidden_dims), device)
    floor = flops / rate
    print(f"update: {flops / 1e6:.0f} MFLOP, td3exp at {flops / seconds['td3exp'] / 1e9:.1f} GFLOP/s, SB3 at "
          f"{flops / seconds['sb3'] / 1e9:.1f} GFLOP/s; largest matmul shape at {rate / 1e9:.1f} GFLOP/s")
    print_value("update_floor_ms_fp32", 1000 * floor)
    print_value("step_ratio_ceiling_vs_sb3", (seconds["sb3"] + rest) / (floor + rest))


if __name__ == "__main__":
    main()
