"""Search spaces and samplers: Hydra's sweep syntax turned into Optuna distributions."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
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


def resumed_seed(seed: int | None, trials_so_far: int) -> int | None:
    """The sampler's seed for a sweeper joining a study that already holds ``trials_so_far`` trials.

    A sampler keeps its random state in memory only, so a second sweep of the same study with the configured seed
    would propose the first sweep's values again (TPE's and NSGA-II's random start included).  The seed is mixed with
    the study's trial count instead: a new study uses the configured seed itself, a resumed one a different but
    still reproducible seed (the same study resumed at the same count proposes the same values)."""
    if seed is None or trials_so_far == 0:
        return seed
    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


def make_sampler(conf: SamplerConf, space: dict[str, BaseDistribution], trials_so_far: int = 0,
                 ) -> optuna.samplers.BaseSampler:
    seed = resumed_seed(conf.seed, trials_so_far)
    if conf.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if conf.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if conf.name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if conf.name == "grid":
        grid = {}
        for name, dist in space.items():
            if not isinstance(dist, CategoricalDistribution):
                raise ValueError(f"sampler grid needs choice(...) params; {name} is {type(dist).__name__}")
            grid[name] = list(dist.choices)
        return AskTellGridSampler(grid, seed=seed)  # the grid skips points the study has run already
    raise ValueError(f"hydra.sweeper.sampler.name must be tpe, random, grid or nsgaii (got {conf.name!r})")


def trials_in(storage: BaseStorage, study_name: str) -> int:
    """How many trials the study already holds (0 when it does not exist yet)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))
