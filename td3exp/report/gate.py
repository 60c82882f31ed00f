"""GO / NO-GO gate: criteria evaluated on one run's logged metrics.

Each criterion gives PASS, FAIL, UNKNOWN (its data is missing: never a silent pass) or SKIPPED (it does not apply,
e.g. a run shorter than the step it starts at, or an actor-CNN criterion under a layout without an actor CNN).  A FAIL
is either blocking (the run is not cleared: HOLD) or a NO-GO condition.  Verdict: NO-GO if any NO-GO failure; GO only
if every criterion passed or was skipped; HOLD otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from td3exp.report.runs import ReportInputError, Run, load_named_yaml

GATES_DIR = Path(__file__).resolve().parents[2] / "conf" / "gate"
AUTO = "auto"


@dataclass
class GateConfig:
    """Thresholds; null disables a criterion, or one side of a GO / NO-GO pair (conf/gate/*.yaml documents each)."""

    name: str = "custom"
    actor_cnn_grad_mean_go: Optional[float] = 1e4
    actor_cnn_grad_mean_nogo: Optional[float] = 5e4
    actor_loss_max_growth: Optional[float] = 100.0
    max_critical_alerts: Optional[int] = 0
    q_abs_max: Any = 200.0  # a number, "auto" (scaled to the run's returns: report/scale.py) or null
    critic_loss_mean_max: Any = 200.0  # a number, "auto" or null
    scale_slack: float = 2.0  # auto limits from observed returns (unbounded reward): this many times their scale
    critic_td_fraction: float = 0.05  # auto critic-loss limit: RMS TD error per critic below this x value scale
    forbid_nonfinite: bool = True
    learning_metric: str = AUTO  # the tag that must improve; auto: episode/length for carla, else native return
    learning_after_step: Optional[int] = 10_000
    warmup_fraction: float = 0.25
    saturation_max: Optional[float] = None
    actor_cnn_update_ratio_floor: Optional[float] = None
    actor_cnn_update_ratio_vs_critic_min: Optional[float] = None
    actor_cnn_update_ratio_max: Optional[float] = None


@dataclass
class Criterion:
    name: str
    status: str  # PASS | FAIL | UNKNOWN | SKIPPED
    value: str
    threshold: str
    nogo: bool = False  # a FAIL that is a NO-GO condition
    explanation: str = ""
    # the value relative to the NO-GO bound (the blocking bound where there is no NO-GO side): 1 at the bound,
    # above 1 beyond it (inf when infinitely far, e.g. a dead actor CNN's 0 against a floor); None when not measured
    score: Optional[float] = None


@dataclass
class Verdict:
    run: Run
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if any(c.status == "FAIL" and c.nogo for c in self.criteria):
            return "NO-GO"
        if all(c.status in ("PASS", "SKIPPED") for c in self.criteria):
            return "GO"
        return "HOLD"

    @property
    def score(self) -> float | None:
        """The largest criterion score (None when no criterion was measured): >= 1 when some criterion is at or
        beyond its bound, so runs can be ranked by how far the worst criterion sits from (or beyond) its bound."""
        scores = [c.score for c in self.criteria if c.score is not None]
        return max(scores) if scores else None

    @property
    def failing(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status in ("FAIL", "UNKNOWN")]


EXPLAIN = {
    "actor_cnn_grad_mean": "The actor CNN's gradients are huge: usually the actor loss sees an unbounded action or "
    "features that grow without limit, not a missing clip (under Adam, clipping barely changes the step).",
    "actor_loss_growth": "The actor loss magnitude grows by orders of magnitude: the actor pushes Q(s, pi(s)) where "
    "the critic extrapolates without bound, typically an action outside the range the critic was trained on.",
    "critical_alerts": "Some module's pre-clip gradient norm crossed its critical threshold during the run.",
    "q_abs_max": "Q-values left the plausible range: overestimation, an unscaled reward, or a diverging critic.",
    "critic_loss_mean": "The critic's TD error is large on average: rewards too large for the learning rate, or "
    "targets moving too fast.",
    "nonfinite": "A metric became NaN/Inf or updates were skipped as non-finite: training diverged numerically.",
    "actor_saturation": "The actor's outputs sit in tanh's flat tails (in at least one action dimension), so its "
    "gradients vanish and that action is dead (pinned at a bound); typical cause: unnormalized (raw 0..255) pixels "
    "or unbounded features; try encoder.pixel_scale=unit, encoder.trunk_norm=true or agent.preactivation_penalty.",
    "actor_cnn_alive": "The actor CNN barely moves (its update ratio is below the floor, or orders of magnitude "
    "below the critic CNN's): a dead actor whose gradients vanished, even if it is not exactly zero.",
    "actor_cnn_update_ratio": "The actor CNN's parameter steps are large relative to its weights: runaway weights "
    "(an unbounded objective).",
    "learning_improving": "The learning metric's episodes after the threshold step are not better than before it "
    "(episode/length: not surviving longer; episode/native_return: not earning more): the policy is not learning.",
}


def load_gate(name_or_path: str) -> GateConfig:
    """A gate from conf/gate/NAME.yaml or a YAML file; ReportInputError (one line) when missing or malformed."""
    return load_gate_file(name_or_path)[0]


def load_gate_file(name_or_path: str) -> tuple[GateConfig, Path, str]:
    """``load_gate`` with the file it read and that file's text (the calibration quotes its hash)."""
    gate: GateConfig
    gate, path, text = load_named_yaml("gate", name_or_path, GATES_DIR, GateConfig, "conf/gate/strict.yaml")
    for key in ("q_abs_max", "critic_loss_mean_max"):
        value = getattr(gate, key)
        if not (value is None or value == AUTO or (isinstance(value, int | float) and not isinstance(value, bool))):
            raise ReportInputError(f"gate {path}: {key}={value!r}; use a number, {AUTO} or null")
    return gate, path, text

