"""The metric-name contract: every tag a training run writes (TensorBoard and W&B alike).

Reports, dashboards, sweeps and tests depend on these names; the README's metric table mirrors this list.
"""

from __future__ import annotations

from td3exp.config import MODULES
from td3exp.rewards import COMPONENTS

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
