"""A saved W&B workspace with the standard panels, runs grouped by their condition (``config.condition``: the
run's overrides without the seed, set by td3exp.app)."""

from __future__ import annotations

from typing import Any

from td3exp.dashboard.panels import sections


def build_workspace(entity: str, project: str, group: str | None = None, name: str = "td3exp runs") -> Any:
    """The workspace object (nothing is sent until ``.save()``); ``group`` keeps only that W&B group's runs (a sweep
    is one group)."""
    import wandb_workspaces.reports.v2 as wr  # slow imports: only for this command
    import wandb_workspaces.workspaces as ws

    runset = ws.RunsetSettings(groupby=[ws.Config("condition")],
                               filters=[ws.Metric("Group") == group] if group else [])
    return ws.Workspace(
        entity=entity, project=project, name=name, runset_settings=runset,
        sections=[ws.Section(name=s.title, is_open=True,
                             panels=[wr.LinePlot(title=p.title, y=list(p.tags)) for p in s.panels])
                  for s in sections()],
    )
