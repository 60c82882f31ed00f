"""Stop signals (SIGTERM, SIGINT, SIGUSR1 - what SLURM sends before preemption - and SIGUSR2, submitit's
preemption signal) become a request that the training loop honours at its next step boundary: it writes a checkpoint
and stops, instead of dying mid-update."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class Interrupted(BaseException):
    """The run stopped on a signal after writing its checkpoint.  A BaseException, not an Exception: Hydra's
    launchers and the sweeper record Exceptions as failed jobs and go on, but a stopped process must stop.  Its only
    argument is the message, so it pickles (launchers carry a job's outcome between processes)."""

    @classmethod
    def at(cls, signal_name: str, step: int, checkpoint: str | None) -> Interrupted:
        where = f"checkpoint {checkpoint}" if checkpoint else "no checkpoint (checkpoints are off)"
        return cls(f"stopped by {signal_name} at step {step} with {where}; run the same command to resume")


class StopSignals:
    """Install with ``with StopSignals() as stop:``; ``stop.received`` is the signal number once one arrived."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without waiting for the checkpoint
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python handles signals in the main thread only
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def hand_over(self) -> None:
        """After the checkpoint: pass the signal on to a Python handler installed before ours (submitit's, which
        requeues the job and exits); with none, the caller exits."""
        previous = self._previous.get(self.received) if self.received is not None else None
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.received, None)
