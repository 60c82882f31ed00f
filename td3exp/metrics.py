"""The metric-name contract: every tag a training run writes (TensorBoard and W&B alike).

Reports, dashboards, sweeps and tests depend on these names; docs/metrics.md's table mirrors both lists.
``CONTRACT``: the tags every run writes (``ACTOR_UPDATE_TAGS``: those written on actor updates only).
``WINDOW_CONTRACT``: the tags a run logged per window of updates (the default; ``logger.every_update=false``) writes
besides: each update metric's largest absolute value in the window under its ``_max`` twin, and the window's update
counts.
"""

from __future__ import annotations

from td3exp.config import MODULES
from td3exp.rewards import COMPONENTS

# families of update metrics: one value per update, averaged over each logging window (alerts/* are cumulative counts)
UPDATE_FAMILIES = ("grad", "grad_clipped", "loss", "q", "actor", "features", "update_ratio")
WINDOW_UPDATES, WINDOW_ACTOR_UPDATES = "window/updates", "window/actor_updates"


def is_update_metric(tag: str) -> bool:
    return tag.split("/", 1)[0] in UPDATE_FAMILIES


def max_twin(tag: str) -> str:
    """``grad/actor_cnn`` -> ``grad_max/actor_cnn``: where the window's largest absolute value is logged."""
    family, name = tag.split("/", 1)
    return f"{family}_max/{name}"


CONTRACT: dict[str, str] = {
    **{f"grad/{m}": f"L2 gradient norm of the {m.replace('_', ' ')} parameters before clipping" for m in MODULES},
    **{f"grad_clipped/{m}": f"the same norm after clipping (equal to grad/{m} when not clipped)" for m in MODULES},
    "loss/actor": "-mean Q1(s, pi(s)), every policy_delay updates",
    "loss/critic": "MSE of Q1 and Q2 against the clipped double-Q target, summed",
    "q/q1": "mean Q1(s, a) over the batch",
    "q/q2": "mean Q2(s, a) over the batch",
    "q/abs_diff": "mean absolute difference of Q1 and Q2 over the batch",
    "q/target": "mean TD target r + gamma (1 - terminated) min(Q1', Q2')",
    "alerts/warning": "cumulative count of module norms above their warning threshold",
    "alerts/critical": "cumulative count of module norms above their critical threshold",
    "alerts/nonfinite": "cumulative count of skipped updates (non-finite loss or gradient)",
    "alerts/saturation_warning": "cumulative count of actor updates with saturation above monitor.saturation.warning",
    "alerts/saturation_critical": "cumulative count of actor updates with saturation above monitor.saturation.critical",
    "actor/saturation": "share of actor outputs saturated: |pre-tanh| > 3 (tanh head) or outside [-1, 1] (unbounded)",
    "actor/saturation_max": "the same share for the most saturated action dimension",
    "actor/preact_abs": "mean absolute pre-tanh (raw) actor output",
    "features/actor_norm": "mean L2 norm of the actor's CNN features",
    "features/critic_norm": "mean L2 norm of the critic's CNN features",
    **{f"update_ratio/{m}": f"step of the {m.replace('_', ' ')} parameters relative to their norm" for m in MODULES},
    "episode/return": "training episode return of the weighted reward, before normalization",
    "episode/native_return": "training episode return of the simulator's own reward",
    "episode/length": "training episode length in agent steps",
    **{f"reward/{c}": f"episode sum of the {c.replace('_', ' ')} component (unweighted)" for c in COMPONENTS},
    "eval/return": "mean native return of the deterministic actor over eval.episodes episodes",
    "eval/length": "mean evaluation episode length",
}

# the modules the actor's optimizer steps (under a shared encoder actor_cnn's metrics are written as 0)
ACTOR_MODULES = ("actor", "actor_cnn")

# tags written on actor updates only (every policy_delay updates): their windows count window/actor_updates
ACTOR_UPDATE_TAGS = frozenset([
    "loss/actor", "features/actor_norm", *(tag for tag in CONTRACT if tag.split("/", 1)[0] == "actor"),
    *(f"{family}/{m}" for family in ("grad", "grad_clipped", "update_ratio") for m in ACTOR_MODULES),
])

WINDOW_CONTRACT: dict[str, str] = {
    **{max_twin(tag): f"largest |{tag}| in the logging window" for tag in CONTRACT if is_update_metric(tag)},
    WINDOW_UPDATES: "critic updates in the logging window (the weight of its critic-side means)",
    WINDOW_ACTOR_UPDATES: "actor updates in the logging window (the weight of its actor-side means)",
}
