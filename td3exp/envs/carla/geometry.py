"""Lane geometry from CARLA's Map/waypoint API: the episode's lane as a route of waypoints, and where the car is
on it (arc length, signed lateral offset, lane half width, heading error).

Works on any ``carla.Map``, including one built offline from an OpenDRIVE string (``carla.Map(name, xodr)``), so
it is tested without a server.  CARLA's coordinates are left-handed (x forward, y right, z up; yaw clockwise seen
from above): a lane's right vector for heading (fx, fy) is (-fy, fx), and a positive lateral offset is to the right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import carla
import numpy as np


def heading_error(vehicle_yaw: float, lane_yaw: float) -> float:
    """Vehicle yaw minus lane yaw in degrees, wrapped to [-180, 180): 179 vs -179 is -2, not 358."""
    return (vehicle_yaw - lane_yaw + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class LanePosition:
    s: float  # metres along the route from the episode's start point (negative behind it)
    lateral_offset: float  # metres from the lane centre, positive to the right of the driving direction
    half_width: float  # half the lane width at that point, metres
    heading_error: float  # vehicle yaw minus lane yaw, degrees in [-180, 180)


class LaneRoute:
    """The lane the episode starts in, as a polyline of waypoints ``spacing`` metres apart.

    The route runs ``behind`` metres back from the start (so driving backwards is measured) and is extended ahead
    on demand; at a fork the branch is drawn from ``rng``, so a seed fixes the route.  Projection searches a window
    around the last matched segment, so a road that loops back near itself is not confused with its later part.
    """

    def __init__(self, start: carla.Waypoint, spacing: float, rng: np.random.Generator, behind: float = 10.0,
                 ahead: float = 60.0, window: int = 25) -> None:
        self.spacing, self.rng, self.ahead, self.window = spacing, rng, ahead, window
        back: list[carla.Waypoint] = []
        current = start
        for _ in range(int(behind / spacing)):
            previous = current.previous(spacing)
            if not previous:
                break
            current = previous[0]
            back.append(current)
        self._waypoints: list[carla.Waypoint] = [*reversed(back), start]
        self._points = [_xy(w) for w in self._waypoints]
        self._s = [0.0]
        for a, b in zip(self._points, self._points[1:], strict=False):
            self._s.append(self._s[-1] + math.dist(a, b))
        self._s = [s - self._s[-1] for s in self._s]  # s = 0 at the start waypoint
        self._index = len(self._points) - 1
        self._dead_end = False
        self._extend()
        if len(self._points) < 2:
            raise ValueError(f"the lane at {start.transform.location} has no waypoint within {spacing} m")

    @property
    def length_ahead(self) -> float:
        return self._s[-1]

    def _extend(self) -> None:
        """Append waypoints until the route reaches ``ahead`` metres past the last matched point."""
        while not self._dead_end and self._s[-1] - self._s[self._index] < self.ahead:
            options = self._waypoints[-1].next(self.spacing)
            if not options:
                self._dead_end = True  # the lane ends (a map edge); projection clamps to its last point
                break
            nxt = options[int(self.rng.integers(len(options)))]
            point = _xy(nxt)
            self._s.append(self._s[-1] + math.dist(self._points[-1], point))
            self._points.append(point)
            self._waypoints.append(nxt)

    def locate(self, location: carla.Location, yaw: float) -> LanePosition:
        """Where a car at ``location`` with heading ``yaw`` (degrees) is on the route."""
        lo = max(self._index - self.window, 0)
        hi = min(self._index + self.window, len(self._points) - 1)
        p = np.array([location.x, location.y])
        a = np.array(self._points[lo:hi])
        b = np.array(self._points[lo + 1:hi + 1])
        ab = b - a
        length_sq = np.einsum("ij,ij->i", ab, ab)
        # a zero-length segment (duplicate waypoints) has t = 0: no division by zero, no NaN
        t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.maximum(length_sq, 1e-12), 0.0, 1.0)
        closest = a + t[:, None] * ab
        k = int(np.argmin(np.sum((closest - p) ** 2, axis=1)))
        i = lo + k
        self._index = i
        self._extend()
        direction = ab[k] / max(math.sqrt(length_sq[k]), 1e-12)
        right = np.array([-direction[1], direction[0]])  # left-handed: heading (1, 0) has its right at (0, 1)
        lateral = float(np.dot(p - closest[k], right))
        w0, w1 = self._waypoints[i].lane_width, self._waypoints[i + 1].lane_width
        width = w0 + float(t[k]) * (w1 - w0)
        lane_yaw = math.degrees(math.atan2(direction[1], direction[0]))
        s = self._s[i] + float(t[k]) * (self._s[i + 1] - self._s[i])
        return LanePosition(s, lateral, width / 2.0, heading_error(yaw, lane_yaw))


def _xy(waypoint: carla.Waypoint) -> tuple[float, float]:
    location = waypoint.transform.location
    return (location.x, location.y)
