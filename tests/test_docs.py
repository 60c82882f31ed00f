"""Every command shown in README.md and docs/*.md runs, so the docs cannot rot.

Each line of a ```bash block (continuation lines joined, `# comments` dropped) is a command. It is run for real, in a
sandbox directory (a copy of experiments/results; hydra.run.dir / hydra.sweep.dir, report outputs and benchmark
results all land there), with W&B disabled and one torch thread:

- `python -m td3exp ...` (and `make train ARGS=...`, the same command after the set-up) with TINY_BUDGET appended, or
  replacing the command's own value of those keys (so `total_steps=200000` runs 40 steps); an Optuna sweep runs
  OPTUNA_TRIALS trials. Exit 0.
- `python -m td3exp.report ...` as written. Exit 0 (every run GO) or 1 (a run not GO); 2 is unusable input.
- `python -m benchmarks.NAME ...` with BENCHMARK_BUDGETS[NAME] in place of its arguments.

`outputs/DATE/TIME` and `multirun/DATE/TIME` (the directories a run or sweep printed) become the newest run or sweep
this test made. A command that cannot run as written must be in NOT_RUN (with why) or COVERED (run by another test);
a new command that is neither fails test_every_command_is_runnable_or_listed, and a table entry no command uses fails
too. Identical commands (README and docs repeat some; `make train` is `python -m td3exp`) run once.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from td3exp.metrics import CONTRACT

from .conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# agent steps, batch, buffer, episode length, evaluation and logging cut to seconds of CPU per run
TINY_BUDGET = {
    "total_steps": "40", "agent.start_steps": "20", "agent.batch_size": "8", "agent.buffer_size": "200",
    "eval.every": "40", "eval.episodes": "1", "env.max_episode_steps": "20", "logger.log_every": "10",
}
QUIET = ["logger.wandb.mode=disabled", "logger.progress_bar=false"]
OPTUNA_TRIALS = "2"

# benchmark -> the arguments it runs with here (its own flags; --quick where that is cheap enough)
BENCHMARK_BUDGETS = {
    # --quick still makes 4 runs of 1,200 steps (~60 s of CPU): one seed of each framework, 300 steps, 100 updates
    "learning_vs_sb3": ["--envs", "Pendulum-v1", "--seeds", "0", "--steps", "300", "--eval-every", "150",
                        "--eval-episodes", "1", "--jobs", "1", "--out", "learning_vs_sb3", "agent.start_steps=200"],
}

# commands that cannot run here as written: (regex on the command, why)
NOT_RUN = [
    (r"^make test$", "the test suite itself, which runs this test"),
    (r"^make gpu-check$", "needs a CUDA GPU (~10 min); tests/test_gpu_check.py runs its no-CUDA exit"),
    (r"^docker run .*carlasim/carla", "starts a CARLA server: needs Docker and a GPU with graphics units"),
    (r"^python -m td3exp env=carla env\.host=HOST", "needs a CARLA server at HOST"),
    (r"^python -m td3exp -m env=carla .*env\.job_slot", "starts one CARLA server per sweep job: needs CARLA installed "
     "(tests/test_carla_shared.py checks the job-slot ports through real Hydra)"),
    (r"^\.venv/bin/tensorboard ", "a server that runs until stopped"),
    (r"^\.venv/bin/optuna-dashboard ", "a server that runs until stopped"),
    (r"^\.venv/bin/wandb sync ", "uploads to W&B: needs network and a login"),
    (r"^python -m td3exp\.dashboard wandb ", "saves a W&B workspace: needs network and a login"),
    (r"^TD3EXP_OPTUNA_STORAGE=postgresql", "needs a PostgreSQL server (tests/test_optuna_sweeper.py uses one when "
                                           "TD3EXP_POSTGRES_URL is set)"),
]

# commands another test already runs in full: command -> (test file, what that file must name)
COVERED = {
    "make bench": ("tests/test_benchmarks.py tests/test_vector_benchmark.py",
                   ["update_throughput", "replay_memory", "train_throughput", "mlp_update"]),
    "make bench ARGS=--quick": ("tests/test_benchmarks.py tests/test_vector_benchmark.py",
                                  ["update_throughput", "replay_memory", "train_throughput", "mlp_update"]),
}

PLACEHOLDERS = ("outputs/DATE/TIME", "multirun/DATE/TIME")


@dataclass
class Command:
    where: str   # file:line
    text: str    # as written, continuation lines joined, comment dropped
    words: list[str] = field(default_factory=list)


def commands_in(path: Path) -> list[Command]:
    found: list[Command] = []
    in_bash, pending, start = False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words:
            found.append(Command(f"{path.relative_to(REPO)}:{start}", shlex.join(words), words))
    return found


def same_as(command: Command) -> str:
    """What the command does, for running each only once: `make train ARGS=...` is `python -m td3exp ...`."""
    w = command.words
    if w[:2] == ["make", "train"] and all(arg.startswith("ARGS=") for arg in w[2:]):
        return shlex.join(["python", "-m", "td3exp", *(a for arg in w[2:] for a in shlex.split(arg[5:]))])
    return command.text


def documented_commands() -> list[Command]:
    unique: dict[str, Command] = {}
    for path in DOCS:
        for command in commands_in(path):
            unique.setdefault(same_as(command), command)
    return list(unique.values())


def readable(command: Command) -> str:
    """The command as a reader would type it (shlex.join quotes `ARGS="..."` differently)."""
    return " ".join(command.words)


def not_run_reason(command: Command) -> str | None:
    return next((why for pattern, why in NOT_RUN if re.search(pattern, readable(command))), None)


def is_runnable(command: Command) -> bool:
    w = command.words
    if w[:3] in (["python", "-m", "td3exp"], ["python", "-m", "td3exp.report"], ["python", "-m", "td3exp.calibrate"]):
        return True
    if w[:2] == ["make", "train"]:
        return all(arg.startswith("ARGS=") for arg in w[2:])
    return w[:2] == ["python", "-m"] and w[2].removeprefix("benchmarks.") in BENCHMARK_BUDGETS


def with_budget(args: list[str], budget: dict[str, str]) -> list[str]:
    """The command's overrides with the budget's keys replaced (or appended)."""
    out = []
    for arg in args:
        key = arg.lstrip("+").split("=", 1)[0]
        out.append(f"{key}={budget[key]}" if "=" in arg and key in budget else arg)
    present = {arg.lstrip("+").split("=", 1)[0] for arg in args if "=" in arg}
    return out + [f"{key}={value}" for key, value in budget.items() if key not in present]


class Sandbox:
    """Where the commands run; remembers the runs and sweeps made, for the DATE/TIME placeholders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(REPO / "experiments" / "results", root / "experiments" / "results")
        self.runs: list[str] = []
        self.sweeps: list[str] = []
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy", "WANDB_MODE": "disabled",
                    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *argv], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=600)

    def td3exp(self, args: list[str]) -> list[str]:
        multirun = "--multirun" in args or "-m" in args
        args = with_budget(args, TINY_BUDGET)
        if "hydra/sweeper=optuna" in args:
            args = with_budget(args, {"hydra.sweeper.n_trials": OPTUNA_TRIALS})
        keys = {arg.split("=", 1)[0] for arg in args}
        if multirun:
            if "hydra.sweep.dir" not in keys:
                args.append(f"hydra.sweep.dir=multirun/doc_{len(self.sweeps)}")
            self.sweeps.append(next(a.split("=", 1)[1] for a in args if a.startswith("hydra.sweep.dir=")))
        elif "resume" not in keys:
            if "hydra.run.dir" not in keys:
                args.append(f"hydra.run.dir=outputs/doc_{len(self.runs)}")
            self.runs.append(next(a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")))
        return ["-m", "td3exp", *args, *QUIET]

    def newest(self, kind: str) -> str:
        """The newest run (`outputs`) or sweep (`multirun`) made here; a tiny one first if there is none."""
        made = self.runs if kind == "outputs" else self.sweeps
        if not made:
            extra = ["--multirun", "seed=0"] if kind == "multirun" else []
            result = self.run(self.td3exp(extra))
            assert result.returncode == 0, result.stderr[-3000:]
        return made[-1]

    def argv(self, command: Command) -> tuple[list[str], set[int]]:
        """What runs for a documented command, and the exit codes that mean it worked."""
        words = list(command.words)
        for placeholder in PLACEHOLDERS:
            if any(placeholder in w for w in words):
                words = [w.replace(placeholder, self.newest(placeholder.split("/")[0])) for w in words]
        if words[:3] == ["python", "-m", "td3exp"]:
            return self.td3exp(words[3:]), {0}
        if words[:2] == ["make", "train"]:  # the Makefile's recipe after the set-up: $(PY) -m td3exp $(ARGS)
            args = [a for w in words[2:] for a in shlex.split(w.removeprefix("ARGS="))]
            return self.td3exp(args), {0}
        if words[:3] == ["python", "-m", "td3exp.report"]:
            return words[1:], {0, 1}
        if words[:3] == ["python", "-m", "td3exp.calibrate"]:
            return words[1:], {0}
        name = words[2].removeprefix("benchmarks.")
        return ["-m", f"benchmarks.{name}", *BENCHMARK_BUDGETS[name]], {0}


COMMANDS = documented_commands()
RUNNABLE = [c for c in COMMANDS if is_runnable(c) and not_run_reason(c) is None]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return Sandbox(tmp_path_factory.mktemp("docs_sandbox"))


@pytest.mark.parametrize("command", RUNNABLE, ids=[c.where for c in RUNNABLE])
def test_documented_command_runs(command: Command, sandbox: Sandbox) -> None:
    argv, ok = sandbox.argv(command)
    result = sandbox.run(argv)
    assert result.returncode in ok, (
        f"{command.where}: `{readable(command)}` ran as `python {shlex.join(argv)}` and exited "
        f"{result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )


def test_every_command_is_runnable_or_listed() -> None:
    assert len(RUNNABLE) >= 10, [c.text for c in COMMANDS]  # the extraction found the blocks
    unplanned = [f"{c.where}: {readable(c)}" for c in COMMANDS
                 if not is_runnable(c) and not_run_reason(c) is None and readable(c) not in COVERED]
    assert not unplanned, ("commands in the docs that neither run here nor are listed in NOT_RUN / COVERED "
                           f"(make them runnable with a tiny budget, or list them with the reason): {unplanned}")
    unused = [pattern for pattern, _ in NOT_RUN if not any(re.search(pattern, readable(c)) for c in COMMANDS)]
    unused += [text for text in COVERED if text not in {readable(c) for c in COMMANDS}]
    assert not unused, f"NOT_RUN / COVERED entries no documented command uses: {unused}"


def test_covered_commands_are_run_by_the_tests_named() -> None:
    makefile = (REPO / "Makefile").read_text()
    for command, (files, modules) in COVERED.items():
        target = command.split()[1]
        recipe = makefile.split(f"\n{target}: ", 1)[1].split("\n\n", 1)[0]
        tests = "".join((REPO / f).read_text() for f in files.split())
        for module in re.findall(r"-m benchmarks\.(\w+)", recipe):
            assert module in modules and module in tests, f"`{command}` runs {module}, which {files} do not run"


def test_make_train_is_the_entrypoint_after_the_set_up() -> None:
    assert "train: setup\n\t$(PY) -m td3exp $(ARGS)\n" in (REPO / "Makefile").read_text()


def test_every_metric_tag_is_documented() -> None:
    metrics = (REPO / "docs" / "metrics.md").read_text()
    missing = [tag for tag in CONTRACT if f"`{tag}`" not in metrics]
    assert not missing, f"docs/metrics.md lacks {missing}"


def test_readme_is_short_gives_the_two_commands_and_ci_runs_the_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    words = {c.text for c in commands_in(REPO / "README.md")}
    assert "make train" in words and "make test" in words
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_relative_links_in_the_docs_resolve() -> None:
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
    assert not broken, broken
