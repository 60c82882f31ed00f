"""The checks that need a GPU, as one prepared run of at most ~10 minutes (`make gpu-check`): the CUDA tests, the CUDA
graph speed-up of the update, the training throughput with 1, 4 and 8 runs sharing the GPU, and a 20K-step default
CarRacing run's steps/s with the 100K-step wall time extrapolated from it.

Writes one Markdown file, ``<--out>/gpu_check_<UTC date and time>.md`` (default ``benchmarks/results``), headed by
the GPU, torch, CUDA and cuDNN versions, the CPU's capability and the git commit; every step's command, its exit code
and the lines it printed that matter.  Each step has a share of the time budget and is stopped when that share is
spent (said in the file), so the whole run ends in time and a slow step still leaves the others' results.
On a machine without CUDA it exits 2 with one line and writes nothing.

Run:  python -m benchmarks.gpu_check [--out DIR] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
KEY_LINE = re.compile(r"([a-z0-9_]+): (.+)")
DONE_LINE = re.compile(r"after (\d+) steps .* in (\d+) s \(([\d.]+) steps/s\)")
# shares of the budget: CUDA tests, update benchmark, train throughput (k = 1, 4, 8), the 20K-step run
SHARES = {"tests": 0.1, "update": 0.12, "train": 0.1, "run": 0.45}  # train: per k
RUNS_AT_ONCE = (1, 4, 8)
LONG_RUN_STEPS, EXTRAPOLATE_TO = 20_000, 100_000


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy", "WANDB_MODE": "disabled"}


def run(command: list[str], timeout: float, cwd: Path = REPO) -> tuple[int | str, str]:
    """(exit code or "stopped after N s", stdout + stderr) of one step."""
    try:
        done = subprocess.run(command, cwd=cwd, env=child_env(), capture_output=True, text=True,
                              timeout=max(timeout, 1))
    except subprocess.TimeoutExpired as error:
        out = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        return f"stopped after {timeout:.0f} s", out
    return done.returncode, done.stdout + done.stderr


def key_values(output: str) -> dict[str, str]:
    return {m[1]: m[2] for line in output.splitlines() if (m := KEY_LINE.fullmatch(line.strip()))}


def learning_rate(run_dir: Path) -> tuple[int, float] | None:
    """(last step, learning steps/s) from the wall times of the run's logged ``loss/critic`` (logged only once
    updates run), or None before two such points."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    if "loss/critic" not in acc.Tags()["scalars"]:
        return None
    events = acc.Scalars("loss/critic")
    if len(events) < 2 or events[-1].wall_time <= events[0].wall_time:
        return None
    return events[-1].step, (events[-1].step - events[0].step) / (events[-1].wall_time - events[0].wall_time)


def extrapolated_seconds(wall_s: float, steps: int, rate: float, target: int = EXTRAPOLATE_TO) -> float:
    """The wall time of a ``target``-step run: this run's time plus the remaining steps at its learning rate."""
    return wall_s + (target - steps) / rate


def header() -> list[str]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return [
        f"# GPU check, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC", "",
        f"- GPU: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)",
        f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
        f"- CPU capability: {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} CPUs",
        f"- commit: {commit or 'unknown'}{' (uncommitted changes)' if dirty else ''}", "",
    ]


def section(title: str, command: list[str], code: int | str, lines: list[str]) -> list[str]:
    return [f"## {title}", "", f"`{' '.join(command)}`: exit {code}", "", *lines, ""]


def check_tests(budget: float) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    code, out = run(command, budget)
    summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    failures = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return section("CUDA tests", command, code, [f"- {line}" for line in summary + failures] or ["- no summary"])


def check_update(budget: float) -> list[str]:
    command = [sys.executable, "-m", "benchmarks.update_throughput", "--device", "cuda", "--rounds", "3"]
    code, out = run(command, budget)
    values = key_values(out)
    lines = [f"- {key}: {values[key]}" for key in ("cuda_graph_speedup", "update_ratio_vs_sb3", "fraction_of_limit",
                                                     "monitoring_cost") if key in values]
    return section("Update throughput", command, code, lines or [f"- no values; output tail: {out[-500:]!r}"])


def check_train(budget: float) -> list[str]:
    """k copies of the train-throughput benchmark started at once: each one's learning steps/s, and their sum."""
    command = [sys.executable, "-m", "benchmarks.train_throughput", "--device", "cuda", "--rounds", "1",
               "--envs", "2"]
    rows = ["| runs at once | steps/s per run (1 env) | sum | steps/s per run (2 envs) | sum |",
            "|---|---|---|---|---|"]
    for k in RUNS_AT_ONCE:
        procs = [subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for _ in range(k)]
        deadline = time.monotonic() + budget
        outputs = []
        for proc in procs:
            try:
                outputs.append(proc.communicate(timeout=max(deadline - time.monotonic(), 1))[0])
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate()[0])
        one = [float(v) for o in outputs if (v := key_values(o).get("steps_per_s_1env")) and not v.startswith("n/a")]
        many = [float(v) for o in outputs if (v := key_values(o).get("steps_per_s_nenv")) and not v.startswith("n/a")]
        rows.append(f"| {k} | {' ; '.join(f'{v:.1f}' for v in one) or 'none finished'} | {sum(one):.1f} | "
                    f"{' ; '.join(f'{v:.1f}' for v in many) or 'none finished'} | {sum(many):.1f} |")
    return section(f"Train throughput, {', '.join(map(str, RUNS_AT_ONCE))} runs sharing the GPU", command,
                   "see the table", rows)


def check_long_run(budget: float) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        command = [sys.executable, "-m", "td3exp", f"total_steps={LONG_RUN_STEPS}", "device=cuda",
                   "logger.wandb.mode=disabled", "logger.progress_bar=false", "save_model=false", "checkpoint.every=0",
                   f"hydra.run.dir={run_dir}"]
        started = time.monotonic()
        code, out = run(command, budget, cwd=Path(tmp))
        wall = time.monotonic() - started
        learned = learning_rate(run_dir) if (run_dir / "tb").is_dir() else None
    done = DONE_LINE.search(out)
    lines = [f"- {LONG_RUN_STEPS:,}-step default run: {done[3]} steps/s over the whole run ({done[1]} steps in "
             f"{done[2]} s)" if done else f"- did not finish in {budget:.0f} s ({wall:.0f} s ran)"]
    if learned is not None:
        step, rate = learned
        lines.append(f"- learning phase: {rate:.2f} steps/s (logged wall times up to step {step:,})")
        lines.append(f"- extrapolated {EXTRAPOLATE_TO:,}-step wall time: "
                     f"{extrapolated_seconds(wall, step, rate) / 3600:.2f} h (this run's {wall:.0f} s plus the "
                     f"remaining steps at the learning rate; evaluations every 10K steps included only as far as "
                     "this run had them)")
    else:
        lines.append(f"- no learning-phase rate (fewer than two logged updates); output tail: {out[-500:]!r}")
    return section("Default CarRacing run", command, code, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results directory")
    parser.add_argument("--budget", type=float, default=570.0, help="seconds for all steps together")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda}); run it "
              "on a machine with an NVIDIA GPU and a CUDA build of torch", file=sys.stderr)
        return 2
    report = header()
    for name, step in (("tests", check_tests), ("update", check_update), ("train", check_train),
                       ("run", check_long_run)):
        report += step(SHARES[name] * args.budget)
        print(f"gpu-check: {name} done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu_check_{datetime.datetime.now(datetime.UTC):%Y-%m-%d_%H%M%S}.md"
    path.write_text("\n".join(report))
    print(f"gpu-check: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
