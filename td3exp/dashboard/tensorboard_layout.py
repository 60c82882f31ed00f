"""TensorBoard's "Custom Scalars" dashboard for a run: the standard panels as a layout every run writes once."""

from __future__ import annotations

import re

from td3exp.dashboard.panels import sections


def custom_scalars_layout() -> dict[str, dict[str, list]]:
    """``{section: {chart: ["Multiline", [tag regex, ...]]}}``, as ``SummaryWriter.add_custom_scalars`` takes it.
    Tags are anchored regexes: a bare ``grad/actor`` would also match ``grad/actor_cnn``."""
    return {
        section.title: {panel.title: ["Multiline", [f"^{re.escape(tag)}$" for tag in panel.tags]]
                        for panel in section.panels}
        for section in sections()
    }
