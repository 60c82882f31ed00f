"""The logger with real TensorBoard event files and real (offline) W&B runs: resume, the custom-scalars layout, an
online start without network, and no API key written anywhere."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.util import tensor_util

from td3exp.dashboard.panels import sections
from td3exp.loggers import Logger
from td3exp.metrics import CONTRACT, WINDOW_CONTRACT

from .conftest import read_scalars


def write(logger: Logger, steps: range, offset: float = 0.0) -> None:
    for step in steps:
        logger.record(step, {"loss/critic": float(step) + offset})
    logger.flush()


def test_resume_purges_what_was_logged_after_the_resume_step(tmp_path: Path) -> None:
    logger = Logger(tmp_path, {})
    write(logger, range(1, 11))
    logger.close()
    resumed = Logger(tmp_path, {}, resume_step=5)
    write(resumed, range(6, 9), offset=100.0)
    resumed.close()
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 2  # the same directory, continued
    series = read_scalars(tmp_path)["loss/critic"]
    assert [step for step, _ in series] == [1, 2, 3, 4, 5, 6, 7, 8]  # steps 6-10 of the first run are gone
    assert [value for _, value in series] == [1, 2, 3, 4, 5, 106, 107, 108]


def test_a_fresh_start_in_a_run_directory_hides_the_earlier_attempt(tmp_path: Path) -> None:
    logger = Logger(tmp_path, {})
    write(logger, range(1, 6))
    logger.close()
    again = Logger(tmp_path, {})  # e.g. a re-run sweep job that had no checkpoint yet
    write(again, range(1, 4), offset=100.0)
    again.close()
    assert read_scalars(tmp_path)["loss/critic"] == [(1, 101.0), (2, 102.0), (3, 103.0)]


def read_layout(run_dir: Path) -> layout_pb2.Layout:
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"tensors": 0})
    accumulator.Reload()
    event = accumulator.Tensors("custom_scalars__config__")[-1]  # a resumed run wrote it once more
    return layout_pb2.Layout.FromString(tensor_util.make_ndarray(event.tensor_proto).item())


def test_every_run_writes_the_standard_custom_scalars_layout(tmp_path: Path) -> None:
    Logger(tmp_path, {}).close()
    layout = read_layout(tmp_path)
    assert [c.title for c in layout.category] == [s.title for s in sections()]
    charts = {chart.title: list(chart.multiline.tag) for c in layout.category for chart in c.chart}
    assert charts["actor_cnn: grad and grad_clipped"][:2] == ["^grad/actor_cnn$", "^grad_max/actor_cnn$"]
    # every contract tag is drawn, each chart regex matches exactly the tag it names (not grad/actor_cnn for actor)
    tags = [*CONTRACT, *WINDOW_CONTRACT]
    matched = [[tag for tag in tags if re.search(regex, tag)] for regexes in charts.values() for regex in regexes]
    assert all(len(found) == 1 for found in matched)
    assert {found[0] for found in matched} == set(tags)
    for needed in ("loss/actor", "loss/critic", "q/q1", "q/q2", "q/target", "alerts/critical", "actor/saturation",
                   "update_ratio/actor_cnn", "reward/progress", "eval/return"):
        assert [needed] in matched


def test_wandb_run_id_is_kept_on_resume_and_none_when_disabled(tmp_path: Path) -> None:
    assert Logger(tmp_path / "off", {}).wandb_id is None
    first = Logger(tmp_path / "a", {"seed": 0}, wandb_mode="offline")
    run_id = first.wandb_id
    first.close()
    resumed = Logger(tmp_path / "a", {"seed": 0}, wandb_mode="offline", resume_step=5, wandb_id=run_id)
    assert run_id and resumed.wandb_id == run_id
    resumed.close()


def test_wandb_online_without_network_goes_offline_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api_key = "k3y" + "0" * 37  # a marker: W&B needs a 40-character key to try the network at all
    monkeypatch.setenv("WANDB_API_KEY", api_key)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("WANDB_MODE", raising=False)
    started = time.perf_counter()
    logger = Logger(tmp_path, {"seed": 0}, wandb_mode="online", name="clip=none seed=0", wandb_init_timeout=3)
    elapsed = time.perf_counter() - started
    write(logger, range(1, 4))
    logger.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("td3exp:")]
    assert len(lines) == 1 and "offline" in lines[0]
    assert elapsed < 30
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and api_key.encode() in p.read_bytes()]
    assert leaked == []
