"""Parallel envs on gymnasium's vector API, stepped asynchronously so the agent's update runs while they step.

``env.vector=async``: one process per env (``AsyncVectorEnv``); ``sync``: all envs in this process, stepped one after
the other once the update is done (no overlap; for debugging).  Each sub-env is a ``PairedEnv``: the training env and
the evaluation env of one index in one process, so under env=carla they share that index's server connection (and
the ego of the one not running is parked), and evaluation runs its episodes on the same parallel envs.

Autoreset is off (``AutoresetMode.DISABLED``): the trainer resets a finished env itself with the seed its episode
tape draws (``reset_mask`` resets only that env), so no transition spans two episodes, ``step`` returns the true
final frame of a truncated episode for bootstrapping, and every episode in progress can be replayed from its tape.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from td3exp.envs.errors import SimulatorUnavailable
from td3exp.envs.wrappers import load_reward_normalizer_state, reward_normalizer_state
from td3exp.signals import STOP_SIGNALS

MakeEnv = Callable[[], gym.Env]
UNAVAILABLE = "simulator_unavailable"  # info key: the env gave up reconnecting (SimulatorUnavailable's message)


class PairedEnv(gym.Env):
    """The training and the evaluation env of one index; ``mode`` ("train" | "eval") says which one acts.

    A ``SimulatorUnavailable`` comes back as ``info["simulator_unavailable"]`` (with a truncation) instead of killing
    the worker, so the trainer can still write its checkpoint.  ``reset(options={"idle": True})`` parks an evaluation
    env that has no episode left: it then returns a blank observation until the next reset, and costs nothing.
    """

    def __init__(self, make_train: MakeEnv, make_eval: MakeEnv, main_pid: int | None = None,
                 spaces: tuple[gym.Space, gym.Space] | None = None) -> None:
        """``main_pid``: the process that builds the vector env (in any other, this is a worker); ``spaces``: the
        (observation, action) spaces, so that a worker whose simulator does not answer can still start and report
        it at its first reset, instead of dying with a traceback."""
        worker = main_pid is not None and os.getpid() != main_pid
        if worker:
            # stop signals (Ctrl-C, SLURM's) are the main process's to handle; it checkpoints through its workers
            # and then closes them
            for stop in STOP_SIGNALS:
                signal.signal(stop, signal.SIG_IGN)
        try:
            self.train, self.eval = make_train(), make_eval()
        except SimulatorUnavailable as error:
            if not worker or spaces is None:
                raise
            self.train = self.eval = _NoSimulator(error, *spaces)
        self.observation_space, self.action_space = self.train.observation_space, self.train.action_space
        assert isinstance(self.observation_space, gym.spaces.Box)  # pixels or a state vector
        # what a parked or lost env shows
        self._blank = np.zeros(self.observation_space.shape, dtype=self.observation_space.dtype)
        self._mode, self._parked = "train", False
        self.tape: tuple[int, Sequence[np.ndarray]] = (0, ())

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._mode, self._parked = mode, False  # parking is for one evaluation: training goes on where it was

    @property
    def active(self) -> gym.Env:
        return self.eval if self.mode == "eval" else self.train

    @property
    def unavailable(self) -> str | None:
        """Why the simulator did not answer when this env was built (None when it did)."""
        return str(self.train.error) if isinstance(self.train, _NoSimulator) else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if options and options.get("idle"):
            self._parked = True
            return self._blank, {}
        self._parked = False
        try:
            return self.active.reset(seed=seed)
        except SimulatorUnavailable as error:
            obs, *_, info = self._unavailable(error)
            return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._parked:
            return self._blank, 0.0, False, False, {}
        try:
            return self.active.step(action)
        except SimulatorUnavailable as error:
            return self._unavailable(error)

    def _unavailable(self, error: SimulatorUnavailable) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self._blank, 0.0, False, True, {UNAVAILABLE: str(error)}

    def replay_tape(self) -> Any:
        """Reset the training env to ``tape``'s seed and re-apply its actions; the observation after the last one."""
        seed, actions = self.tape
        obs, _ = self.train.reset(seed=seed)
        for action in actions:
            obs, *_ = self.train.step(action)
        return obs

    @property
    def reward_normalizer(self) -> dict[str, Any] | None:
        """The training env's running-return statistics (None without ``reward.normalize=running``)."""
        return reward_normalizer_state(self.train)

    @reward_normalizer.setter
    def reward_normalizer(self, state: dict[str, Any] | None) -> None:
        load_reward_normalizer_state(self.train, state)

    def close(self) -> None:
        self.train.close()
        self.eval.close()


