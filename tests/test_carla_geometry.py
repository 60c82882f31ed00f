"""Lane geometry and reward terms on real ``carla.Map`` objects built from tiny OpenDRIVE roads (no server)."""

from __future__ import annotations

import math

import carla
import numpy as np
import pytest

from td3exp.envs.carla.geometry import LaneRoute, heading_error
from td3exp.rewards import lane_centering

from .carla_double import CURVE_RADIUS, LANE_WIDTH, curve_map, straight_map

HALF = LANE_WIDTH / 2


def route_at(town: carla.Map, x: float, y: float, spacing: float = 2.0, seed: int = 0) -> LaneRoute:
    return LaneRoute(town.get_waypoint(carla.Location(x, y, 0.0)), spacing, np.random.default_rng(seed))


def at(x: float, y: float) -> carla.Location:
    return carla.Location(x, y, 0.0)


def test_left_handed_coordinates_put_the_right_lane_at_positive_y() -> None:
    waypoint = straight_map().get_waypoint(at(50.0, 1.0))
    assert waypoint.lane_id == -1 and waypoint.transform.location.y == pytest.approx(HALF)
    assert waypoint.transform.get_right_vector().y == pytest.approx(1.0)  # heading +x, right is +y


def test_lane_centering_is_zero_on_the_centre_line_and_symmetric() -> None:
    route = route_at(straight_map(), 50.0, HALF)
    centre = route.locate(at(51.0, HALF), 0.0)
    assert centre.lateral_offset == pytest.approx(0.0, abs=1e-9)
    assert centre.half_width == pytest.approx(HALF)
    right = route.locate(at(51.0, HALF + 0.5), 0.0)
    left = route.locate(at(51.0, HALF - 0.5), 0.0)
    assert right.lateral_offset == pytest.approx(0.5) and left.lateral_offset == pytest.approx(-0.5)
    assert lane_centering(right.lateral_offset, right.half_width) == pytest.approx(-0.5 / HALF)
    assert lane_centering(left.lateral_offset, left.half_width) == lane_centering(right.lateral_offset, HALF)


def test_lane_centering_scales_with_lane_width() -> None:
    narrow = route_at(straight_map(width=3.0), 50.0, 1.5).locate(at(51.0, 2.5), 0.0)
    wide = route_at(straight_map(width=4.0), 50.0, 2.0).locate(at(51.0, 3.0), 0.0)
    assert narrow.lateral_offset == pytest.approx(wide.lateral_offset) == pytest.approx(1.0)
    assert lane_centering(narrow.lateral_offset, narrow.half_width) == pytest.approx(-1.0 / 1.5)
    assert lane_centering(wide.lateral_offset, wide.half_width) == pytest.approx(-1.0 / 2.0)


def test_no_nan_exactly_on_a_waypoint() -> None:
    route = route_at(straight_map(), 50.0, HALF, spacing=2.0)
    for x in (40.0, 50.0, 52.0, 54.0):  # route waypoints (the start, points behind and ahead of it)
        position = route.locate(at(x, HALF), 0.0)
        assert all(math.isfinite(v) for v in (position.s, position.lateral_offset, position.heading_error))
        assert position.lateral_offset == 0.0 and position.s == pytest.approx(x - 50.0)


def test_progress_is_metres_along_the_lane_forwards_and_backwards() -> None:
    route = route_at(straight_map(), 50.0, HALF)
    start = route.locate(at(50.0, HALF), 0.0).s
    forward = route.locate(at(53.0, HALF + 0.4), 0.0).s
    assert forward - start == pytest.approx(3.0)  # lateral drift does not count as progress
    backward = route.locate(at(47.0, HALF), 180.0)
    assert backward.s - forward == pytest.approx(-6.0)
    assert abs(backward.heading_error) == pytest.approx(180.0)


def test_standing_still_makes_no_progress() -> None:
    route = route_at(straight_map(), 50.0, HALF)
    first = route.locate(at(61.3, HALF + 0.2), 3.0)
    assert [route.locate(at(61.3, HALF + 0.2), 3.0).s - first.s for _ in range(5)] == [0.0] * 5


def test_the_route_extends_ahead_as_the_car_drives() -> None:
    route = route_at(straight_map(), 10.0, HALF)
    for x in np.arange(10.0, 190.0, 5.0):  # far beyond the initial look-ahead of 60 m
        assert route.locate(at(float(x), HALF), 0.0).s == pytest.approx(x - 10.0)


def test_heading_error_wraps_at_180_degrees() -> None:
    assert heading_error(179.0, -179.0) == pytest.approx(-2.0)
    assert heading_error(-179.0, 179.0) == pytest.approx(2.0)
    assert heading_error(360.0, 0.0) == pytest.approx(0.0)
    # the opposite lane of the straight road runs at yaw 180: a car at yaw -179 is 1 degree off, not 359
    route = route_at(straight_map(), 100.0, -HALF)
    assert route.locate(at(99.0, -HALF), -179.0).heading_error == pytest.approx(1.0)
    assert route.locate(at(98.0, -HALF), -179.0).s == pytest.approx(2.0)  # that lane runs towards -x


def test_lane_change_is_a_full_lane_width_off_the_route() -> None:
    route = route_at(straight_map(right_lanes=2), 50.0, HALF)
    before = route.locate(at(60.0, HALF), 0.0)
    changed = route.locate(at(70.0, HALF + LANE_WIDTH), 0.0)  # centre of lane -2
    assert changed.lateral_offset == pytest.approx(LANE_WIDTH)
    assert lane_centering(changed.lateral_offset, changed.half_width) == -2.0  # capped
    assert changed.s - before.s == pytest.approx(10.0)


def _on_curve(angle: float, radius: float) -> carla.Location:
    """A point ``angle`` radians along a circle about the curve's centre (0, -R) in CARLA coordinates."""
    return at(radius * math.sin(angle), -CURVE_RADIUS + radius * math.cos(angle))


def test_curve_progress_follows_the_lane_arc_and_offsets_are_left_handed() -> None:
    lane_radius = CURVE_RADIUS + HALF  # lane -1 lies outside the reference line of this left-bending curve
    route = route_at(curve_map(), 0.0, HALF, spacing=1.0)
    start = route.locate(_on_curve(0.0, lane_radius), 0.0)
    quarter = route.locate(_on_curve(0.5, lane_radius), -math.degrees(0.5))
    assert quarter.s - start.s == pytest.approx(0.5 * lane_radius, rel=1e-3)
    assert quarter.lateral_offset == pytest.approx(0.0, abs=0.01)
    assert quarter.heading_error == pytest.approx(0.0, abs=1.0)
    outside = route.locate(_on_curve(0.6, lane_radius + 0.5), 0.0)
    inside = route.locate(_on_curve(0.6, lane_radius - 0.5), 0.0)
    assert outside.lateral_offset == pytest.approx(0.5, abs=0.01)  # away from the centre: right of the lane
    assert inside.lateral_offset == pytest.approx(-0.5, abs=0.01)
