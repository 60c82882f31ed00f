"""The standard panels for comparing runs, derived from the metric contract (``td3exp.metrics``): the TensorBoard
custom-scalars layout and the W&B workspace draw the same sections from here.  Each update metric is drawn with its
window-maximum twin (``grad_max/actor`` beside ``grad/actor``: where a spike inside a logging window shows).  A tag
added to the contract under a new prefix still appears, in "Other", until a section claims it."""

from __future__ import annotations

from dataclasses import dataclass

from td3exp.metrics import CONTRACT, WINDOW_CONTRACT, is_update_metric, max_twin


@dataclass(frozen=True)
class Panel:
    title: str
    tags: tuple[str, ...]  # drawn together, one line each


@dataclass(frozen=True)
class Section:
    title: str
    panels: tuple[Panel, ...]


def _tags(prefix: str) -> tuple[str, ...]:
    return tuple(tag for tag in CONTRACT if tag.startswith(prefix))


def _each(prefix: str) -> tuple[Panel, ...]:
    return tuple(Panel(tag, (tag,)) for tag in _tags(prefix))


def sections() -> tuple[Section, ...]:
    modules = [tag.removeprefix("grad/") for tag in _tags("grad/")]
    saturation_alerts = _tags("alerts/saturation")
    gradient_alerts = tuple(t for t in _tags("alerts/") if t not in saturation_alerts)
    named: tuple[Section, ...] = (
        Section("Gradient norms before and after clipping",
                tuple(Panel(f"{m}: grad and grad_clipped", (f"grad/{m}", f"grad_clipped/{m}")) for m in modules)),
        Section("Actor and critic loss", _each("loss/")),
        Section("Q values", (Panel("Q1, Q2 and TD target", tuple(t for t in _tags("q/") if t != "q/abs_diff")),
                             Panel("|Q1 - Q2|", ("q/abs_diff",)))),
        Section("Alerts", (Panel("gradient and non-finite alerts", gradient_alerts),
                           Panel("saturation alerts", saturation_alerts))),
        Section("Saturation and update ratios", (*_each("actor/"), Panel("update ratios", _tags("update_ratio/")),
                                                 Panel("CNN feature norms", _tags("features/")))),
        Section("Reward components", _each("reward/")),
        Section("Evaluation and episodes", (*_each("eval/"), *_each("episode/"))),
    )
    named = tuple(Section(s.title, tuple(Panel(p.title, _with_twins(p.tags)) for p in s.panels)) for s in named)
    claimed = {tag for section in named for panel in section.panels for tag in panel.tags}
    windows = tuple(tag for tag in WINDOW_CONTRACT if tag.startswith("window/"))
    named += (Section("Logging windows", (Panel("updates per window", windows),)),)
    others = tuple(Panel(tag, (tag,)) for tag in (*CONTRACT, *WINDOW_CONTRACT) if tag not in claimed | set(windows))
    return named + ((Section("Other", others),) if others else ())


def _with_twins(tags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for tag in tags for t in ((tag, max_twin(tag)) if is_update_metric(tag) else (tag,)))
