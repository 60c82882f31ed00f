"""TensorBoard + Weights & Biases logging (the only module that imports wandb).

Metrics arrive as device tensors (or host floats) and are buffered; ``flush`` reads every buffered tensor back in
one transfer and writes the values at their own steps, in step order, to both backends.  Every run's event stream
starts with the custom-scalars layout (td3exp.dashboard), so TensorBoard opens with the standard panels.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.tensorboard import SummaryWriter

from td3exp.dashboard.tensorboard_layout import custom_scalars_layout

WandbMode = Literal["online", "offline", "disabled"]


class Logger:
    def __init__(
        self, run_dir: Path, config: dict[str, Any], wandb_mode: WandbMode = "disabled", project: str = "td3exp",
        entity: str | None = None, group: str | None = None, tags: list[str] | None = None,
        name: str | None = None, job_type: str = "train", resume_step: int | None = None,
        wandb_id: str | None = None, wandb_init_timeout: float | None = None,
    ) -> None:
        """``resume_step``: continue a run from its checkpoint at that step; TensorBoard keeps the same event
        stream and hides what was logged after the step (without it, everything logged before in ``run_dir``), W&B
        continues the run ``wandb_id``.
        ``wandb_init_timeout``: seconds an online W&B start may take (None: wandb's own setting, the
        ``WANDB_INIT_TIMEOUT`` environment variable or 90 s) before the run goes on offline."""
        # purge_step: TensorBoard discards events at or after it from the earlier files of this directory; a fresh
        # start where an earlier attempt logged (a re-run sweep job without a checkpoint) hides that attempt
        purge_step = resume_step + 1 if resume_step is not None else None
        if resume_step is None and any((run_dir / "tb").glob("events.out.tfevents.*")):
            purge_step = 0
        self.tensorboard = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge_step)
        self.tensorboard.add_custom_scalars(custom_scalars_layout())
        self.wandb_run: Any = None
        if wandb_mode != "disabled":
            self.wandb_run = _start_wandb(
                wandb_mode, wandb_init_timeout, dir=str(run_dir), project=project, entity=entity, group=group,
                tags=tags, name=name, job_type=job_type, config=config, id=wandb_id,
                resume="allow" if wandb_id is not None else None,
            )
        self._pending: list[tuple[int, Mapping[str, torch.Tensor | float]]] = []

    @property
    def wandb_id(self) -> str | None:
        """The W&B run id (a checkpoint stores it to resume the same run); None when W&B is off."""
        return None if self.wandb_run is None else str(self.wandb_run.id)

    def record(self, step: int, metrics: Mapping[str, torch.Tensor | float]) -> None:
        """Buffer metrics of one step; nothing is read back from the device here."""
        self._pending.append((step, metrics))

    def flush(self) -> dict[str, float]:
        """Write everything buffered; returns the latest value of each tag."""
        if not self._pending:
            return {}
        tensors = [v for _, m in self._pending for v in m.values() if isinstance(v, torch.Tensor)]
        host = iter(torch.stack([t.detach().float() for t in tensors]).cpu().tolist()) if tensors else iter(())
        by_step: dict[int, dict[str, float]] = defaultdict(dict)
        for step, metrics in self._pending:
            for key, value in metrics.items():
                by_step[step][key] = next(host) if isinstance(value, torch.Tensor) else float(value)
        self._pending.clear()
        latest: dict[str, float] = {}
        for step in sorted(by_step):
            values = by_step[step]
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, step)
            if self.wandb_run is not None:
                self.wandb_run.log(values, step=step)
            latest.update(values)
        self.tensorboard.flush()
        return latest

    def summary(self, values: Mapping[str, Any]) -> None:
        """Run-level results (e.g. the final evaluation return) for the W&B run summary."""
        if self.wandb_run is not None:
            self.wandb_run.summary.update(dict(values))

    def close(self) -> None:
        self.flush()
        self.tensorboard.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def _start_wandb(mode: WandbMode, init_timeout: float | None, **init: Any) -> Any:
    """``wandb.init``; an online start that fails (no network, no login) goes on offline, said in one line."""
    import wandb  # slow import: only when W&B is on

    settings = wandb.Settings(console="off", silent=True)
    if init_timeout is not None:
        settings.init_timeout = init_timeout
    try:
        return wandb.init(mode=mode, reinit="finish_previous", settings=settings, **init)
    except wandb.errors.Error as error:
        if mode != "online":
            raise
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"td3exp: W&B online start failed ({reason}); logging offline instead "
              "(upload later with `wandb sync`)", file=sys.stderr, flush=True)
        return wandb.init(mode="offline", reinit="finish_previous", settings=settings, **init)
