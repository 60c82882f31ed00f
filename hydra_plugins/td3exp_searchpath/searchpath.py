"""Make the repository's ``experiments/`` folder a Hydra config group: ``python -m td3exp experiments=NAME``."""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

REPO_ROOT = Path(__file__).resolve().parents[2]


class Td3expSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # only for td3exp's own config tree: other Hydra apps in the environment keep their search path
        conf = REPO_ROOT / "conf"
        if any(entry.path and Path(entry.path.removeprefix("file://")) == conf for entry in search_path.get_path()):
            search_path.append(provider="td3exp-experiments", path=f"file://{REPO_ROOT}")
