"""A CARLA server that td3exp starts itself (``env.server.command``), waits for, and restarts after a crash, as
carla-roach's training loop does.  Without a command the researcher runs the server and td3exp only connects."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time

STOP_GRACE_S = 10.0  # seconds a server gets to exit after SIGTERM before SIGKILL


class ServerStartFailed(RuntimeError):
    """The server command exited, or its port did not open in time."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerProcess:
    """``command`` with ``{port}`` replaced, run in its own process group (so a stop reaches the whole tree, e.g.
    the Docker client and CarlaUE4's shell wrapper); its output is discarded (CarlaUE4 is verbose)."""

    def __init__(self, command: str, host: str, port: int, startup_timeout: float) -> None:
        self.argv = shlex.split(command.format(port=port))
        self.host, self.port, self.startup_timeout = host, port, startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Start the server and wait until its RPC port accepts connections."""
        if port_open(self.host, self.port):
            raise ServerStartFailed(f"port {self.port} is already in use on {self.host}; another server runs there "
                                    "(drop env.server.command to use it, or pick another env.port)")
        try:
            self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
        except OSError as error:
            raise ServerStartFailed(f"cannot run env.server.command {self.argv[0]!r}: {error}") from error
        self.starts += 1
        deadline = time.monotonic() + self.startup_timeout
        while not port_open(self.host, self.port):
            code = self.process.poll()
            if code is not None:
                raise ServerStartFailed(f"the server command exited with code {code} before opening port {self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartFailed(f"the server did not open port {self.port} within {self.startup_timeout:g} s"
                                        " (env.server.startup_timeout)")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server's process group (SIGKILL after a grace period) and wait for its port to close."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            try:
                os.killpg(process.pid, sig)  # the group this object started (start_new_session)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + STOP_GRACE_S
        while port_open(self.host, self.port, 0.2) and time.monotonic() < deadline:
            time.sleep(0.2)

    def restart(self) -> None:
        self.stop()
        self.start()
