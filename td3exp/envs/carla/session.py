"""One connection to one CARLA server: world settings, the map, NPC traffic, ticking, and reconnecting.

The training env and the evaluation env of a run use the same server, so they share one session (``open_session``
counts its users): settings are changed once, on the first connect, and restored when the last env closes.  The
session also decides which ego drives: the other env's ego is parked while one env runs its episodes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import carla
import numpy as np

from td3exp.envs.carla.actors import EgoRig, destroy, spawn_npcs, sweep_leftovers
from td3exp.envs.carla.errors import SimulatorLost, SimulatorUnavailable
from td3exp.envs.carla.server import ServerProcess, ServerStartFailed

MAX_BACKOFF_S = 30.0
MAP_LOAD_TIMEOUT_S = 120.0  # loading a town takes longer than an RPC; still bounded
DOCKER_HINT = ("start one with `docker run --rm --gpus all --net=host carlasim/carla:0.9.16 /bin/bash ./CarlaUE4.sh "
               "-RenderOffScreen -carla-rpc-port={port}` (docs/carla.md) or set env.server.command")

log = logging.getLogger(__name__)


class CarlaSession:
    """A synchronous-mode connection.  Every blocking call is bounded by ``timeout`` seconds.

    ``generation`` counts connections: an ego spawned under an older one is gone (or swept) and must be respawned.
    ``reconnects`` counts successful reconnects over the run.  ``run`` tags the role names of this run's actors.

    A server can be shared, so connecting checks it first: a server of another CARLA version is refused (unless
    ``allow_version_mismatch``), and so is one that another synchronous client drives (a second one would tick the
    same world).  A server found synchronous that nobody ticks was left so by a client that died (a crashed run):
    closing then restores asynchronous mode, not those settings.
    """

    def __init__(self, host: str, port: int, timeout: float, town: str, fixed_delta_seconds: float, tm_port: int,
                 npc_vehicles: int, npc_vehicle: str, weather: str | None, max_reconnects: int,
                 reconnect_backoff: float, server: ServerProcess | None = None,
                 make_client: Callable[[str, int], Any] = carla.Client, seed: int = 0,
                 allow_version_mismatch: bool = False) -> None:
        self.host, self.port, self.timeout, self.town = host, port, timeout, town
        self.fixed_delta_seconds, self.tm_port, self.weather = fixed_delta_seconds, tm_port, weather
        self.npc_vehicles, self.npc_vehicle = npc_vehicles, npc_vehicle
        self.max_reconnects, self.reconnect_backoff = max_reconnects, reconnect_backoff
        self.server, self.make_client = server, make_client
        self.seed, self.rng, self.allow_version_mismatch = seed, np.random.default_rng(seed), allow_version_mismatch
        self.run = secrets.token_hex(3)  # random, not seeded: two runs of one seed on one server differ
        self.client: Any = None
        self.world: Any = None
        self.map: carla.Map | None = None
        self.spawn_points: list[carla.Transform] = []
        self.previous_settings: carla.WorldSettings | None = None  # the server's, restored on close
        self.npcs: list[Any] = []
        self.rigs: list[EgoRig] = []  # the egos of this connection's envs
        self.active: EgoRig | None = None
        self.generation = 0
        self.reconnects = 0
        self.connected = False
        self.users = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def open(self) -> None:
        """First connect (starting the server first when td3exp manages it); SimulatorUnavailable if none answers."""
        try:
            if self.server is not None:
                self.server.start()
            self._connect()
        except ServerStartFailed as error:
            raise SimulatorUnavailable(f"CARLA server for {self.address} did not start: {error}") from error
        except SimulatorUnavailable:
            self._stop_server()
            raise
        except RuntimeError as error:
            self._stop_server()
            raise SimulatorUnavailable(
                f"no CARLA server answered at {self.address} within {self.timeout:g} s (env.timeout); "
                + DOCKER_HINT.format(port=self.port)) from error

    def _connect(self) -> None:
        self.connected = False
        self.active = None
        client = self.make_client(self.host, self.port)
        client.set_timeout(self.timeout)
        self._check_version(client)
        world = client.get_world()
        found = world.get_settings()
        if found.synchronous_mode:
            self._refuse_if_driven(world)
            found.synchronous_mode, found.fixed_delta_seconds = False, None  # what a server runs without clients
        if self.previous_settings is None:
            self.previous_settings = found
        for rig in self.rigs:  # egos of the lost connection: the sweep below destroys them
            rig.stop_sensors()
        self.rigs = []
        sweep_leftovers(client, world, self.run)
        client.set_timeout(max(self.timeout, MAP_LOAD_TIMEOUT_S))
        client.load_world_if_different(self.town)  # the map is loaded once per server, never per episode
        client.set_timeout(self.timeout)
        world = client.get_world()
        settings = world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = self.fixed_delta_seconds
        world.apply_settings(settings, self.timeout)
        if self.weather is not None:
            world.set_weather(getattr(carla.WeatherParameters, self.weather))
        self.client, self.world, self.map = client, world, world.get_map()
        self.spawn_points = spawn_points(self.map)
        if self.npc_vehicles > 0:
            traffic_manager = client.get_trafficmanager(self.tm_port)
            traffic_manager.set_synchronous_mode(True)
            traffic_manager.set_random_device_seed(self.seed)  # the NPCs' choices follow the run's seed
            self.npcs = spawn_npcs(world, self.npc_vehicle, self.npc_vehicles, self.spawn_points, self.rng,
                                   self.tm_port, self.run)
        self.generation += 1
        self.connected = True

    def _check_version(self, client: Any) -> None:
        server, ours = client.get_server_version(), client.get_client_version()
        if server == ours:
            return
        if not self.allow_version_mismatch:
            raise SimulatorUnavailable(f"the CARLA server at {self.address} runs {server} but the client is {ours}; "
                                       f"run a CARLA {ours} server or set env.allow_version_mismatch=true")
        log.warning("the CARLA server at %s runs %s, the client is %s (env.allow_version_mismatch): expect errors",
                    self.address, server, ours)

    def _refuse_if_driven(self, world: Any) -> None:
        """A synchronous world advances only when a client ticks it: one tick within ``timeout`` seconds means
        another client drives it (this one has not ticked yet); none means the client that set it is gone."""
        try:
            world.wait_for_tick(self.timeout)
        except RuntimeError:
            log.warning("the CARLA server at %s was left in synchronous mode by a client that no longer ticks (a "
                        "crashed run?); td3exp restores asynchronous mode when it closes", self.address)
            return
        raise SimulatorUnavailable(
            f"another synchronous client drives the CARLA server at {self.address} (it ticked while td3exp waited); "
            "give each run its own server: another env.port, or 'env.job_slot=${hydra:job.num}' for parallel sweep "
            "jobs (README: CARLA)")

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
    def tick(self) -> int:
        """Advance the simulation one step; the frame id the sensors' data will carry."""
        try:
            return int(self.world.tick(self.timeout))
        except RuntimeError as error:
            raise SimulatorLost(f"tick: {error}") from error

    def activate(self, rig: EgoRig) -> None:
        """Let ``rig`` drive: park the ego of the other env sharing this server."""
        if self.active is rig:
            return
        if rig not in self.rigs:
            self.rigs.append(rig)
        if self.active is not None and self.active.actors:
            self.active.park()
        rig.unpark()
        self.active = rig

    def recover(self) -> None:
        """Reconnect after a loss, restarting a managed server first, with exponential backoff; raises
        SimulatorUnavailable after ``max_reconnects`` failed attempts."""
        self.connected = False
        error: Exception | None = None
        for attempt in range(self.max_reconnects):
            time.sleep(min(self.reconnect_backoff * 2**attempt, MAX_BACKOFF_S))
            try:
                if self.server is not None:
                    self.server.restart()
                self._connect()
            except SimulatorUnavailable:
                raise  # another version or another client: trying again would not help
            except (RuntimeError, ServerStartFailed) as caught:
                error = caught
                log.warning("reconnect %d/%d to %s failed: %s", attempt + 1, self.max_reconnects, self.address, caught)
                continue
            self.reconnects += 1
            log.warning("reconnected to the CARLA server at %s (%d reconnects so far)", self.address, self.reconnects)
            return
        raise SimulatorUnavailable(f"lost the CARLA server at {self.address} and {self.max_reconnects} reconnect "
                                   f"attempts failed (env.max_reconnects); last error: {error}")

    def release(self, rigs: Sequence[EgoRig] = ()) -> None:
        """One user is done (destroying its ``rigs``); the last one restores the server and closes it."""
        self.users -= 1
        self.rigs = [rig for rig in self.rigs if rig not in rigs]
        if self.connected:
            try:
                for rig in rigs:
                    rig.destroy()
                if self.users <= 0:
                    destroy(self.client, self.npcs)
                    if self.npc_vehicles > 0:
                        self.client.get_trafficmanager(self.tm_port).set_synchronous_mode(False)
                    self.world.apply_settings(self.previous_settings, self.timeout)
            except RuntimeError as error:
                log.warning("closing the CARLA connection to %s: %s", self.address, error)
        if self.users <= 0:
            self.connected = False
            self.npcs = []
            _SESSIONS.pop((self.host, self.port), None)
            self._stop_server()


def spawn_points(town: carla.Map) -> list[carla.Transform]:
    """The map's spawn points; a map without any (an OpenDRIVE-only world) gets one per 20 m of driving lane."""
    points = list(town.get_spawn_points())
    if points:
        return points
    lifted = []
    for waypoint in town.generate_waypoints(20.0):
        t = waypoint.transform
        lifted.append(carla.Transform(carla.Location(t.location.x, t.location.y, t.location.z + 0.5), t.rotation))
    return lifted


_SESSIONS: dict[tuple[str, int], CarlaSession] = {}


def open_session(make: Callable[[], CarlaSession], host: str, port: int) -> CarlaSession:
    """The process's session for host:port, made and connected on first use; each caller must ``release`` it."""
    session = _SESSIONS.get((host, port))
    if session is None:
        session = make()
        session.open()
        _SESSIONS[(host, port)] = session
    session.users += 1
    return session
