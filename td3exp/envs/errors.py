"""Errors any env raises to the trainer, whatever its simulator (no simulator import here, so the entrypoint, the
trainer and the evaluation can catch them cheaply)."""

from __future__ import annotations


class SimulatorUnavailable(RuntimeError):
    """The simulator behind an env does not answer (at start-up, or after the env gave up reconnecting).

    Its message is one line naming where the simulator was expected and how to start it; the entrypoint prints it
    and exits with code 4 (after the trainer wrote its checkpoint, when it was training).
    """
