"""TEST DOUBLE of the parts of CARLA 0.9.16 that cannot exist without a server (client, world, actors, sensor data).

Everything else the env touches is the real ``carla`` module: maps are real ``carla.Map`` objects built from the
small OpenDRIVE roads below, and transforms, locations, controls and world settings are real carla types.  The
double's method names, parameters and defaults are checked against the compiled module's docstrings
(``tests/test_carla_double.py``), so it cannot drift from the API the env calls.
"""

from __future__ import annotations

import math
import socket

import carla
import numpy as np

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


# ---------------------------------------------------------------------------------------------------------------
# The server side: what a CARLA server would hold.  Tests drive faults through FakeServer's knobs.

SERVERS: dict[tuple[str, int], FakeServer] = {}


class FakeServer:
    """The simulated state of one CARLA server at host:port (clients find it by address).

    Knobs for faults: ``crash(refuse=n)`` loses all state and refuses the next ``n`` connections;
    ``mute_cameras()`` silences the cameras that exist now (a sensor that stops streaming); ``stale_images``
    delivers an extra camera image stamped with the previous frame (filled with 255) on every tick;
    ``pending_collisions`` makes those vehicles collide on the next tick; ``listen_port`` ties "up" to a real
    process listening there (server restarts).
    """

    def __init__(self, town: carla.Map, host: str = "127.0.0.1", port: int = 2000,
                 listen_port: int | None = None) -> None:
        self.town, self.host, self.port, self.listen_port = town, host, port, listen_port
        self.refuse = 0
        self.muted: set[int] = set()
        self.stale_images = False
        self.clients: list[Client] = []
        self.loaded_maps: list[str] = []
        self.pending_collisions: list[int] = []  # vehicle ids that collide on the next tick
        self.blocking_calls: list[tuple[str, float]] = []  # (call, its time-out in seconds)
        self._reset_state()
        SERVERS[(host, port)] = self

    def _reset_state(self) -> None:
        self.settings = carla.WorldSettings()  # asynchronous, variable step: a fresh server
        self.map_name = "Carla/Maps/Town10HD_Opt"
        self.frame = 100
        self.actors: dict[int, Actor] = {}
        self.next_id = 1
        self.tm_synchronous: dict[int, bool] = {}
        self.weather: object | None = None

    def crash(self, refuse: int = 0) -> None:
        self._reset_state()
        self.refuse = refuse

    def mute_cameras(self) -> None:
        self.muted |= {a.id for a in self.live("sensor.camera")}

    def check(self) -> None:
        """Raise what carla raises when no server answers."""
        up = self.listen_port is None or _port_open(self.host, self.listen_port)
        if not up:
            raise RuntimeError(f"time-out of 100ms while waiting for the simulator, make sure the simulator is "
                               f"ready and connected to {self.host}:{self.port}")

    def live(self, prefix: str = "") -> list[Actor]:
        return [a for a in self.actors.values() if a.type_id.startswith(prefix)]

    def spawn(self, blueprint: ActorBlueprint, transform: carla.Transform, parent: Actor | None) -> Actor:
        cls = Sensor if blueprint.id.startswith("sensor.") else Vehicle
        actor = cls(self, self.next_id, blueprint.id, dict(blueprint.attributes), _copy(transform), parent)
        self.actors[actor.id] = actor
        self.next_id += 1
        return actor

    def occupied(self, transform: carla.Transform) -> bool:
        return any(v.location.distance(transform.location) < 2.0 for v in self.live("vehicle.") if v.physics)

    def tick(self) -> int:
        self.check()
        self.frame += 1
        dt = self.settings.fixed_delta_seconds or 0.05
        for vehicle in self.live("vehicle."):
            vehicle.simulate(dt)
        for sensor in self.live("sensor."):
            if sensor.callback is not None:
                sensor.deliver(self.frame)
        self.pending_collisions = []
        return self.frame


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _copy_settings(s: carla.WorldSettings) -> carla.WorldSettings:
    return carla.WorldSettings(synchronous_mode=s.synchronous_mode, no_rendering_mode=s.no_rendering_mode,
                               fixed_delta_seconds=s.fixed_delta_seconds or 0.0)


def _copy(t: carla.Transform) -> carla.Transform:
    return carla.Transform(carla.Location(t.location.x, t.location.y, t.location.z),
                           carla.Rotation(t.rotation.pitch, t.rotation.yaw, t.rotation.roll))


# ---------------------------------------------------------------------------------------------------------------
# The client side, mirroring carla.Client, World, Actor, Vehicle, Sensor, TrafficManager, BlueprintLibrary and
# ActorBlueprint: same method names, parameter names and defaults (tests/test_carla_double.py checks them).


