"""Actors of the double (carla.Actor, Vehicle, Sensor) and the sensor data they stream (carla.Image,
CollisionEvent, LaneInvasionEvent), with the compiled module's method and attribute names."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import carla
import numpy as np

if TYPE_CHECKING:
    from .server import FakeServer


def copy_transform(t: carla.Transform) -> carla.Transform:
    return carla.Transform(carla.Location(t.location.x, t.location.y, t.location.z),
                           carla.Rotation(t.rotation.pitch, t.rotation.yaw, t.rotation.roll))


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

    def _fresh(self) -> Actor:
        """What ``World.get_actors`` returns: a new Python object for the same actor, as the real client makes (it
        shares the state read at that time; the env only reads ids, types and attributes from these)."""
        return copy.copy(self)

    def _alive(self) -> None:
        self._server.check()
        if not self.is_alive:
            raise RuntimeError(f"trying to operate on a destroyed actor; an actor's function was called, but the "
                               f"actor is already destroyed. (id {self.id})")

    def get_transform(self) -> carla.Transform:
        self._alive()
        return copy_transform(carla.Transform(self.location, self.rotation))

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
        t = copy_transform(transform)
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
    """``listen`` subscribes this object's callback (client side, as in carla 0.9.16): ``is_listening`` and ``stop``
    concern this object only, so a fresh object of the same sensor (``World.get_actors``) is not listening and
    stopping it stops nothing."""

    _listening = False

    def _fresh(self) -> Actor:
        fresh = copy.copy(self)
        fresh._listening = False
        return fresh

    def listen(self, callback: object) -> None:
        self._alive()
        self._server.listeners[self.id] = callback
        self._listening = True

    def stop(self) -> None:
        if self._listening:
            self._server.listeners.pop(self.id, None)
            self._listening = False

    def is_listening(self) -> bool:
        return self._listening

    def data(self, frame: int) -> tuple[list[Any], list[Any]]:
        """This tick's (events, images), as the server streams them to the client."""
        parent = self.parent
        assert parent is not None
        server = self._server
        if self.type_id == "sensor.camera.rgb":
            if self.id in server.muted:
                return [], []
            images = [Image(frame, self, parent)]
            if server.stale_images:
                images.append(Image(frame - 1, self, parent, fill=255))
            return [], images
        if self.type_id == "sensor.other.collision" and parent.id in server.pending_collisions:
            return [CollisionEvent(frame, server.live("vehicle.")[0])], []
        if self.type_id == "sensor.other.lane_invasion" and parent.id in server.pending_invasions:
            return [LaneInvasionEvent(frame, ["Solid"])], []
        return [], []


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
