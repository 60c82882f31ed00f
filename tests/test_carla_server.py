"""Server process management with real processes (a tiny TCP listener stands in for CarlaUE4), and the real
``python -m td3exp env=carla`` command against a closed port."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest

from td3exp.envs.carla.server import ServerProcess, ServerStartFailed, port_open

from . import carla_double as double
from .conftest import run_td3exp
from .test_carla_env import THROTTLE, build, carla_config

# a stand-in for CarlaUE4.sh: opens the RPC port and accepts (and drops) connections until stopped
LISTENER = (f"{sys.executable} -c \"import socket, sys; s = socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1]))); "
            "s.listen(); [s.accept()[0].close() for _ in iter(int, 1)]\" {port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_process_starts_waits_for_its_port_and_stops() -> None:
    port = free_port()
    server = ServerProcess(LISTENER, "127.0.0.1", port, startup_timeout=20.0)
    server.start()
    try:
        assert port_open("127.0.0.1", port) and server.starts == 1
        first = server.pid
        server.restart()
        assert server.pid != first and port_open("127.0.0.1", port) and server.starts == 2
    finally:
        server.stop()
    assert not port_open("127.0.0.1", port)
    server.stop()  # safe twice


def test_a_server_command_that_exits_or_never_opens_its_port_fails_clearly() -> None:
    port = free_port()
    with pytest.raises(ServerStartFailed, match="exited with code 3"):
        ServerProcess(f"{sys.executable} -c \"raise SystemExit(3)\" {{port}}", "127.0.0.1", port, 20.0).start()
    slow = ServerProcess(f"{sys.executable} -c \"import time; time.sleep(30)\" {{port}}", "127.0.0.1", port, 0.5)
    with pytest.raises(ServerStartFailed, match="did not open port"):
        slow.start()
    assert slow.process is None  # stopped after the failed start


def test_the_env_restarts_a_crashed_server_before_reconnecting() -> None:
    port = free_port()
    fake = double.FakeServer(double.straight_map(2000.0), port=port, listen_port=port)  # up while the port is open
    env_cfg = carla_config(port, "env.server.startup_timeout=20")
    env_cfg.server.command = LISTENER  # set after composition: Hydra's override grammar would need quoting
    env = build(env_cfg)
    try:
        env.reset(seed=0)
        env.step(THROTTLE)
        session = env.unwrapped.session
        first_pid = session.server.pid
        os.kill(first_pid, signal.SIGKILL)  # the server td3exp started crashes ...
        fake.crash()  # ... and its world goes with it
        _, _, _, truncated, info = env.step(THROTTLE)
        assert truncated and info["simulator_lost"] and info["reconnects"] == 1
        assert session.server.pid != first_pid and session.server.starts == 2
        env.reset(seed=1)
        assert not env.step(THROTTLE)[4].get("simulator_lost") and len(fake.live()) == 4
    finally:
        env.close()
    assert not port_open("127.0.0.1", port)  # closing the last env stops the server td3exp started


def test_no_server_exits_2_with_one_line_naming_the_address_and_the_fix(tmp_path) -> None:
    port = free_port()  # closed: nothing listens there
    started = time.monotonic()
    result = run_td3exp(["env=carla", f"env.port={port}", "env.timeout=2", f"hydra.run.dir={tmp_path}"], cwd=tmp_path,
                        timeout=60)
    elapsed = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "carlasim/carla:0.9.16" in lines[0] and "env.server.command" in lines[0]
    assert elapsed < 20, f"took {elapsed:.1f} s"

