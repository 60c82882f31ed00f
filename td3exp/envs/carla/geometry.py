"""Lane geometry from CARLA's Map/waypoint API: the episode's lane as a route of waypoints, and where the car is
on it (arc length, signed lateral offset, lane half width, heading error).

Works on any ``carla.Map``, including one built offline from an OpenDRIVE string (``carla.Map(name, xodr)``), so
it is tested without a server.  CARLA's coordinates are left-handed (x forward, y right, z up; yaw clockwise seen
from above): a lane's right vector for heading (fx, fy) is (-fy, fx), and a positive lateral offset is to the right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import carla
import numpy as np

MAX_BRANCHES = 16  # forks followed at once within the look-ahead (a junction has 2-4 ways out)


def heading_error(vehicle_yaw: float, lane_yaw: float) -> float:
    """Vehicle yaw minus lane yaw in degrees, wrapped to [-180, 180): 179 vs -179 is -2, not 358."""
    return (vehicle_yaw - lane_yaw + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class LanePosition:
    s: float  # metres along the route from the episode's start point (negative behind it)
    lateral_offset: float  # metres from the lane centre, positive to the right of the driving direction
    half_width: float  # half the lane width at that point, metres
    heading_error: float  # vehicle yaw minus lane yaw, degrees in [-180, 180)


@dataclass
class _Branch:
    """One way along the lane from the route's start: waypoints, their (x, y), arc lengths, last matched segment."""

    waypoints: list[carla.Waypoint]
    points: list[tuple[float, float]]
    s: list[float]
    index: int
    dead_end: bool = field(default=False)

    def fork(self, waypoint: carla.Waypoint) -> _Branch:
        branch = _Branch(list(self.waypoints), list(self.points), list(self.s), self.index)
        branch.append(waypoint)
        return branch

    def append(self, waypoint: carla.Waypoint) -> None:
        point = _xy(waypoint)
        self.s.append(self.s[-1] + math.dist(self.points[-1], point))
        self.points.append(point)
        self.waypoints.append(waypoint)


@dataclass(frozen=True)
class _Match:
    distance: float  # metres from the car to its closest point on the branch
    index: int  # the segment it lies on
    position: LanePosition


class LaneRoute:
    """The lane the episode starts in, as polylines of waypoints ``spacing`` metres apart.

    The route runs ``behind`` metres back from the start (so driving backwards is measured) and is extended ahead
    on demand.  At a fork every branch is followed, and the car is located on the branch closest to it: the lane it
    actually drives, which a camera-only agent can see (a branch drawn at random could not be).  A branch the car is
    a lane width further from than the closest one is dropped, so its lateral offset is large only off all branches.
    Projection searches a window around the last matched segment, so a road that loops back near itself is not
    confused with its later part.
    """

    def __init__(self, start: carla.Waypoint, spacing: float, behind: float = 10.0, ahead: float = 60.0,
                 window: int = 25) -> None:
        self.spacing, self.ahead, self.window = spacing, ahead, window
        back: list[carla.Waypoint] = []
        current = start
        for _ in range(int(behind / spacing)):
            previous = current.previous(spacing)
            if not previous:
                break
            current = previous[0]
            back.append(current)
        waypoints = [*reversed(back), start]
        points = [_xy(w) for w in waypoints]
        s = [0.0]
        for a, b in zip(points, points[1:], strict=False):
            s.append(s[-1] + math.dist(a, b))
        s = [value - s[-1] for value in s]  # s = 0 at the start waypoint
        self._branches = [_Branch(waypoints, points, s, len(points) - 1)]
        self._extend()
        if len(self._branches[0].points) < 2:
            raise ValueError(f"the lane at {start.transform.location} has no waypoint within {spacing} m")

    @property
    def length_ahead(self) -> float:
        return max(branch.s[-1] for branch in self._branches)

    @property
    def branches(self) -> int:
        """How many ways ahead are still followed (more than 1 between a fork and the car's choice)."""
        return len(self._branches)

    def _extend(self) -> None:
        """Grow every branch to ``ahead`` metres past its last matched point, splitting it at forks."""
        pending, grown = list(self._branches), list[_Branch]()
        while pending:
            branch = pending.pop()
            while not branch.dead_end and branch.s[-1] - branch.s[branch.index] < self.ahead:
                options = branch.waypoints[-1].next(self.spacing)
                if not options:
                    branch.dead_end = True  # the lane ends (a map edge); projection clamps to its last point
                    break
                room = MAX_BRANCHES - len(pending) - len(grown) - 1
                pending.extend(branch.fork(option) for option in options[1:1 + max(room, 0)])
                branch.append(options[0])
            grown.append(branch)
        self._branches = grown

    def locate(self, location: carla.Location, yaw: float) -> LanePosition:
        """Where a car at ``location`` with heading ``yaw`` (degrees) is on the route: on the closest branch."""
        p = np.array([location.x, location.y])
        matches = [self._match(branch, p, yaw) for branch in self._branches]
        best = min(range(len(matches)), key=lambda k: matches[k].distance)
        margin = 2.0 * matches[best].position.half_width  # a lane width
        kept = []
        for branch, match in zip(self._branches, matches, strict=True):
            if match.distance <= matches[best].distance + margin or match is matches[best]:
                branch.index = match.index
                kept.append(branch)
        self._branches = kept
        self._extend()
        return matches[best].position

    def _match(self, branch: _Branch, p: np.ndarray, yaw: float) -> _Match:
        lo = max(branch.index - self.window, 0)
        hi = min(branch.index + self.window, len(branch.points) - 1)
        a = np.array(branch.points[lo:hi])
        b = np.array(branch.points[lo + 1:hi + 1])
        ab = b - a
        length_sq = np.einsum("ij,ij->i", ab, ab)
        # a zero-length segment (duplicate waypoints) has t = 0: no division by zero, no NaN
        t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.maximum(length_sq, 1e-12), 0.0, 1.0)
        closest = a + t[:, None] * ab
        squared = np.sum((closest - p) ** 2, axis=1)
        k = int(np.argmin(squared))
        i = lo + k
        direction = ab[k] / max(math.sqrt(length_sq[k]), 1e-12)
        right = np.array([-direction[1], direction[0]])  # left-handed: heading (1, 0) has its right at (0, 1)
        lateral = float(np.dot(p - closest[k], right))
        w0, w1 = branch.waypoints[i].lane_width, branch.waypoints[i + 1].lane_width
        width = w0 + float(t[k]) * (w1 - w0)
        lane_yaw = math.degrees(math.atan2(direction[1], direction[0]))
        s = branch.s[i] + float(t[k]) * (branch.s[i + 1] - branch.s[i])
        position = LanePosition(s, lateral, width / 2.0, heading_error(yaw, lane_yaw))
        return _Match(math.sqrt(float(squared[k])), i, position)


def _xy(waypoint: carla.Waypoint) -> tuple[float, float]:
    location = waypoint.transform.location
    return (location.x, location.y)
