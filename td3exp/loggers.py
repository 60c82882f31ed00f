"""TensorBoard + Weights & Biases logging (the only module that imports wandb).

Metrics arrive as device tensors (or host floats) and are buffered; ``flush`` reads every buffered tensor back in
one transfer and writes the values at their own steps, in step order, to both backends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.tensorboard import SummaryWriter

WandbMode = Literal["online", "offline", "disabled"]


class Logger:
    def __init__(
        self, run_dir: Path, config: dict[str, Any], wandb_mode: WandbMode = "disabled", project: str = "td3exp",
        entity: str | None = None, group: str | None = None, tags: list[str] | None = None,
        name: str | None = None, job_type: str = "train",
    ) -> None:
        self.tensorboard = SummaryWriter(log_dir=str(run_dir / "tb"))
        self.wandb_run: Any = None
        if wandb_mode != "disabled":
            import wandb  # slow import: only when W&B is on

            self.wandb_run = wandb.init(
                mode=wandb_mode, dir=str(run_dir), project=project, entity=entity, group=group, tags=tags,
                name=name, job_type=job_type, config=config, reinit="finish_previous",
                settings=wandb.Settings(console="off", silent=True),
            )
        self._pending: list[tuple[int, Mapping[str, torch.Tensor | float]]] = []

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
