"""Make the repository's ``experiments/`` folder a Hydra config group: ``python -m td3exp experiments=NAME``."""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

REPO_ROOT = Path(__file__).resolve().parents[2]


class Td3expSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # only the td3exp app: other Hydra apps in the same environment keep their search path
        if any(p.path and p.path.endswith("/conf") and "td3exp" in str(p.path) for p in search_path.get_path()):
            search_path.append(provider="td3exp-experiments", path=f"file://{REPO_ROOT}")
