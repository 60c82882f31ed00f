"""td3exp's TD3 against Stable-Baselines3's on gymnasium state tasks: the same hyperparameters (agent=fujimoto), env,
seeds and budget; evaluations every --eval-every steps over --eval-episodes episodes of the deterministic policy on a
separate env (the same reset seeds in both frameworks).

Runs go two at a time (--jobs), one torch thread each; the two runs of one seed (td3exp and SB3) run side by side, so
both frameworks share the machine's load alike.  A run whose result exists is not run again (re-running the command
continues an interrupted benchmark).  After each env's last run its result table is written:
``OUT/<env>/scalars.parquet`` in td3exp's result format (SB3's runs as condition ``framework=sb3``; ``python -m
td3exp.report`` reads it), with ``curves.png`` (IQM of the evaluation return with bootstrap 95% bands) and
``summary.json``.

Prints, per env, one `key: value` line each: final_return_iqm_td3exp, final_return_iqm_sb3 (IQM of the final
evaluation with its 95% CI at >= 5 seeds, else the mean and range), probability_of_improvement (td3exp over SB3, with
its bootstrap 95% CI; rliable), steps_per_s_vs_sb3 (median steps/s of the whole loop, evaluations included).
``--frameworks td3exp,td3exp_bf16,sb3`` adds td3exp under agent.precision=bf16 as a third condition, with the same
lines for it suffixed ``_td3exp_bf16`` (all runs of one seed are queued together).

Run:  python -m benchmarks.learning_vs_sb3 [--envs Hopper-v5,HalfCheetah-v5] [--seeds 0,1,2,3,4] [--steps 100000]
      [--out experiments/results/learning_mujoco] [--jobs 2] [--frameworks td3exp,sb3] [--quick]
      [td3exp overrides for both frameworks]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import machine_lines, print_value, require_sb3
from td3exp.report.dataset import write_table
from td3exp.report.runs import Run, Series, load_run
from td3exp.report.stats import estimate, probability_of_improvement

# td3exp's conditions: the overrides each adds to agent=fujimoto (SB3 runs in fp32 whatever td3exp's precision)
TD3EXP_VARIANTS = {"td3exp": [], "td3exp_bf16": ["agent.precision=bf16"]}
FRAMEWORKS = (*TD3EXP_VARIANTS, "sb3")
STEPS_PER_S = re.compile(r"\(([0-9.]+) steps/s\)")


def one_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def run_dir(out: Path, framework: str, env_id: str, seed: int) -> Path:
    return out / "runs" / env_id / framework / f"seed{seed}"


def launch(framework: str, env_id: str, seed: int, a: argparse.Namespace, overrides: list[str]) -> None:
    """One run in its own process; td3exp's through its real entrypoint.  Its steps/s go to ``speed.json``."""
    directory = run_dir(a.out, framework, env_id, seed)
    if (directory / "speed.json").exists():
        return
    common = [f"--steps={a.steps}", f"--eval-every={a.eval_every}", f"--eval-episodes={a.eval_episodes}"]
    if framework == "sb3":
        command = [sys.executable, "-m", "benchmarks.sb3_td3_run", f"--env={env_id}", f"--seed={seed}",
                   f"--out={directory}", *common, *overrides]
    else:
        command = [sys.executable, "-m", "td3exp", "env=gymnasium", f"env.id={env_id}", "agent=fujimoto",
                   f"seed={seed}", f"total_steps={a.steps}", f"eval.every={a.eval_every}",
                   f"eval.episodes={a.eval_episodes}", "checkpoint.every=0", "logger.progress_bar=false",
                   "logger.wandb.mode=disabled", "save_model=false", f"hydra.run.dir={directory}", *overrides,
                   *TD3EXP_VARIANTS[framework]]
    done = subprocess.run(command, env=one_thread_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} {env_id} seed={seed} failed ({done.returncode}): {done.stderr[-2000:]}")
    if framework == "sb3":
        speed = json.loads((directory / "result.json").read_text())["steps_per_s"]
    else:
        found = STEPS_PER_S.findall(done.stdout)
        assert found, f"no steps/s in td3exp's output: {done.stdout[-500:]}"
        speed = float(found[-1])
    (directory / "speed.json").write_text(json.dumps({"steps_per_s": speed}) + "\n")
    print(f"done: {framework} {env_id} seed={seed} ({speed:.1f} steps/s)", flush=True)


def load(out: Path, framework: str, env_id: str, seed: int) -> Run:
    """One finished run as a report ``Run`` labelled by its framework, with its steps/s as ``perf/steps_per_s``."""
    directory = run_dir(out, framework, env_id, seed)
    speed = json.loads((directory / "speed.json").read_text())["steps_per_s"]
    if framework in TD3EXP_VARIANTS:
        run = dataclasses.replace(load_run(directory), label=f"framework={framework}")
    else:
        result = json.loads((directory / "result.json").read_text())
        steps, returns, lengths = (np.asarray(column) for column in zip(*result["evaluations"], strict=True))
        scalars = {"eval/return": Series(steps.astype(np.int64), returns),
                   "eval/length": Series(steps.astype(np.int64), lengths)}
        run = Run(str(directory), "framework=sb3", result["config"], scalars, int(steps.max()), result["steps"],
                  provenance=result["provenance"])
    run.scalars["perf/steps_per_s"] = Series(np.array([run.last_step]), np.array([speed]))
    return run


