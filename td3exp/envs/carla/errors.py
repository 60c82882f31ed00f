"""Errors the CARLA env raises to its caller (no ``carla`` import here, so the entrypoint can catch them cheaply)."""

from __future__ import annotations

from td3exp.envs.errors import SimulatorUnavailable  # noqa: F401 (the generic error, re-exported for the CARLA env)


class SimulatorLost(RuntimeError):
    """The server stopped answering mid-run (a client time-out, or a sensor frame that never came).

    Raised inside the env and handled there by reconnecting; it only escapes as ``SimulatorUnavailable``.
    """


class SpawnFailed(SimulatorUnavailable):
    """No free spawn point for the ego, also after letting the traffic move (not a lost server: reconnecting would
    not help).  A ``SimulatorUnavailable``, so it is reported like one: the run writes its checkpoint and stops with
    this one-line message (exit code 4)."""
