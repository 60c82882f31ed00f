"""The client side of the double, mirroring carla.Client, World, BlueprintLibrary, ActorBlueprint and
TrafficManager: same method names, parameter names and defaults (tests/test_carla_double.py checks them)."""

from __future__ import annotations

import carla

from .actors import Actor, Sensor
from .server import SERVERS, FakeServer, copy_settings


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
        return self._connected().version

    def get_client_version(self) -> str:
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
            if isinstance(actor, Sensor) and actor.id in server.listeners:
                raise AssertionError(f"sensor {actor.id} destroyed while listening (stop it first)")
        return []


class World:
    def __init__(self, server: FakeServer) -> None:
        self._server = server

    def get_settings(self) -> carla.WorldSettings:
        self._server.check()
        return copy_settings(self._server.settings)

    def apply_settings(self, settings: carla.WorldSettings, seconds: float = 0.0) -> int:
        self._server.check()
        self._server.blocking_calls.append(("apply_settings", seconds))
        self._server.settings = copy_settings(settings)
        return self._server.frame

    def tick(self, seconds: float = 0.0) -> int:
        self._server.blocking_calls.append(("tick", seconds))
        return self._server.tick()

    def wait_for_tick(self, seconds: float = 0.0) -> WorldSnapshot:
        """The next tick: in synchronous mode only another client (``other_client_ticks``) makes one; without it
        this times out at once (the real call would wait ``seconds`` first)."""
        server = self._server
        server.check()
        server.blocking_calls.append(("wait_for_tick", seconds))
        if server.settings.synchronous_mode and not server.other_client_ticks:
            raise RuntimeError(f"time-out of {seconds * 1000:.0f}ms while waiting for the simulator, make sure the "
                               f"simulator is ready and connected to {server.host}:{server.port}")
        return WorldSnapshot(server.tick())

    def get_map(self) -> carla.Map:
        self._server.check()
        return self._server.town

    def get_blueprint_library(self) -> BlueprintLibrary:
        return BlueprintLibrary()

    def get_actors(self) -> list[Actor]:
        """Fresh objects, as the real client returns: a sensor's is not listening, even when the object the env
        spawned is."""
        self._server.check()
        return [actor._fresh() for actor in self._server.actors.values()]

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

    def set_random_device_seed(self, value: int) -> None:
        self._server.tm_seeds[self._port] = value


class WorldSnapshot:
    def __init__(self, frame: int) -> None:
        self.frame = frame
