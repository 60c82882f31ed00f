"""Actor lifecycle: the ego vehicle with its sensors, NPC traffic, and sweeping what a crashed client left behind.

Every actor td3exp spawns carries a ``role_name`` ``td3exp_<run>_<role>``, ``<run>`` a random tag per run and
server, so a later client can find and destroy leftovers and say whose they are.  Sensors are stopped before they
are destroyed (a destroyed sensor that still streams to a callback crashes some client versions), and all
destruction goes out as one batch, bounded by the client's time-out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import carla
import numpy as np

from td3exp.envs.carla.errors import SpawnFailed
from td3exp.envs.carla.sensors import FrameQueue, bgra_to_rgb

ROLE = "td3exp"  # role_name prefix of every actor td3exp spawns
PARK_HEIGHT = 500.0  # metres above its last position where an inactive ego waits (nothing to hit up there)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EgoSpec:
    """What the ego vehicle is and what it sees."""

    vehicle: str  # blueprint id, e.g. vehicle.tesla.model3
    camera_width: int
    camera_height: int
    camera_fov: float  # horizontal, degrees
    camera_transform: carla.Transform  # relative to the vehicle
    spawn_retries: int  # spawn points tried (shuffled) before giving up


def blueprint(world: Any, blueprint_id: str, role: str, run: str, **attributes: Any) -> Any:
    bp = world.get_blueprint_library().find(blueprint_id)
    if bp.has_attribute("role_name"):
        bp.set_attribute("role_name", f"{ROLE}_{run}_{role}")
    for key, value in attributes.items():
        bp.set_attribute(key, str(value))
    return bp


def destroy(client: Any, actors: Sequence[Any]) -> None:
    """Stop listening sensors, then destroy all ``actors`` in one batch."""
    for actor in actors:
        if actor.type_id.startswith("sensor.") and actor.is_listening():
            actor.stop()
    if actors:
        client.apply_batch_sync([carla.command.DestroyActor(actor.id) for actor in actors])


def sweep_leftovers(client: Any, world: Any, run: str) -> int:
    """Destroy the td3exp actors on the server, of this run's lost connection or of runs that are gone (call it
    only when no other synchronous client drives the server); returns how many."""
    leftovers = [a for a in world.get_actors() if a.attributes.get("role_name", "").startswith(f"{ROLE}_")]
    if leftovers:
        runs = sorted({a.attributes["role_name"].split("_")[1] for a in leftovers} - {run})
        log.warning("destroying %d td3exp actors left on the server (%s)", len(leftovers),
                    f"by runs {', '.join(runs)} that no longer tick it" if runs else "by this run's lost connection")
        destroy(client, sorted(leftovers, key=lambda a: not a.type_id.startswith("sensor.")))
    return len(leftovers)


def spawn_vehicle(world: Any, bp: Any, spawn_points: Sequence[carla.Transform], rng: np.random.Generator,
                  retries: int) -> Any:
    """``try_spawn_actor`` over shuffled spawn points (a point can be occupied) up to ``retries`` times."""
    for index in rng.permutation(len(spawn_points))[:retries]:
        actor = world.try_spawn_actor(bp, spawn_points[int(index)])
        if actor is not None:
            return actor
    raise SpawnFailed(f"no free spawn point for {bp.id} in {min(retries, len(spawn_points))} tries")


def spawn_npcs(world: Any, vehicle: str, count: int, spawn_points: Sequence[carla.Transform],
               rng: np.random.Generator, tm_port: int, run: str) -> list[Any]:
    """Up to ``count`` NPC vehicles driven by the Traffic Manager (occupied points are skipped)."""
    bp = blueprint(world, vehicle, "npc", run)
    npcs = []
    for index in rng.permutation(len(spawn_points))[:count]:
        actor = world.try_spawn_actor(bp, spawn_points[int(index)])
        if actor is not None:
            actor.set_autopilot(True, tm_port)
            npcs.append(actor)
    return npcs


class EgoRig:
    """The ego vehicle with a front RGB camera, a collision sensor and a lane-invasion sensor.

    Spawned once per connection and reused across episodes: ``place`` moves it with ``set_transform`` and zeroes
    its velocity.  Several envs can share one server (training and evaluation): the inactive one is ``park``-ed
    (physics off, lifted out of the way) and ``unpark``-ed with its position and velocity restored.
    """

    def __init__(self, client: Any, world: Any, spec: EgoSpec, spawn_points: Sequence[carla.Transform],
                 rng: np.random.Generator, run: str) -> None:
        self.client = client
        self.camera_frames: FrameQueue[np.ndarray] = FrameQueue("the camera")
        self.collisions: FrameQueue[Any] = FrameQueue("the collision sensor")
        self.lane_invasions: FrameQueue[Any] = FrameQueue("the lane-invasion sensor")
        self.actors: list[Any] = []  # sensors first, so destruction stops them before their vehicle goes
        self.parked: tuple[carla.Transform, carla.Vector3D, carla.Vector3D] | None = None
        self.vehicle = spawn_vehicle(world, blueprint(world, spec.vehicle, "ego", run), spawn_points, rng,
                                     spec.spawn_retries)
        self.actors.append(self.vehicle)
        try:
            camera = blueprint(world, "sensor.camera.rgb", "camera", run, image_size_x=spec.camera_width,
                               image_size_y=spec.camera_height, fov=spec.camera_fov, sensor_tick=0.0)
            self._attach(world, camera, spec.camera_transform, self._on_image)
            self._attach(world, blueprint(world, "sensor.other.collision", "collision", run), carla.Transform(),
                         lambda event: self.collisions.put(event.frame, event.other_actor))
            self._attach(world, blueprint(world, "sensor.other.lane_invasion", "lane_invasion", run),
                         carla.Transform(),
                         lambda event: self.lane_invasions.put(event.frame, event.crossed_lane_markings))
        except BaseException:
            self.destroy()  # also after a failure half-way: nothing leaks
            raise

    def destroy(self) -> None:
        """Stop the sensors and destroy them and the vehicle (one batch); safe to call twice."""
        actors, self.actors = self.actors, []
        destroy(self.client, actors)

    def stop_sensors(self) -> None:
        """Stop the sensors' callbacks before a reconnect sweeps them.  Only these objects can: the sweep finds the
        sensors through ``World.get_actors``, whose fresh objects are not listening in 0.9.16, so stopping those
        stops nothing and the destroyed sensor would go on streaming to this client."""
        for actor in self.actors:
            if actor.type_id.startswith("sensor.") and actor.is_listening():
                try:
                    actor.stop()
                except RuntimeError as error:  # the server is gone: nothing streams any more
                    log.warning("stopping %s: %s", actor.type_id, error)

    def _attach(self, world: Any, bp: Any, transform: carla.Transform, callback: Any) -> None:
        sensor = world.spawn_actor(bp, transform, attach_to=self.vehicle)
        self.actors.insert(0, sensor)
        sensor.listen(callback)

    def _on_image(self, image: Any) -> None:
        self.camera_frames.put(image.frame, bgra_to_rgb(image.raw_data, image.height, image.width))

    def place(self, transform: carla.Transform) -> None:
        """Move to ``transform`` at rest (takes effect on the next tick)."""
        if self.parked is not None:
            self.vehicle.set_simulate_physics(True)
            self.parked = None
        self.vehicle.set_transform(transform)
        self.vehicle.set_target_velocity(carla.Vector3D())
        self.vehicle.set_target_angular_velocity(carla.Vector3D())
        self.vehicle.apply_control(carla.VehicleControl())

    def park(self) -> None:
        t = self.vehicle.get_transform()
        self.parked = (t, self.vehicle.get_velocity(), self.vehicle.get_angular_velocity())
        self.vehicle.set_simulate_physics(False)
        lifted = carla.Location(t.location.x, t.location.y, t.location.z + PARK_HEIGHT)
        self.vehicle.set_transform(carla.Transform(lifted, t.rotation))

    def unpark(self) -> None:
        if self.parked is None:
            return
        transform, velocity, angular_velocity = self.parked
        self.parked = None
        self.vehicle.set_transform(transform)
        self.vehicle.set_simulate_physics(True)
        self.vehicle.set_target_velocity(velocity)
        self.vehicle.set_target_angular_velocity(angular_velocity)
