"""Small real OpenDRIVE roads (``carla.Map(name, xodr)`` needs no server): what the double server loads."""

from __future__ import annotations

import math

import carla

LANE_WIDTH = 3.5


def _lane(lane_id: int, width: float) -> str:
    return (f'<lane id="{lane_id}" type="driving" level="false"><link/>'
            f'<width sOffset="0.0" a="{width}" b="0" c="0" d="0"/></lane>')


def road_xodr(geometry: str, length: float, right_lanes: int = 1, width: float = LANE_WIDTH) -> str:
    """One OpenDRIVE road starting at the origin heading +x: one lane left of the reference line (id 1, driving
    the other way) and ``right_lanes`` lanes right of it (ids -1, -2, ...).  CARLA flips y, so the right lanes lie
    at positive y: lane -1's centre is y = +width/2 on a straight road."""
    right = "".join(_lane(-i, width) for i in range(1, right_lanes + 1))
    return f"""<?xml version="1.0" standalone="yes"?>
<OpenDRIVE><header revMajor="1" revMinor="4" name="td3exp_test" version="1.00"/>
<road name="road" length="{length}" id="1" junction="-1"><link/>
<planView><geometry s="0.0" x="0.0" y="0.0" hdg="0.0" length="{length}">{geometry}</geometry></planView>
<elevationProfile/><lateralProfile/>
<lanes><laneSection s="0.0">
<left>{_lane(1, width)}</left>
<center><lane id="0" type="none" level="false"><link/></lane></center>
<right>{right}</right>
</laneSection></lanes></road></OpenDRIVE>"""


def straight_map(length: float = 200.0, right_lanes: int = 2, width: float = LANE_WIDTH) -> carla.Map:
    """A straight road along +x."""
    return carla.Map("straight", road_xodr("<line/>", length, right_lanes, width))


CURVE_RADIUS = 50.0


def curve_map() -> carla.Map:
    """A quarter circle of radius 50 m (OpenDRIVE curvature > 0: a left turn; in CARLA's flipped y it bends
    towards -y, its centre at (0, -50))."""
    return carla.Map("curve", road_xodr(f'<arc curvature="{1 / CURVE_RADIUS}"/>', math.pi * CURVE_RADIUS / 2, 1))
