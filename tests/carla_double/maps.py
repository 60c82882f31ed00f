"""Small real OpenDRIVE roads (``carla.Map(name, xodr)`` needs no server): what the double server loads."""

from __future__ import annotations

import math

import carla

LANE_WIDTH = 3.5
CURVE_RADIUS = 50.0
RIGHT_CURVE_RADIUS = 30.0
FORK_AT = 100.0  # x where the fork map's road splits
TAPER_LENGTH = 40.0  # metres over which the taper map's lane -2 narrows to width 0

HEADER = '<?xml version="1.0" standalone="yes"?>\n<OpenDRIVE><header revMajor="1" revMinor="4" name="td3exp_test" ' \
         'version="1.00"/>'
CENTER = '<center><lane id="0" type="none" level="false"><link/></lane></center>'


def _lane(lane_id: int, width: str, link: str = "") -> str:
    return f'<lane id="{lane_id}" type="driving" level="false"><link>{link}</link><width sOffset="0.0" {width}/></lane>'


def _constant(width: float) -> str:
    return f'a="{width}" b="0" c="0" d="0"'


def road_xodr(geometry: str, length: float, right_lanes: int = 1, width: float = LANE_WIDTH) -> str:
    """One OpenDRIVE road starting at the origin heading +x: one lane left of the reference line (id 1, driving
    the other way) and ``right_lanes`` lanes right of it (ids -1, -2, ...).  CARLA flips y, so the right lanes lie
    at positive y: lane -1's centre is y = +width/2 on a straight road."""
    right = "".join(_lane(-i, _constant(width)) for i in range(1, right_lanes + 1))
    return f"""{HEADER}
<road name="road" length="{length}" id="1" junction="-1"><link/>
<planView><geometry s="0.0" x="0.0" y="0.0" hdg="0.0" length="{length}">{geometry}</geometry></planView>
<elevationProfile/><lateralProfile/>
<lanes><laneSection s="0.0">
<left>{_lane(1, _constant(width))}</left>{CENTER}<right>{right}</right>
</laneSection></lanes></road></OpenDRIVE>"""


def straight_map(length: float = 200.0, right_lanes: int = 2, width: float = LANE_WIDTH) -> carla.Map:
    """A straight road along +x."""
    return carla.Map("straight", road_xodr("<line/>", length, right_lanes, width))


def curve_map() -> carla.Map:
    """A quarter circle of radius 50 m (OpenDRIVE curvature > 0: a left turn; in CARLA's flipped y it bends
    towards -y, its centre at (0, -50))."""
    return carla.Map("curve", road_xodr(f'<arc curvature="{1 / CURVE_RADIUS}"/>', math.pi * CURVE_RADIUS / 2, 1))


def right_curve_map() -> carla.Map:
    """A quarter circle of radius 30 m bending right (OpenDRIVE curvature < 0; in CARLA's flipped y it bends
    towards +y, its centre at (0, 30)): lane -1 lies on the inside, at radius 30 - 1.75 m."""
    radius = RIGHT_CURVE_RADIUS
    return carla.Map("right_curve", road_xodr(f'<arc curvature="{-1 / radius}"/>', math.pi * radius / 2, 1))


def taper_map() -> carla.Map:
    """A straight road whose lane -2 narrows to width 0 over ``TAPER_LENGTH`` metres (a cubic taper, as OpenDRIVE
    maps draw an ending lane), next to a lane -1 of constant width.  Its last waypoint 2 m apart has width 0.0."""
    length, w = TAPER_LENGTH, LANE_WIDTH
    taper = f'a="{w}" b="0" c="{-3 * w / length**2}" d="{2 * w / length**3}"'
    return carla.Map("taper", f"""{HEADER}
<road name="road" length="{length}" id="1" junction="-1"><link/>
<planView><geometry s="0.0" x="0.0" y="0.0" hdg="0.0" length="{length}"><line/></geometry></planView>
<elevationProfile/><lateralProfile/>
<lanes><laneSection s="0.0">
<left>{_lane(1, _constant(w))}</left>{CENTER}<right>{_lane(-1, _constant(w))}{_lane(-2, taper)}</right>
</laneSection></lanes></road></OpenDRIVE>""")


def _branch(road_id: int, x: float, length: float, geometry: str) -> str:
    """A one-lane road of the fork's junction, starting where road 1 ends."""
    return f"""<road name="r{road_id}" length="{length}" id="{road_id}" junction="100">
<link><predecessor elementType="road" elementId="1" contactPoint="end"/></link>
<planView><geometry s="0.0" x="{x}" y="0.0" hdg="0.0" length="{length}">{geometry}</geometry></planView>
<elevationProfile/><lateralProfile/>
<lanes><laneSection s="0.0">{CENTER}<right>{_lane(-1, _constant(LANE_WIDTH), '<predecessor id="-1"/>')}</right>
</laneSection></lanes></road>"""


def fork_map() -> carla.Map:
    """One lane (-1, centre y = 1.75) along +x that splits at x = ``FORK_AT`` into a branch going straight on
    (road 2, 200 m) and one bending right with radius 30 m (road 3, a quarter circle): ``next()`` at the fork
    returns both."""
    arc = math.pi * RIGHT_CURVE_RADIUS / 2
    return carla.Map("fork", f"""{HEADER}
<road name="r1" length="{FORK_AT}" id="1" junction="-1">
<link><successor elementType="junction" elementId="100"/></link>
<planView><geometry s="0.0" x="0.0" y="0.0" hdg="0.0" length="{FORK_AT}"><line/></geometry></planView>
<elevationProfile/><lateralProfile/>
<lanes><laneSection s="0.0">{CENTER}<right>{_lane(-1, _constant(LANE_WIDTH))}</right></laneSection></lanes></road>
{_branch(2, FORK_AT, 200.0, "<line/>")}
{_branch(3, FORK_AT, arc, f'<arc curvature="{-1 / RIGHT_CURVE_RADIUS}"/>')}
<junction id="100" name="fork">
<connection id="0" incomingRoad="1" connectingRoad="2" contactPoint="start"><laneLink from="-1" to="-1"/></connection>
<connection id="1" incomingRoad="1" connectingRoad="3" contactPoint="start"><laneLink from="-1" to="-1"/></connection>
</junction></OpenDRIVE>""")
