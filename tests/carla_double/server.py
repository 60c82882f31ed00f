"""The server side of the double: what a CARLA server would hold.  Tests drive faults through its knobs."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import carla

from .actors import Actor, Sensor, Vehicle, copy_transform

if TYPE_CHECKING:
    from .client import ActorBlueprint, Client

SERVERS: dict[tuple[str, int], FakeServer] = {}


class FakeServer:
    """The simulated state of one CARLA server at host:port (clients find it by address).

    Sensor data reaches the callbacks on a thread of their own after ``tick`` has returned, as with the real client
    (events of a tick first, then its camera images).  Knobs for faults: ``crash(refuse=n)`` loses all state and
    refuses the next ``n`` connections; ``mute_cameras()`` silences the cameras that exist now (a sensor that stops
    streaming); ``stale_images`` delivers an extra camera image stamped with the previous frame (filled with 255) on
    every tick; ``pending_collisions`` / ``pending_invasions`` make those vehicles collide / cross a lane marking on
    the next tick; ``late_events`` delivers collision and lane-invasion events only after the next tick returns
    (client-side sensors such as lane invasion can be that late); ``version`` is what ``get_server_version``
    answers; ``other_client_ticks`` stands for another synchronous client ticking the world; ``tick_hooks`` run
    at every tick with the new frame; ``listen_port`` ties "up" to a real process listening there (server restarts).
    """

    def __init__(self, town: carla.Map, host: str = "127.0.0.1", port: int = 2000,
                 listen_port: int | None = None) -> None:
        self.town, self.host, self.port, self.listen_port = town, host, port, listen_port
        self.refuse = 0
        self.muted: set[int] = set()
        self.stale_images = False
        self.late_events = False
        self.version = "0.9.16"
        self.other_client_ticks = False
        self.clients: list[Client] = []
        self.loaded_maps: list[str] = []
        self.pending_collisions: list[int] = []  # vehicle ids that collide on the next tick
        self.pending_invasions: list[int] = []  # vehicle ids that cross a lane marking on the next tick
        self.tick_hooks: list[Callable[[int], None]] = []
        self.blocking_calls: list[tuple[str, float]] = []  # (call, its time-out in seconds)
        self.tm_seeds: dict[int, int] = {}  # Traffic Manager port -> set_random_device_seed's value
        self.listeners: dict[int, Any] = {}  # sensor id -> the callback its data streams to (client side)
        self.next_id = 1  # actor ids are never reused, also across crashes
        self._held: list[tuple[int, Any]] = []  # late events, delivered with the next tick's data
        self._deliveries: queue.Queue[list[tuple[int, Any]]] = queue.Queue()
        threading.Thread(target=self._deliver, name=f"carla-double-{port}", daemon=True).start()
        self._reset_state()
        SERVERS[(host, port)] = self

    def _reset_state(self) -> None:
        self.settings = carla.WorldSettings()  # asynchronous, variable step: a fresh server
        self.map_name = "Carla/Maps/Town10HD_Opt"
        self.frame = 100
        self.actors: dict[int, Actor] = {}
        self.tm_synchronous: dict[int, bool] = {}
        self.weather: object | None = None
        self._held = []

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
        actor = cls(self, self.next_id, blueprint.id, dict(blueprint.attributes), copy_transform(transform), parent)
        self.actors[actor.id] = actor
        self.next_id += 1
        return actor

    def occupied(self, transform: carla.Transform) -> bool:
        return any(v.location.distance(transform.location) < 2.0 for v in self.live("vehicle.") if v.physics)

    def tick(self) -> int:
        self.check()
        self.frame += 1
        for hook in self.tick_hooks:
            hook(self.frame)
        dt = self.settings.fixed_delta_seconds or 0.05
        for vehicle in self.live("vehicle."):
            vehicle.simulate(dt)
        events, images = [], []
        for sensor in self.live("sensor."):
            if sensor.id in self.listeners:
                assert isinstance(sensor, Sensor)
                new_events, new_images = sensor.data(self.frame)
                events += [(sensor.id, e) for e in new_events]
                images += [(sensor.id, i) for i in new_images]
        self.pending_collisions, self.pending_invasions = [], []
        if self.late_events:
            self._held, events = events, self._held
        self._deliveries.put(events + images)
        return self.frame

    def _deliver(self) -> None:
        """The client's streaming thread: calls each sensor's callback, if it still listens, after tick returned."""
        while True:
            for sensor_id, data in self._deliveries.get():
                callback = self.listeners.get(sensor_id)
                if callback is not None:
                    callback(data)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def copy_settings(s: carla.WorldSettings) -> carla.WorldSettings:
    return carla.WorldSettings(synchronous_mode=s.synchronous_mode, no_rendering_mode=s.no_rendering_mode,
                               fixed_delta_seconds=s.fixed_delta_seconds or 0.0)
