"""Frame-synchronized sensor data: one queue per sensor, read by the frame id that ``World.tick()`` returned.

CARLA calls a sensor's ``listen`` callback on one of its client threads, possibly after ``tick()`` has returned,
and a queue can still hold data of earlier ticks (a slow client, a parked ego).  So the env never takes "the next
item": it asks for the item of one frame, and anything older is stale and dropped.  Queues are bounded, so a
sensor nobody reads for a while (a parked ego's camera during evaluation) cannot grow memory without limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np

from td3exp.envs.carla.errors import SimulatorLost

T = TypeVar("T")


class Stamped(NamedTuple, Generic[T]):
    frame: int
    value: T


class FrameQueue(Generic[T]):
    """A bounded, thread-safe queue of ``Stamped`` items in frame order (the oldest are dropped when full).

    Items of frames up to a floor (``discard_through``: an episode's start) are dropped, also when they arrive later.
    """

    def __init__(self, name: str, capacity: int = 64) -> None:
        self.name = name
        self._items: deque[Stamped[T]] = deque(maxlen=capacity)
        self._changed = threading.Condition()
        self._floor = -1

    def put(self, frame: int, value: T) -> None:
        """Called from the sensor's callback thread."""
        with self._changed:
            if frame > self._floor:
                self._items.append(Stamped(frame, value))
                self._changed.notify_all()

    def take(self, frame: int, timeout: float) -> T:
        """The item of ``frame``, waiting up to ``timeout`` seconds; items of earlier frames are discarded.

        Raises SimulatorLost when it does not come in time, or when a later frame came instead (the server skipped
        it), so a frame from another tick is never returned.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                while self._items and self._items[0].frame < frame:
                    self._items.popleft()  # stale: an earlier tick's data
                if self._items:
                    item = self._items.popleft()
                    if item.frame == frame:
                        return item.value
                    raise SimulatorLost(f"{self.name} delivered frame {item.frame} while frame {frame} was expected")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SimulatorLost(f"{self.name} delivered no data for frame {frame} within {timeout:g} s")
                self._changed.wait(remaining)

    def drain(self, up_to: int) -> list[T]:
        """Without waiting: the items of frames up to ``up_to``, removing them.  An event that came after the drain
        of its own frame is in the next one (lane invasion is a client-side sensor in 0.9.16 and can be late)."""
        with self._changed:
            taken = []
            while self._items and self._items[0].frame <= up_to:
                taken.append(self._items.popleft().value)
            return taken

    def discard_through(self, frame: int) -> None:
        """Drop the items of frames up to ``frame``, now and when they arrive later (what happened before an
        episode started, such as the spawn drop, never counts in it)."""
        with self._changed:
            self._floor = max(self._floor, frame)
            while self._items and self._items[0].frame <= frame:
                self._items.popleft()


def bgra_to_rgb(raw: Any, height: int, width: int) -> np.ndarray:
    """A CARLA camera image (BGRA bytes, row-major) as an (height, width, 3) uint8 RGB array (a copy, so the
    sensor's buffer can be released)."""
    bgra = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4)
    return np.ascontiguousarray(bgra[:, :, 2::-1])
