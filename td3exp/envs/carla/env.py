"""Lane keeping in CARLA as a gymnasium env: camera frames in, ``[steer, throttle_brake]`` out, reward components
from the Map/waypoint API every simulator step."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, SupportsFloat, TypeVar

import carla
import gymnasium as gym
import numpy as np

from td3exp import rewards
from td3exp.envs.carla.actors import EgoRig, EgoSpec
from td3exp.envs.carla.errors import SimulatorUnavailable, SpawnFailed
from td3exp.envs.carla.geometry import LaneRoute
from td3exp.envs.carla.session import CarlaSession

IDLE_SPEED_KMH = 1.0  # below this the car counts as standing still
ROUTE_SPACING_M = 2.0  # distance between route waypoints
CLEARANCE_M = 10.0  # an episode does not start this close to another vehicle
SPAWN_ROUNDS = 3  # tries to find a free spawn point, settle_ticks ticks apart (the traffic moves on meanwhile)
T = TypeVar("T")


class CarlaLaneKeeping(gym.Env):
    """One ego vehicle on a CARLA server; one ``step`` is one synchronous ``World.tick``.

    Observation: the front camera's RGB frame, uint8 (camera height, width, 3), from exactly the tick the step
    made (``info["frame"]``).  Action: ``[steer, throttle_brake]`` in [-1, 1]; throttle_brake > 0 is throttle, < 0
    brake (as in the embedded CarRacing env).  ``info["reward_components"]`` (progress, smoothness,
    lane_centering, efficiency; see ``td3exp.rewards``) and ``info["native_reward"]`` follow the trainer's contract;
    the reward is the native reward: progress (metres along the lane), plus ``terminal_penalty`` when a collision,
    leaving the lane by more than ``max_lateral_offset`` metres, or standing still for ``max_idle_steps`` steps
    ends the episode (``info["termination"]`` says which).  Speeds are in km/h.

    Lost server (a client time-out or RuntimeError, a sensor without data for the tick): the env reconnects (see
    ``CarlaSession.recover``) and, when that succeeds, ``step`` returns the last valid observation, reward 0.0,
    terminated False, truncated True, ``info["simulator_lost"] = True`` and ``info["reconnects"]`` (cumulative);
    the trainer drops that transition and resets.  When reconnect attempts run out it raises
    ``SimulatorUnavailable`` (one-line message).  ``reset`` reconnects the same way before starting an episode.
    When no spawn point is free (each tried one within 10 m of another vehicle), ``reset`` lets the traffic move for
    ``settle_ticks`` ticks and tries again; after ``SPAWN_ROUNDS`` tries it raises ``SpawnFailed`` (a
    ``SimulatorUnavailable``): an episode never starts on an occupied point.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, session: CarlaSession, ego: EgoSpec, target_speed: float, max_lateral_offset: float,
                 max_idle_steps: int, terminal_penalty: float, settle_ticks: int, spawn_point: int | None) -> None:
        self.session, self.ego = session, ego
        self.target_speed, self.max_lateral_offset = target_speed, max_lateral_offset
        self.max_idle_steps, self.terminal_penalty = max_idle_steps, terminal_penalty
        self.settle_ticks, self.spawn_point = settle_ticks, spawn_point
        self.observation_space = gym.spaces.Box(0, 255, (ego.camera_height, ego.camera_width, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._rig: EgoRig | None = None
        self._rig_generation = -1
        self._route: LaneRoute | None = None
        self._s = 0.0
        self._frame = -1
        self._idle = 0
        self._previous_action = np.zeros(2, np.float32)
        self._last_obs = np.zeros(self.observation_space.shape, np.uint8)
        self._closed = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        attempts = self.session.max_reconnects
        for attempt in range(attempts + 1):
            try:
                return self._start_episode(), {"frame": self._frame, "reconnects": self.session.reconnects}
            except SimulatorUnavailable:
                raise
            except RuntimeError as error:  # carla's time-outs and SimulatorLost
                if attempt == attempts:
                    raise SimulatorUnavailable(f"the CARLA server at {self.session.address} answers but no episode "
                                               f"starts after {attempts} reconnects: {error}") from error
                self.session.recover()  # raises SimulatorUnavailable when it cannot reconnect
        raise AssertionError("unreachable")

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._route is None:
            raise gym.error.ResetNeeded("call reset() before step() (the episode ended)")
        action = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        if self._rig_generation != self.session.generation:  # the env sharing this server lost it and reconnected
            return self._truncate_lost()
        try:
            rig = self._activate()
            steer, throttle_brake = float(action[0]), float(action[1])
            rig.vehicle.apply_control(carla.VehicleControl(throttle=max(throttle_brake, 0.0), steer=steer,
                                                           brake=max(-throttle_brake, 0.0)))
            self._frame = self.session.tick()
            obs = rig.camera_frames.take(self._frame, self.session.timeout)
            collided = bool(rig.collisions.drain(self._frame))  # with late events of earlier ticks
            invaded = bool(rig.lane_invasions.drain(self._frame))
            transform, velocity = rig.vehicle.get_transform(), rig.vehicle.get_velocity()
        except SimulatorUnavailable:
            raise
        except RuntimeError:
            return self._lost()
        self._last_obs = obs
        assert self._route is not None
        position = self._route.locate(transform.location, transform.rotation.yaw)
        progress, self._s = position.s - self._s, position.s
        speed = 3.6 * math.sqrt(velocity.x**2 + velocity.y**2 + velocity.z**2)
        self._idle = self._idle + 1 if speed < IDLE_SPEED_KMH else 0
        termination = ("collision" if collided else "off_lane" if abs(position.lateral_offset) > self.max_lateral_offset
                       else "idle" if self._idle >= self.max_idle_steps else None)
        if termination is not None:
            progress += self.terminal_penalty
            self._route = None
        components = {
            "progress": progress,
            "smoothness": rewards.smoothness(action, self._previous_action),
            "lane_centering": rewards.lane_centering(position.lateral_offset, position.half_width),
            "efficiency": rewards.efficiency(speed, self.target_speed),
        }
        self._previous_action = action
        info = {"reward_components": components, "native_reward": progress, "frame": self._frame,
                "reconnects": self.session.reconnects, "termination": termination, "lane_invasion": invaded,
                "lateral_offset": position.lateral_offset, "heading_error": position.heading_error,
                "speed_kmh": speed}
        return obs, progress, termination is not None, False, info

    def _lost(self) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Reconnect (or raise SimulatorUnavailable) and end the broken episode by truncation."""
        self._route = None
        self.session.recover()
        return self._truncate_lost()

    def _truncate_lost(self) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        self._route = None
        info = {"reward_components": dict.fromkeys(rewards.COMPONENTS, 0.0), "native_reward": 0.0,
                "frame": self._frame, "reconnects": self.session.reconnects, "simulator_lost": True}
        return self._last_obs, 0.0, False, True, info

    def _activate(self) -> EgoRig:
        """This env's ego, spawned under the current connection, driving (the other env's ego parked)."""
        if self._rig is None or self._rig_generation != self.session.generation:
            self._rig = None  # an ego from an earlier connection is gone, or was swept on reconnect
            self._rig = EgoRig(self.session.client, self.session.world, self.ego, self.session.spawn_points,
                               self.session.rng, self.session.run)
            self._rig_generation = self.session.generation
        self.session.activate(self._rig)
        return self._rig

    def _start_episode(self) -> np.ndarray:
        rig = self._until_spawned(self._activate)
        start = self._until_spawned(lambda: self._spawn_transform(rig))
        rig.place(start)
        for _ in range(self.settle_ticks):  # the drop onto the road; its collisions are ignored
            self._frame = self.session.tick()
        obs = rig.camera_frames.take(self._frame, self.session.timeout)
        rig.collisions.discard_through(self._frame)
        rig.lane_invasions.discard_through(self._frame)
        assert self.session.map is not None
        self._route = LaneRoute(self.session.map.get_waypoint(start.location), ROUTE_SPACING_M)
        transform = rig.vehicle.get_transform()
        self._s = self._route.locate(transform.location, transform.rotation.yaw).s
        self._idle = 0
        self._previous_action = np.zeros(2, np.float32)
        self._last_obs = obs
        return obs

    def _until_spawned(self, spawn: Callable[[], T]) -> T:
        """``spawn()``, tried ``SPAWN_ROUNDS`` times ``settle_ticks`` ticks apart while it finds no free point."""
        for attempt in range(SPAWN_ROUNDS):
            try:
                return spawn()
            except SpawnFailed as error:
                if attempt == SPAWN_ROUNDS - 1:
                    raise SpawnFailed(f"{error}, {SPAWN_ROUNDS} times {self.settle_ticks} ticks apart "
                                      "(env.settle_ticks); lower env.npc_vehicles or raise env.spawn_retries") \
                        from error
            for _ in range(self.settle_ticks):
                self._frame = self.session.tick()
        raise AssertionError("unreachable")

    def _spawn_transform(self, rig: EgoRig) -> carla.Transform:
        """The configured spawn point, or a seeded-random one; never within ``CLEARANCE_M`` of another vehicle."""
        points = self.session.spawn_points
        candidates = [self.spawn_point] if self.spawn_point is not None else \
            [int(i) for i in self.np_random.permutation(len(points))[:self.ego.spawn_retries]]
        others = [a.get_location() for a in self.session.world.get_actors()
                  if a.type_id.startswith("vehicle.") and a.id != rig.vehicle.id]
        for index in candidates:
            if all(points[index].location.distance(other) > CLEARANCE_M for other in others):
                return points[index]
        raise SpawnFailed(f"no free spawn point for the ego in {len(candidates)} tries (another vehicle within "
                          f"{CLEARANCE_M:g} m of each)")

    def close(self) -> None:
        """Destroy this env's actors; the last env on the server restores its settings.  Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        current = self._rig is not None and self._rig_generation == self.session.generation
        rigs = [self._rig] if current and self._rig is not None else []
        if self.session.active is self._rig:
            self.session.active = None
        self._rig = None
        self.session.release(rigs)
        super().close()
