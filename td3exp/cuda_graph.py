"""The whole TD3 update captured as CUDA graphs and replayed (``agent.cuda_graph=true``, CUDA only).

An update launches a few hundred small kernels (two CNN forward/backward passes, two optimizer steps, per-module norms,
clipping, update ratios, the non-finite skip, Polyak); on a GPU the launch overhead, not the math, bounds it. A graph
records them once and replays them with one launch (LeanRL measures ~3.4x for TD3 from torch.compile + CUDA graphs).

Two graphs share one memory pool: the critic-only update and the critic + actor + Polyak update of policy-delay steps.
Each replays on static input buffers that the sampled batch is copied into; its metrics come out as one static vector,
cloned once per replay (the logger keeps references until it flushes).  Everything stateful the update touches lives on
the device (fused capturable optimizers, AutoClip's ring, the monitor's counters), so a replay needs no host sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from td3exp.replay import ReplayBatch

UpdateBody = Callable[[ReplayBatch, bool], dict[str, torch.Tensor]]


class GraphedUpdate:
    """``step(batch, with_actor)``: each branch runs eager on a side stream for its first ``warmup`` calls (lazy
    state such as optimizer moments and cuBLAS workspaces is created there, never inside a capture, as CUDA graphs
    require), then is captured once and replayed."""

    def __init__(self, body: UpdateBody, warmup: int = 3) -> None:
        self.body, self.warmup = body, warmup
        self.eager_calls = {False: 0, True: 0}  # per branch: with_actor=True is only every policy_delay-th update
        self.static: ReplayBatch | None = None
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, list[str], torch.Tensor]] = {}
        self.pool: Any = None  # the first graph's memory pool handle, shared by the second
        self.side = torch.cuda.Stream()

    def step(self, batch: ReplayBatch, with_actor: bool) -> dict[str, torch.Tensor]:
        if self.eager_calls[with_actor] < self.warmup:
            self.eager_calls[with_actor] += 1
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                metrics = self.body(batch, with_actor)
            torch.cuda.current_stream().wait_stream(self.side)
            return metrics
        if self.static is None:
            self.static = ReplayBatch(*(torch.empty_like(t) for t in batch))
        for buffer, value in zip(self.static, batch, strict=True):
            buffer.copy_(value, non_blocking=True)
        if with_actor not in self.graphs:
            self._capture(with_actor)
        graph, keys, flat = self.graphs[with_actor]
        graph.replay()
        return dict(zip(keys, flat.clone().unbind(), strict=True))

    def _capture(self, with_actor: bool) -> None:
        assert self.static is not None
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()  # once per branch, at capture: nothing may be in flight
        with torch.cuda.graph(graph, pool=self.pool):
            metrics = self.body(self.static, with_actor)
            keys = list(metrics)
            flat = torch.stack([metrics[k].detach().float().reshape(()) for k in keys])
        self.pool = graph.pool()
        self.graphs[with_actor] = (graph, keys, flat)