def final_returns(runs: list[Run]) -> np.ndarray:
    return np.array([run.scalars["eval/return"].values[-1] for run in runs])


def plot_curves(by_framework: dict[str, list[Run]], env_id: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for framework, runs in by_framework.items():
        steps = runs[0].scalars["eval/return"].steps
        curve = np.stack([run.scalars["eval/return"].values for run in runs])  # (runs, evaluations)
        points = [estimate(curve[:, k], reps=2000) for k in range(len(steps))]
        label = f"{framework} ({points[-1].statistic}, {points[-1].interval}; {len(runs)} runs)"
        ax.plot(steps, [p.point for p in points], label=label)
        ax.fill_between(steps, [p.low for p in points], [p.high for p in points], alpha=0.25)
    ax.set(title=env_id, xlabel="agent steps", ylabel="evaluation return")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(out: Path, env_id: str, seeds: list[int], frameworks: list[str], overrides: list[str]
              ) -> dict[str, object]:
    """The env's result table, curves and summary; prints four lines per td3exp condition.  ``overrides``: what
    all frameworks ran with besides agent=fujimoto, recorded in the summary."""
    runs = {fw: [load(out, fw, env_id, seed) for seed in seeds] for fw in frameworks}
    target = out / env_id
    write_table([run for fw in frameworks for run in runs[fw]], target / "scalars.parquet")
    plot_curves(runs, env_id, target / "curves.png")
    finals = {fw: final_returns(runs[fw]) for fw in frameworks}
    speed = {fw: float(np.median([r.scalars["perf/steps_per_s"].values[0] for r in runs[fw]])) for fw in frameworks}
    summary: dict[str, object] = {
        "env": env_id, "seeds": seeds, "overrides": overrides,
        "final_return": {fw: finals[fw].tolist() for fw in frameworks},
        "final_return_iqm_sb3": str(estimate(finals["sb3"])), "steps_per_s": speed,
        "commits": sorted({r.commit for fw in frameworks for r in runs[fw]}),
        "devices": sorted({r.device for fw in frameworks for r in runs[fw]}),
    }
    lines = []
    for fw in (f for f in frameworks if f in TD3EXP_VARIANTS):
        suffix = "" if fw == "td3exp" else f"_{fw}"
        improvement = probability_of_improvement(finals[fw], finals["sb3"])
        summary[f"final_return_iqm_{fw}"] = str(estimate(finals[fw]))
        summary[f"probability_of_improvement{suffix}"] = (str(improvement) if improvement
                                                          else "n/a (fewer than 5 runs each)")
        summary[f"steps_per_s_vs_sb3{suffix}"] = speed[fw] / speed["sb3"]
        lines += [f"final_return_iqm_{fw}", "final_return_iqm_sb3", f"probability_of_improvement{suffix}",
                  f"steps_per_s_vs_sb3{suffix}"]
    (target / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{env_id}:")
    for key in dict.fromkeys(lines):
        if key.startswith("steps_per_s"):
            print_value(f"  {key}", float(summary[key]))  # type: ignore[arg-type]
        else:
            print(f"  {key}: {summary[key]}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="Hopper-v5,HalfCheetah-v5")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--frameworks", default="td3exp,sb3",
                        help=f"which of {', '.join(FRAMEWORKS)} to run (sb3 is the baseline: always run)")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/learning_mujoco"))
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: Pendulum-v1, 2 seeds, 1,200 steps, learning from step 400")
    a, overrides = parser.parse_known_args()
    if a.quick:
        a.envs, a.seeds, a.steps, a.eval_every, a.eval_episodes = "Pendulum-v1", "0,1", 1200, 600, 2
        overrides = ["agent.start_steps=400", *overrides]
    frameworks = [fw for fw in FRAMEWORKS if fw in a.frameworks.split(",") or fw == "sb3"]
    unknown = set(a.frameworks.split(",")) - set(FRAMEWORKS)
    if unknown or len(frameworks) < 2:
        parser.error(f"--frameworks: {a.frameworks!r}: name at least one td3exp condition of {', '.join(FRAMEWORKS)}")
    require_sb3()
    torch.set_num_threads(1)
    for line in machine_lines(torch.device("cpu")):
        print(line)
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    envs, seeds = a.envs.split(","), [int(s) for s in a.seeds.split(",")]
    for env_id in envs:  # one env at a time: its table is written (and can be committed) as soon as it completes
        jobs = [(fw, env_id, seed) for seed in seeds for fw in frameworks]
        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            for future in [pool.submit(launch, *job, a, overrides) for job in jobs]:
                future.result()
        summarize(a.out, env_id, seeds, frameworks, overrides)


if __name__ == "__main__":
    main()
