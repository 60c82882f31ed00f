"""Training entrypoint behind ``python -m td3exp [group=option ...] [key=value ...]``.

Validates the config, wires env, agent, replay, logger and trainer, continues from the run directory's newest valid
checkpoint when there is one, and returns the final evaluation return (the objective that sweeps optimize).
Exit codes (``EXIT_CODES``): 0 done, 2 the run cannot start as configured, 3 stopped on non-finite values, 4 the
simulator was lost for good, 5 stopped by a signal after writing a checkpoint (run the same command to resume), 6 a
checkpoint could not be written, 7 the run stopped on its own gate verdict at a ``gate.at`` horizon after writing a
checkpoint (the same command with gate.stop_on=never continues it).  Inside a multirun the same errors are raised
instead, so only that job fails.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any, cast

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from td3exp import build, cli, provenance
from td3exp.checkpoint import CheckpointError, CheckpointStore, save_atomic
from td3exp.config import Config, ConfigError
from td3exp.dashboard.names import condition_name, run_name
from td3exp.envs.errors import SimulatorUnavailable
from td3exp.monitor import NonFiniteError
from td3exp.resume import RunCheckpointer, checkpoint_dir, config_differences, restore
from td3exp.self_gate import GateStopped, SelfGate
from td3exp.signals import Interrupted, StopSignals
from td3exp.sweep_trial import TrialReporter
from td3exp.trainer import Trainer
from td3exp.validation import validate

cli.register()


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by cuBLAS for determinism
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def say(message: str) -> None:
    print(f"td3exp: {message}", file=sys.stderr, flush=True)


def fail(message: str, code: int) -> None:
    say(message)
    sys.exit(code)


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class StartupError(RuntimeError):
    """The run cannot start as configured (a bad value, no simulator server, a CUDA-only option without CUDA)."""


# the exit code of each way a single run can end early; a sweep job raises instead, so the sweep goes on
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (StartupError, 2), (NonFiniteError, 3), (SimulatorUnavailable, 4), (CheckpointError, 6), (GateStopped, 7),
)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(dict_cfg: DictConfig) -> float:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return run(dict_cfg)
    except Interrupted:  # a checkpoint was written; the message is said already
        if multirun:
            raise  # a BaseException: the sweep stops too, and resumes with the same command
        sys.exit(5)
    except Exception as error:
        code = next((c for kind, c in EXIT_CODES if isinstance(error, kind)), None)
        if multirun or code is None:
            raise  # in a sweep the launcher records the job as failed (or pruned); the other jobs go on
        fail(str(error), code)
    raise AssertionError("unreachable")


def start(dict_cfg: DictConfig, cfg: Config, run_dir: Path) -> Any:
    """Validate, find the checkpoint to continue from (or None); raises StartupError on a user mistake."""
    try:
        cli.check_known_keys(dict_cfg)
        validate(cfg)
    except ConfigError as error:
        raise StartupError(f"config error: {error}") from error
    store = CheckpointStore(checkpoint_dir(run_dir), cfg.checkpoint.keep, warn=say)
    checkpoint = store.latest()
    config = cast(dict[str, Any], OmegaConf.to_container(dict_cfg, resolve=True))
    if cfg.resume and checkpoint is None:
        raise StartupError(f"config error: resume={cfg.resume}: no valid checkpoint in {checkpoint_dir(run_dir)}")
    if checkpoint is not None and (changed := config_differences(checkpoint.state["config"], config)):
        raise StartupError(f"config error: {run_dir} was run with another config (differs in {', '.join(changed)}); "
                           "resume with the same settings (only total_steps, logger.*, checkpoint.* and gate.* may "
                           "change) or start a new run directory")
    return store, checkpoint, config


def run(dict_cfg: DictConfig) -> float:
    cfg: Config = OmegaConf.to_object(dict_cfg)  # type: ignore[assignment]
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    store, checkpoint, config = start(dict_cfg, cfg, run_dir)
    seed_everything(cfg.seed, cfg.deterministic)
    device = build.resolve_device(cfg.device)
    try:
        envs = build.build_envs(cfg)  # env.num_envs training + evaluation env pairs
    except (SimulatorUnavailable, ConfigError) as error:  # e.g. env=carla without a server
        raise StartupError(str(error) if isinstance(error, SimulatorUnavailable) else f"config error: {error}") \
            from error
    logger = None
    try:
        obs_shape, action_shape = envs.single_observation_space.shape, envs.single_action_space.shape
        assert obs_shape is not None and action_shape is not None
        try:
            agent = build.build_agent(cfg, obs_shape, action_shape[0], device)
        except ConfigError as error:  # e.g. agent.cuda_graph=true where device=auto found no GPU
            raise StartupError(f"config error: {error}") from error
        replay = build.build_replay(cfg, obs_shape, action_shape[0], device)
        reporter = None
        if cfg.trial.study_name is not None and cfg.trial.number is not None:
            reporter = TrialReporter.from_environment(cfg.trial.study_name, cfg.trial.number,
                                                      cfg.monitor.saturation.critical)
        logger = make_logger(cfg, config, hydra_cfg, run_dir, device, checkpoint, reporter)
        checkpointer = RunCheckpointer(store, agent, replay, config, lambda: logger.wandb_id,
                                       reporter.state_dict if reporter else dict)
        stop = StopSignals()
        trainer = Trainer(envs, None, agent, replay, logger, build.build_schedule(cfg), cfg.seed,
                          show_progress=cfg.logger.progress_bar,
                          on_evaluation=reporter.report if reporter else None,
                          on_log=reporter.check if reporter else None, checkpoint=checkpointer, stop=stop,
                          self_gate=SelfGate(run_dir, cfg.gate, cfg.gate.at, cfg.gate.stop_on, say)
                          if cfg.gate.at else None)
        checkpointer.trainer = trainer
        if checkpoint is not None:
            warning = restore(checkpoint, agent, replay, trainer)
            if reporter is not None:
                reporter.load_state_dict(checkpoint.state.get("trial", {}))  # the stability pruner's counters
            say(f"resumed from {checkpoint.path} (step {checkpoint.step})" + (f"; {warning}" if warning else ""))
        try:
            with stop:
                result = trainer.run()
                logger.summary({"eval/final_return": result, "trial/state": "COMPLETE"})
                if reporter is not None:
                    reporter.finish(trainer.summary())
        except Interrupted as interrupted:
            logger.summary({"trial/state": "INTERRUPTED", "trial/reason": str(interrupted)})
            say(str(interrupted))
            stop.hand_over()  # under submitit: its handler requeues the job, which then resumes from the checkpoint
            raise
        except BaseException as error:
            outcome = reporter.outcome(error) if reporter is not None else error  # a stability pruner prunes NaN
            pruned = reporter is not None and isinstance(outcome, reporter.pruned)
            state = "PRUNED" if pruned else "GATE_STOPPED" if isinstance(error, GateStopped) else "FAIL"
            logger.summary({"trial/state": state, "trial/reason": str(outcome)})
            if outcome is error:
                raise
            raise outcome from error
    finally:
        with StopSignals():  # a stop signal while the run wraps up changes nothing: it is finished (or failed)
            if logger is not None:
                logger.close()
            envs.close()
    if cfg.save_model:
        with StopSignals():
            save_atomic(agent.state_dict(), run_dir / "model.pt")
    print(
        f"td3exp: final eval/return {result:.2f} after {cfg.total_steps} steps and {trainer.num_updates} updates "
        f"in {trainer.wall_time:.0f} s ({trainer.steps_per_second:.1f} steps/s); run directory {run_dir}"
    )
    return result


def make_logger(
    cfg: Config, config: dict[str, Any], hydra_cfg: Any, run_dir: Path, device: torch.device, checkpoint: Any,
    reporter: TrialReporter | None,
) -> Any:
    """TensorBoard + W&B for this run: named and grouped by its condition, with its provenance in the config, and
    continuing the logs of the checkpoint it resumes (if any)."""
    overrides = list(hydra_cfg.overrides.task)
    origin = provenance.collect(device)
    provenance.write(run_dir, origin)
    logged_config = {**config, "condition": condition_name(overrides), "provenance": origin}  # dashboards group by it
    resume = {"resume_step": checkpoint.step, "wandb_id": checkpoint.state["wandb_id"]} if checkpoint else {}
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return build.build_logger(cfg, run_dir, logged_config, run_name(overrides), **resume)
    # each sweep job is its own W&B run, grouped by its study (Optuna) or sweep directory
    logged_config["sweep"] = {"dir": hydra_cfg.sweep.dir, "job": hydra_cfg.job.num, "overrides": overrides}
    if reporter is not None:
        logged_config["sweep"]["trial_number"] = reporter.trial.number
    group = cfg.trial.study_name or str(hydra_cfg.sweep.dir)
    return build.build_logger(cfg, run_dir, logged_config, run_name(overrides), job_type="sweep",
                              default_group=group, **resume)
