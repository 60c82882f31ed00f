"""GPU paths: run where CUDA is available (the lent GPU machine), skipped on CPU-only CI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from td3exp.replay import FrameReplay

from .test_agent import OBS, flat, make_batch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def cuda_agent(*overrides: str):
    from omegaconf import OmegaConf

    from td3exp import build

    from .conftest import compose_config

    cfg = OmegaConf.to_object(compose_config(["agent.start_steps=0", "agent.policy_delay=1", *overrides]))
    return build.build_agent(cfg, OBS, 2, CUDA)  # type: ignore[arg-type]


def to_cuda(batch):
    return type(batch)(*(t.to(CUDA) for t in batch))


def test_update_on_cuda_keeps_metrics_on_the_device() -> None:
    agent = cuda_agent("clip=norm1")
    metrics = agent.update(to_cuda(make_batch()), step=0)
    assert all(v.device.type == "cuda" for v in metrics.values())
    assert float(metrics["grad_clipped/actor"] ** 2 + metrics["grad_clipped/actor_cnn"] ** 2) ** 0.5 <= 1.0001


def test_nan_is_skipped_inside_the_fused_optimizer_on_cuda() -> None:
    agent = cuda_agent()
    before = flat(agent.critic)
    batch = make_batch()
    batch.rewards[0, 0] = float("nan")
    metrics = agent.update(to_cuda(batch), step=0)
    assert metrics["alerts/nonfinite"].item() == 1 and torch.equal(before, flat(agent.critic))


def test_pinned_double_buffered_sampling_matches_cpu_sampling() -> None:
    rng = np.random.default_rng(0)
    replays = [FrameReplay(200, OBS[1:], OBS[0], 2, 32, d, seed=5) for d in (torch.device("cpu"), CUDA)]
    frames = rng.integers(0, 256, (150, *OBS[1:]), dtype=np.uint8)
    for replay in replays:
        for t, frame in enumerate(frames):
            if t % 40 == 0:
                replay.start_episode(frame)
            else:
                replay.add(frame, np.zeros(2, np.float32), float(t), False)
    for _ in range(5):  # consecutive batches alternate pinned buffers
        cpu, gpu = (r.sample() for r in replays)
        assert torch.equal(cpu.obs, gpu.obs.cpu()) and torch.equal(cpu.next_obs, gpu.next_obs.cpu())
        assert torch.equal(cpu.rewards, gpu.rewards.cpu())


@pytest.mark.parametrize(("clip", "delay"), [("norm10", 2), ("auto", 2), ("norm10", 4)])
def test_cuda_graph_update_matches_eager_on_the_same_batches(clip: str, delay: int) -> None:
    """Warm-up, then both captured branches (critic only; critic + actor + Polyak), against eager updates on the same
    batches from the same weights (delay 4: the actor branch is warmed up on its own before its capture). Target
    noise off: a graph draws its random numbers from a different offset."""
    overrides = [f"agent.policy_delay={delay}", "agent.target_noise=0", f"clip={clip}"]
    torch.manual_seed(0)
    eager = cuda_agent(*overrides)
    torch.manual_seed(0)
    graphed = cuda_agent(*overrides, "agent.cuda_graph=true")
    assert graphed.graphed is not None
    for i in range(4 * delay + 4):
        batch = to_cuda(make_batch(seed=i))
        a, b = eager.update(batch, step=i), graphed.update(batch, step=i)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    assert len(graphed.graphed.graphs) == 2  # both branches were captured and replayed
    torch.testing.assert_close(flat(graphed.critic), flat(eager.critic), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(flat(graphed.actor_target), flat(eager.actor_target), rtol=1e-4, atol=1e-5)


def test_cuda_graph_metrics_are_fresh_tensors_per_update() -> None:
    agent = cuda_agent("agent.cuda_graph=true", "agent.policy_delay=1")
    kept = [agent.update(to_cuda(make_batch(seed=i)), step=i)["loss/critic"] for i in range(6)]
    assert len({float(v) for v in kept[3:]}) == 3  # replays do not overwrite what the logger still holds