class _NoSimulator(gym.Env):
    """Stands in for an env whose simulator did not answer when the worker started: every reset and step raises
    that error (which ``PairedEnv`` reports in ``info``)."""

    def __init__(self, error: SimulatorUnavailable, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.error, self.observation_space, self.action_space = error, observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        raise self.error

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        raise self.error


class _SpacesOnly(gym.Env):
    """Only the spaces (what gymnasium's AsyncVectorEnv reads from the env it builds in the main process)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space


def _in_worker(make: MakeEnv, main_pid: int, spaces: tuple[gym.Space, gym.Space]) -> gym.Env:
    """``make()`` in a worker; in the main process, just the spaces: a CARLA env would connect, load the town (and
    start and stop a server with env.server.command) only for the worker to do it all again."""
    return make() if os.getpid() != main_pid else _SpacesOnly(*spaces)


class ParallelEnvs:
    """``num_envs`` paired envs: ``step_async`` / ``step_wait`` around the update, masked resets with given seeds,
    evaluation mode, tape replay and the reward normalizers for checkpoints.  Per-env ``info`` dicts come back as a
    list (gymnasium batches them into arrays with masks)."""

    def __init__(self, vector: AsyncVectorEnv | SyncVectorEnv) -> None:
        self.vector = vector
        self.num_envs = vector.num_envs
        self.single_observation_space = vector.single_observation_space
        self.single_action_space = vector.single_action_space
        self._actions: np.ndarray | None = None
        # closed at exit at the latest, before multiprocessing's own exit hook would SIGTERM (ignored) and wait
        atexit.register(self.close)

    @classmethod
    def make(cls, make_train: Sequence[MakeEnv], make_eval: Sequence[MakeEnv], vector: str,
             spaces: tuple[gym.Space, gym.Space] | None = None) -> ParallelEnvs:
        """``vector``: "async" (a process per env, started with spawn: no forked torch or CUDA state) | "sync".
        ``spaces``: the envs' (observation, action) spaces, see ``PairedEnv``."""
        pid = os.getpid()
        fns: list[MakeEnv] = [partial(PairedEnv, t, e, pid, spaces) for t, e in zip(make_train, make_eval, strict=True)]
        if vector == "async":
            if spaces is not None:  # gymnasium calls fns[0] here only to read the spaces: answer without an env
                fns[0] = partial(_in_worker, fns[0], pid, spaces)
            with _standard_start_method():
                envs = cls(AsyncVectorEnv(fns, context="spawn", autoreset_mode=AutoresetMode.DISABLED))
            unavailable = envs.vector.get_attr("unavailable")
            if all(unavailable):  # no simulator answered at all: the run cannot start (some did: see PairedEnv)
                envs.close()
                raise SimulatorUnavailable(unavailable[0])
            return envs
        return cls(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED))

    @classmethod
    def of(cls, env: gym.Env, eval_env: gym.Env) -> ParallelEnvs:
        """One training env and its evaluation env, already built, in this process."""
        return cls(SyncVectorEnv([lambda: PairedEnv(lambda: env, lambda: eval_env)],
                                 autoreset_mode=AutoresetMode.DISABLED))

    def step_async(self, actions: np.ndarray) -> None:
        if isinstance(self.vector, AsyncVectorEnv):
            self.vector.step_async(actions)
        else:
            self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if isinstance(self.vector, AsyncVectorEnv):
            obs, rewards, terminated, truncated, infos = self.vector.step_wait()
        else:
            assert self._actions is not None, "step_wait() without step_async()"
            obs, rewards, terminated, truncated, infos = self.vector.step(self._actions)
            self._actions = None
        return obs, rewards, terminated, truncated, self._split(infos)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        self.step_async(actions)
        return self.step_wait()

    def reset(self, seeds: Sequence[int | None], mask: np.ndarray, idle: bool = False
              ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Reset the envs where ``mask`` is true (``seeds[i]`` for env i); the others keep their episode.
        ``idle``: park them instead (evaluation envs with no episode left)."""
        options: dict[str, Any] = {"reset_mask": np.asarray(mask, dtype=np.bool_)}
        if idle:
            options["idle"] = True
        obs, infos = self.vector.reset(seed=list(seeds), options=options)
        return obs, self._split(infos)

    def set_mode(self, mode: str) -> None:
        self.vector.set_attr("mode", mode)

    def replay_episode_tapes(self, tapes: Sequence[tuple[int, Sequence[np.ndarray]]]) -> np.ndarray:
        """Replay each env's episode in progress from its (seed, actions); the observations after them."""
        self.vector.set_attr("tape", list(tapes))
        return np.stack(self.vector.call("replay_tape"))

    def reward_normalizers(self) -> list[dict[str, Any] | None]:
        return list(self.vector.get_attr("reward_normalizer"))

    def load_reward_normalizers(self, states: Sequence[dict[str, Any] | None]) -> None:
        self.vector.set_attr("reward_normalizer", list(states))

    def close(self) -> None:
        atexit.unregister(self.close)
        self.vector.close()  # safe twice

    def _split(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        return [_env_info(infos, i) for i in range(self.num_envs)]


@contextlib.contextmanager
def _standard_start_method() -> Iterator[None]:
    """A spawned process restores its parent's default start method, which must be one it knows: inside a job of
    hydra/launcher=parallel (a joblib/loky worker) it is "loky", so spawn is made the default while workers start."""
    previous = multiprocessing.get_start_method(allow_none=True)
    if previous in (None, "spawn", "fork", "forkserver"):
        yield
        return
    multiprocessing.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)


def _env_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Env ``i``'s own info dict out of gymnasium's batched one (arrays, with ``_key`` masks saying who has a key)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.ones(i + 1, dtype=bool))[i]:
            continue
        out[key] = _env_info(value, i) if isinstance(value, dict) else value[i]
    return out
