"""TEST DOUBLE of the parts of CARLA 0.9.16 that cannot exist without a server (client, world, actors, sensor data).

Everything else the env touches is the real ``carla`` module: maps are real ``carla.Map`` objects built from the
small OpenDRIVE roads in ``maps``, and transforms, locations, controls and world settings are real carla types.  The
double's method names, parameters and defaults are checked against the compiled module's docstrings
(``tests/test_carla_double.py``), so it cannot drift from the API the env calls.
"""

from __future__ import annotations

from .actors import Actor, CollisionEvent, Image, LaneInvasionEvent, Sensor, Vehicle
from .client import ActorBlueprint, BlueprintLibrary, Client, TrafficManager, World, WorldSnapshot
from .maps import (
    CURVE_RADIUS,
    FORK_AT,
    LANE_WIDTH,
    RIGHT_CURVE_RADIUS,
    TAPER_LENGTH,
    curve_map,
    fork_map,
    right_curve_map,
    road_xodr,
    straight_map,
    taper_map,
)
from .server import SERVERS, FakeServer

__all__ = [
    "SERVERS", "Actor", "ActorBlueprint", "BlueprintLibrary", "Client", "CollisionEvent", "CURVE_RADIUS",
    "FakeServer", "Image", "LANE_WIDTH", "LaneInvasionEvent", "Sensor", "TrafficManager", "Vehicle", "World",
    "WorldSnapshot",
    "curve_map", "road_xodr", "straight_map", "FORK_AT", "RIGHT_CURVE_RADIUS", "TAPER_LENGTH", "fork_map",
    "right_curve_map", "taper_map",
]