class Client:
    def __init__(self, host: str = "127.0.0.1", port: int = 2000, worker_threads: int = 0) -> None:
        self._server = SERVERS[(host, port)]
        self._timeout = 5.0
        self._server.clients.append(self)

    def _connected(self) -> FakeServer:
        self._server.check()
        if self._server.refuse > 0:
            self._server.refuse -= 1
            raise RuntimeError("time-out of 100ms while waiting for the simulator (refused)")
        return self._server

    def set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def get_server_version(self) -> str:
        self._connected()
        return "0.9.16"

    def get_world(self) -> World:
        return World(self._connected())

    def load_world_if_different(self, map_name: str, reset_settings: bool = True,
                                map_layers: carla.MapLayer = carla.MapLayer.All) -> None:
        server = self._connected()
        server.blocking_calls.append(("load_world_if_different", self._timeout))
        if not server.map_name.endswith(map_name):
            server.actors.clear()  # loading a map destroys every actor
            server.map_name = f"Carla/Maps/{map_name}"
            server.loaded_maps.append(map_name)
            if reset_settings:
                server.settings = carla.WorldSettings()

    def get_trafficmanager(self, port: int = 8000) -> TrafficManager:
        return TrafficManager(self._connected(), port)

    def apply_batch_sync(self, commands: object, do_tick: bool = False) -> list:
        server = self._connected()
        for command in commands:  # type: ignore[attr-defined]
            actor = server.actors.pop(command.actor_id, None)
            if isinstance(actor, Sensor) and actor.callback is not None:
                raise AssertionError(f"sensor {actor.id} destroyed while listening (stop it first)")
        return []


class World:
    def __init__(self, server: FakeServer) -> None:
        self._server = server

    def get_settings(self) -> carla.WorldSettings:
        self._server.check()
        return _copy_settings(self._server.settings)

    def apply_settings(self, settings: carla.WorldSettings, seconds: float = 0.0) -> int:
        self._server.check()
        self._server.blocking_calls.append(("apply_settings", seconds))
        self._server.settings = _copy_settings(settings)
        return self._server.frame

    def tick(self, seconds: float = 0.0) -> int:
        self._server.blocking_calls.append(("tick", seconds))
        return self._server.tick()

    def get_map(self) -> carla.Map:
        self._server.check()
        return self._server.town

    def get_blueprint_library(self) -> BlueprintLibrary:
        return BlueprintLibrary()

    def get_actors(self) -> list[Actor]:
        self._server.check()
        return list(self._server.actors.values())

    def set_weather(self, arg2: carla.WeatherParameters) -> None:
        self._server.weather = arg2

    def try_spawn_actor(self, blueprint: ActorBlueprint, transform: carla.Transform, attach_to: Actor | None = None,
                        attachment_type: carla.AttachmentType = carla.AttachmentType.Rigid,
                        bone: str = "") -> Actor | None:
        self._server.check()
        if attach_to is None and self._server.occupied(transform):
            return None
        return self._server.spawn(blueprint, transform, attach_to)

    def spawn_actor(self, blueprint: ActorBlueprint, transform: carla.Transform, attach_to: Actor | None = None,
                    attachment_type: carla.AttachmentType = carla.AttachmentType.Rigid, bone: str = "") -> Actor:
        actor = self.try_spawn_actor(blueprint, transform, attach_to, attachment_type, bone)
        if actor is None:
            raise RuntimeError("Spawn failed because of collision at spawn position")
        return actor


class BlueprintLibrary:
    def find(self, id: str) -> ActorBlueprint:  # noqa: A002 (carla's parameter name)
        return ActorBlueprint(id)


class ActorBlueprint:
    def __init__(self, blueprint_id: str) -> None:
        self.id = blueprint_id
        self.attributes: dict[str, str] = {"role_name": ""}

    def has_attribute(self, arg2: str) -> bool:
        return arg2 in self.attributes

    def set_attribute(self, arg2: str, arg3: str) -> None:
        self.attributes[arg2] = arg3


class TrafficManager:
    def __init__(self, server: FakeServer, port: int) -> None:
        self._server, self._port = server, port

    def set_synchronous_mode(self, mode_switch: bool) -> None:
        self._server.tm_synchronous[self._port] = mode_switch


