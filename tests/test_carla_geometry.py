"""Lane geometry and reward terms on real ``carla.Map`` objects built from tiny OpenDRIVE roads (no server)."""

from __future__ import annotations

import math

import carla
import numpy as np
import pytest

from td3exp.envs.carla.geometry import LaneRoute, heading_error
from td3exp.rewards import lane_centering

from .carla_double import (
    CURVE_RADIUS,
    FORK_AT,
    LANE_WIDTH,
    RIGHT_CURVE_RADIUS,
    TAPER_LENGTH,
    curve_map,
    fork_map,
    right_curve_map,
    straight_map,
    taper_map,
)

HALF = LANE_WIDTH / 2


def route_at(town: carla.Map, x: float, y: float, spacing: float = 2.0) -> LaneRoute:
    return LaneRoute(town.get_waypoint(carla.Location(x, y, 0.0)), spacing)


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


def test_right_curve_progress_follows_the_inner_lane_arc() -> None:
    # a right bend (OpenDRIVE curvature < 0) turns towards +y in CARLA: centre (0, R), lane -1 on the inside
    lane_radius = RIGHT_CURVE_RADIUS - HALF
    centre_y = RIGHT_CURVE_RADIUS

    def on_right_curve(angle: float, radius: float) -> carla.Location:
        return at(radius * math.sin(angle), centre_y - radius * math.cos(angle))

    route = route_at(right_curve_map(), 0.0, HALF, spacing=1.0)
    start = route.locate(on_right_curve(0.0, lane_radius), 0.0)
    quarter = route.locate(on_right_curve(0.5, lane_radius), math.degrees(0.5))  # yaw grows: clockwise from above
    assert quarter.s - start.s == pytest.approx(0.5 * lane_radius, rel=1e-3)
    assert quarter.lateral_offset == pytest.approx(0.0, abs=0.01)
    assert quarter.heading_error == pytest.approx(0.0, abs=1.0)
    outside = route.locate(on_right_curve(0.6, lane_radius + 0.5), 0.0)
    inside = route.locate(on_right_curve(0.6, lane_radius - 0.5), 0.0)
    assert outside.lateral_offset == pytest.approx(-0.5, abs=0.01)  # away from the centre: left of this lane
    assert inside.lateral_offset == pytest.approx(0.5, abs=0.01)


def _straight_branch(distance: float) -> carla.Location:
    """``distance`` metres past the fork along the branch going straight on."""
    return at(FORK_AT + distance, HALF)


def _right_branch(distance: float) -> carla.Location:
    """``distance`` metres past the fork along the right-bending branch's lane centre (radius 30 - 1.75 m)."""
    radius = RIGHT_CURVE_RADIUS - HALF
    angle = distance / radius
    return at(FORK_AT + radius * math.sin(angle), RIGHT_CURVE_RADIUS - radius * math.cos(angle))


@pytest.mark.parametrize("branch", [_straight_branch, _right_branch])
def test_at_a_fork_the_route_follows_the_branch_the_car_takes(branch) -> None:
    # the case: a car driving straight on was ended off_lane because the route had taken the other branch
    # (drawn at random before the fix: one of these two failed for every seed)
    route = route_at(fork_map(), FORK_AT - 40.0, HALF)
    for x in np.arange(FORK_AT - 40.0, FORK_AT, 2.0):
        route.locate(at(float(x), HALF), 0.0)
    assert route.branches == 2  # both ways ahead are followed until the car picks one
    for distance in np.arange(1.0, 40.0, 1.0):
        position = route.locate(branch(float(distance)), 0.0)
        assert abs(position.lateral_offset) < 0.2, (distance, position)  # chords of a 2 m polyline on the bend
        assert position.s == pytest.approx(40.0 + distance, abs=0.2)  # metres driven, along either branch
    assert route.branches == 1  # the other branch was dropped once the car was a lane width from it


def test_at_a_fork_leaving_both_branches_is_off_the_lane() -> None:
    route = route_at(fork_map(), FORK_AT - 20.0, HALF)
    for x in np.arange(FORK_AT - 20.0, FORK_AT + 6.0, 2.0):
        route.locate(at(float(x), HALF), 0.0)
    # between the branches, 12 m past the fork: about halfway from each
    straight, bend = _straight_branch(12.0), _right_branch(12.0)
    middle = at((straight.x + bend.x) / 2, (straight.y + bend.y) / 2)
    gap = math.hypot(bend.x - straight.x, bend.y - straight.y)
    assert abs(route.locate(middle, 0.0).lateral_offset) == pytest.approx(gap / 2, abs=0.2)
    beyond = at(FORK_AT + 12.0, HALF - 3.0)  # 3 m left of the straight branch, further still from the other
    assert route.locate(beyond, 0.0).lateral_offset == pytest.approx(-3.0, abs=0.05)


def test_a_lane_tapering_to_width_0_gives_a_finite_lane_centering() -> None:
    # the case: the route's last waypoint, at the end of a lane narrowing to width 0, has lane_width 0.0
    town = taper_map()
    start = town.get_waypoint_xodr(1, -2, 0.0)
    route = LaneRoute(start, 2.0)
    y = start.transform.location.y
    for x in np.arange(0.0, TAPER_LENGTH + 5.0, 1.0):
        position = route.locate(at(float(x), y), 0.0)
        value = lane_centering(position.lateral_offset, position.half_width)
        assert -2.0 <= value <= 0.0, (x, position)
    assert position.half_width == 0.0  # past the lane's end: the width there


@pytest.mark.parametrize("half_width", [0.0, -4.4e-16])  # a taper's end, and float round-off just below 0
def test_lane_centering_in_a_lane_without_width_is_the_cap(half_width: float) -> None:
    assert lane_centering(0.3, half_width) == -2.0
    assert lane_centering(0.0, half_width) == -2.0
