"""Search spaces and samplers: Hydra's sweep syntax turned into Optuna distributions."""

from __future__ import annotations

from typing import Any

import optuna
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from .config import SamplerConf


def distribution(override: Override) -> BaseDistribution:
    """Hydra sweep syntax -> Optuna distribution: choice -> categorical, range -> int/float with step,
    interval -> int/float, log-scaled with tag(log, ...)."""
    if override.is_choice_sweep():
        return CategoricalDistribution(list(override.sweep_iterator()))
    value = override.value()
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        values = list(override.sweep_iterator())
        if all(isinstance(v, int) for v in (start, stop, step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: not a search space; use choice(...), range(...) or interval(...)")


class AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler ends a study with study.stop() once the grid is done, which only works inside Study.optimize;
    under ask/tell the sweeper itself stops after the grid's size of trials."""

    def after_trial(self, study: optuna.Study, trial: Any, state: TrialState, values: Any) -> None:
        pass


def make_sampler(conf: SamplerConf, space: dict[str, BaseDistribution]) -> optuna.samplers.BaseSampler:
    if conf.name == "tpe":
        return optuna.samplers.TPESampler(seed=conf.seed)
    if conf.name == "random":
        return optuna.samplers.RandomSampler(seed=conf.seed)
    if conf.name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=conf.seed)
    if conf.name == "grid":
        grid = {}
        for name, dist in space.items():
            if not isinstance(dist, CategoricalDistribution):
                raise ValueError(f"sampler grid needs choice(...) params; {name} is {type(dist).__name__}")
            grid[name] = list(dist.choices)
        return AskTellGridSampler(grid, seed=conf.seed)
    raise ValueError(f"hydra.sweeper.sampler.name must be tpe, random, grid or nsgaii (got {conf.name!r})")
