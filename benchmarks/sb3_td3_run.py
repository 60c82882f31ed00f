"""One Stable-Baselines3 TD3 run with td3exp's evaluation protocol, for ``benchmarks/learning_vs_sb3.py``.

The hyperparameters are agent=fujimoto's, read from td3exp's own composed config (so both frameworks get the same
values): MlpPolicy 256-256 (torch's default init, tanh actor), Adam 3e-4, batch 256, buffer 1M, gamma 0.99, tau 0.005,
policy delay 2, target noise 0.2 clipped at 0.5, Gaussian exploration noise 0.1, uniform random actions and no updates
for the first start_steps, one update per step.  Every ``eval_every`` steps (and at the end) the deterministic policy
plays ``eval_episodes`` episodes on a separate env, with the reset seeds td3exp's evaluation uses (seed + 10,000 +
episode).  Writes ``result.json``: evaluations, steps/s of the whole loop (evaluations included, as td3exp's), and
provenance.

Run:  python -m benchmarks.sb3_td3_run --env Hopper-v5 --seed 0 --steps 100000 --out DIR [td3exp overrides]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks.timing import require_sb3
from td3exp import cli, provenance
from td3exp.config import Config


def fujimoto_config(env_id: str, seed: int, overrides: list[str]) -> Config:
    cli.register()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["env=gymnasium", f"env.id={env_id}", "agent=fujimoto",
                                                         f"seed={seed}", *overrides])
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def evaluate(model, env: gym.Env, seed: int, episodes: int) -> tuple[float, float]:
    """Mean return and length of the deterministic policy over ``episodes`` episodes (td3exp's reset seeds)."""
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + 10_000 + episode)
        total, length, done = 0.0, 0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, length, done = total + float(reward), length + 1, terminated or truncated
        returns.append(total)
        lengths.append(length)
    return float(np.mean(returns)), float(np.mean(lengths))


def run(env_id: str, seed: int, steps: int, eval_every: int, eval_episodes: int, out: Path,
        overrides: list[str]) -> dict:
    require_sb3()
    from stable_baselines3 import TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    cfg = fujimoto_config(env_id, seed, overrides)
    a, o = cfg.agent, cfg.optim
    assert o.actor_lr == o.critic_lr, "SB3's TD3 takes one learning rate"
    torch.manual_seed(seed)
    train_env, eval_env = gym.make(env_id), gym.make(env_id)
    action_dim = train_env.action_space.shape[0]
    model = TD3(
        "MlpPolicy", train_env, learning_rate=o.actor_lr, buffer_size=a.buffer_size, learning_starts=a.start_steps,
        batch_size=a.batch_size, tau=a.tau, gamma=a.gamma, train_freq=a.train_freq, gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(action_dim), a.exploration_noise * np.ones(action_dim)),
        policy_delay=a.policy_delay, target_policy_noise=a.target_noise, target_noise_clip=a.noise_clip,
        policy_kwargs={"net_arch": list(a.hidden_dims)}, seed=seed, device="cpu", verbose=0,
    )
    evaluations: list[tuple[int, float, float]] = []
    eval_seconds = [0.0]

    class Evaluations(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                started = time.perf_counter()
                evaluations.append((self.num_timesteps, *evaluate(self.model, eval_env, seed, eval_episodes)))
                eval_seconds[0] += time.perf_counter() - started
            return True

    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=Evaluations())
    if not evaluations or evaluations[-1][0] != steps:
        evaluations.append((steps, *evaluate(model, eval_env, seed, eval_episodes)))
    wall = time.perf_counter() - started
    result = {
        "framework": "sb3", "env": env_id, "seed": seed, "steps": steps, "wall_s": wall, "eval_s": eval_seconds[0],
        "steps_per_s": steps / wall, "evaluations": evaluations,
        "config": {"framework": "sb3", "env": {"id": env_id}, "seed": seed,
                   "agent": OmegaConf.to_container(OmegaConf.structured(a)), "optim": {"lr": o.actor_lr}},
        "provenance": {**provenance.collect(torch.device("cpu")),
                       "stable_baselines3": provenance.package_version("stable-baselines3")},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args, overrides = parser.parse_known_args()
    torch.set_num_threads(1)
    result = run(args.env, args.seed, args.steps, args.eval_every, args.eval_episodes, args.out, overrides)
    print(f"sb3 {args.env} seed={args.seed}: final eval/return {result['evaluations'][-1][1]:.1f}, "
          f"{result['steps_per_s']:.1f} steps/s")


if __name__ == "__main__":
    main()