class Actor:
    def __init__(self, server: FakeServer, actor_id: int, type_id: str, attributes: dict[str, str],
                 transform: carla.Transform, parent: Actor | None) -> None:
        self._server, self.id, self.type_id, self.attributes = server, actor_id, type_id, attributes
        self.location, self.rotation, self.parent = transform.location, transform.rotation, parent
        self.velocity, self.angular_velocity = carla.Vector3D(), carla.Vector3D()
        self.physics = True

    @property
    def is_alive(self) -> bool:
        return self.id in self._server.actors

    def _alive(self) -> None:
        self._server.check()
        if not self.is_alive:
            raise RuntimeError(f"trying to operate on a destroyed actor; an actor's function was called, but the "
                               f"actor is already destroyed. (id {self.id})")

    def get_transform(self) -> carla.Transform:
        self._alive()
        return _copy(carla.Transform(self.location, self.rotation))

    def get_location(self) -> carla.Location:
        return self.get_transform().location

    def get_velocity(self) -> carla.Vector3D:
        self._alive()
        return carla.Vector3D(self.velocity.x, self.velocity.y, self.velocity.z)

    def get_angular_velocity(self) -> carla.Vector3D:
        self._alive()
        return carla.Vector3D(self.angular_velocity.x, self.angular_velocity.y, self.angular_velocity.z)

    def set_transform(self, transform: carla.Transform) -> None:
        self._alive()
        t = _copy(transform)
        self.location, self.rotation = t.location, t.rotation

    def set_target_velocity(self, velocity: carla.Vector3D) -> None:
        self._alive()
        self.velocity = carla.Vector3D(velocity.x, velocity.y, velocity.z)

    def set_target_angular_velocity(self, angular_velocity: carla.Vector3D) -> None:
        self._alive()
        self.angular_velocity = angular_velocity

    def set_simulate_physics(self, enabled: bool = True) -> None:
        self._alive()
        self.physics = enabled


class Vehicle(Actor):
    """A kinematic car: throttle accelerates, brake decelerates, steer turns with speed."""

    control = carla.VehicleControl()
    autopilot = False

    def apply_control(self, control: carla.VehicleControl) -> None:
        self._alive()
        self.control = control

    def set_autopilot(self, enabled: bool = True, tm_port: int = 8000) -> None:
        self._alive()
        self.autopilot = enabled

    def simulate(self, dt: float) -> None:
        if not self.physics:
            return
        c = self.control if not self.autopilot else carla.VehicleControl(throttle=0.3)
        speed = math.hypot(self.velocity.x, self.velocity.y)
        speed = min(max(speed + (6.0 * c.throttle - 10.0 * c.brake) * dt, 0.0), 30.0)
        yaw = self.rotation.yaw + 60.0 * c.steer * dt * min(speed / 5.0, 1.0)
        self.rotation = carla.Rotation(0.0, yaw, 0.0)
        self.velocity = carla.Vector3D(speed * math.cos(math.radians(yaw)), speed * math.sin(math.radians(yaw)), 0.0)
        self.location = carla.Location(self.location.x + self.velocity.x * dt, self.location.y + self.velocity.y * dt,
                                       0.0)


class Sensor(Actor):
    callback = None

    def listen(self, callback: object) -> None:
        self._alive()
        self.callback = callback

    def stop(self) -> None:
        self.callback = None

    def is_listening(self) -> bool:
        return self.callback is not None

    def deliver(self, frame: int) -> None:
        """This tick's data, as the server streams it to the client."""
        parent = self.parent
        assert parent is not None and self.callback is not None
        if self.type_id == "sensor.camera.rgb":
            if self.id in self._server.muted:
                return
            self.callback(Image(frame, self, parent))
            if self._server.stale_images:
                self.callback(Image(frame - 1, self, parent, fill=255))
        elif self.type_id == "sensor.other.collision" and parent.id in self._server.pending_collisions:
            self.callback(CollisionEvent(frame, self._server.live("vehicle.")[0]))


# ---------------------------------------------------------------------------------------------------------------
# Sensor data, with the attribute names of carla.Image, carla.CollisionEvent and carla.LaneInvasionEvent.


class Image:
    """A BGRA frame whose pixels encode where the car is (so observations differ when the car moves)."""

    def __init__(self, frame: int, sensor: Sensor, parent: Actor, fill: int | None = None) -> None:
        self.frame = frame
        self.width, self.height = int(sensor.attributes["image_size_x"]), int(sensor.attributes["image_size_y"])
        if fill is None:
            base = int(parent.location.x * 8) + int(parent.location.y * 8) * 3
            row = (base + np.arange(self.width)) % 250
            pixels = np.broadcast_to(row.astype(np.uint8)[None, :, None], (self.height, self.width, 4))
        else:
            pixels = np.full((self.height, self.width, 4), fill, np.uint8)
        self.raw_data = pixels.tobytes()


class CollisionEvent:
    def __init__(self, frame: int, other_actor: Actor) -> None:
        self.frame, self.other_actor = frame, other_actor


class LaneInvasionEvent:
    def __init__(self, frame: int, crossed_lane_markings: list) -> None:
        self.frame, self.crossed_lane_markings = frame, crossed_lane_markings
