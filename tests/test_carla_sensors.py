"""The sensors' frame queue with real threads (no CARLA part involved)."""

from __future__ import annotations

import threading

import pytest

from td3exp.envs.carla.errors import SimulatorLost
from td3exp.envs.carla.sensors import FrameQueue


def test_an_event_after_its_steps_drain_counts_in_the_next_step() -> None:
    # the sequence: put(101) after the step of frame 101 drained
    events: FrameQueue[str] = FrameQueue("lane invasion")
    events.put(100, "at 100")
    assert events.drain(101) == ["at 100"]
    events.put(101, "late")
    assert events.drain(102) == ["late"]
    assert events.drain(103) == []


def test_events_before_the_floor_never_count_even_when_late() -> None:
    events: FrameQueue[str] = FrameQueue("collision")
    events.put(104, "drop")
    events.discard_through(105)  # the episode starts at frame 105
    events.put(105, "late drop")
    events.put(106, "in the episode")
    assert events.drain(106) == ["in the episode"]


def test_take_waits_for_its_frame_from_another_thread_and_skips_stale_ones() -> None:
    frames: FrameQueue[int] = FrameQueue("the camera")
    frames.put(9, 9)
    threading.Timer(0.05, frames.put, (10, 10)).start()
    assert frames.take(10, timeout=5.0) == 10
    frames.put(12, 12)
    with pytest.raises(SimulatorLost, match="delivered frame 12 while frame 11 was expected"):
        frames.take(11, timeout=1.0)
    with pytest.raises(SimulatorLost, match="no data for frame 13 within 0.05 s"):
        frames.take(13, timeout=0.05)
