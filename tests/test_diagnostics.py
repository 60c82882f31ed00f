"""Explosion/saturation conditions change what they name; diagnostics are right on hand-made tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from td3exp.clipping import AutoClip, clip_modules
from td3exp.diagnostics import UpdateRatio, saturation_per_dimension
from td3exp.networks import NatureCNN

from .test_agent import OBS, make_agent, make_batch


def test_saturation_on_hand_made_preactivations() -> None:
    # (batch 2, action 2): steering pinned in both samples, throttle never saturated
    tanh_head = saturation_per_dimension(torch.tensor([[3.1, 0.0], [-4.0, 2.9]]), bounded=True)
    assert tanh_head.tolist() == [1.0, 0.0] and tanh_head.mean() == 0.5
    unbounded = saturation_per_dimension(torch.tensor([[0.5, 1.5], [-2.0, 0.9]]), bounded=False)
    assert unbounded.tolist() == [0.5, 0.5] and unbounded.mean() == 0.5


def test_update_ratio_on_hand_made_parameters() -> None:
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0]]))  # norm 5
    ratio = UpdateRatio({"layer": layer})
    ratio.snapshot()
    with torch.no_grad():
        layer.weight.add_(torch.tensor([[0.3, -0.4]]))  # step of norm 0.5
    assert ratio.measure()["layer"].item() == pytest.approx(0.1)


def grads_of_norm(values: list[float]) -> dict[str, nn.Module]:
    modules = {}
    for i, value in enumerate(values):
        layer = nn.Linear(1, 1, bias=False)
        layer.weight.grad = torch.tensor([[value]])
        modules[f"m{i}"] = layer
    return modules


def test_autoclip_clips_at_the_configured_percentile_of_past_norms() -> None:
    auto = AutoClip(percentile=50, history=100, device=torch.device("cpu"))
    for norm in (1.0, 2.0, 4.0, 5.0):
        clip_modules(grads_of_norm([norm]), auto)
    modules = grads_of_norm([3.0, 4.0])  # total norm 5; history 1, 2, 4, 5, 5 -> median 4
    pre, post, total = clip_modules(modules, auto)
    assert total.item() == pytest.approx(5.0)
    clipped = torch.linalg.vector_norm(torch.stack([m.weight.grad.norm() for m in modules.values()]))
    assert clipped.item() == pytest.approx(4.0, rel=1e-4)
    assert torch.linalg.vector_norm(torch.stack(list(post.values()))).item() == pytest.approx(4.0, rel=1e-4)


def test_autoclip_history_is_a_window() -> None:
    auto = AutoClip(percentile=100, history=2, device=torch.device("cpu"))
    for norm in (100.0, 1.0):
        auto.threshold(torch.tensor(norm))
    assert auto.threshold(torch.tensor(2.0)).item() == 2.0  # 100 fell out of the window


def first_conv_input(encoder: NatureCNN, obs: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = encoder.convs[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    encoder(obs)
    handle.remove()
    return seen[0]


def test_pixel_scale_raw_feeds_0_to_255() -> None:
    obs = torch.full((1, *OBS), 255, dtype=torch.uint8)
    assert first_conv_input(NatureCNN(4, 36, 64, "unit"), obs).max() == 1.0
    assert first_conv_input(NatureCNN(4, 36, 64, "raw"), obs).max() == 255.0


def test_trunk_norm_bounds_the_features() -> None:
    obs = torch.randint(0, 256, (8, *OBS), dtype=torch.uint8)
    plain, normed = NatureCNN(4, 36, 64, "raw"), NatureCNN(4, 36, 64, "raw", trunk_norm=True)
    assert plain(obs).abs().max() > 10  # raw pixels + Kaiming init: large features
    assert normed(obs).abs().max() <= 1.0 and isinstance(normed.linear[1], nn.LayerNorm)


def test_unbounded_head_lets_the_actor_loss_see_out_of_bound_actions() -> None:
    agent = make_agent("agent.actor_head=unbounded", "agent.policy_delay=1")
    with torch.no_grad():
        agent.actor.head.net[-1].bias.fill_(5.0)  # raw actions far beyond [-1, 1]
    obs = torch.randint(0, 256, OBS, dtype=torch.uint8).numpy()
    assert (abs(agent.act(obs, step=10, eval_mode=True)) <= 1).all()  # clipped for the env
    batch = make_batch()
    with torch.no_grad():
        raw = agent.actor(batch.obs)
    assert raw.min() > 1
    m = agent.update(batch, step=0)
    with torch.no_grad():  # the critic as the actor step saw it: after this update's critic step
        critic_features = agent.critic.encoder(batch.obs)
        expected = -agent.critic.head.q1_only(critic_features, raw).mean()
        clamped = -agent.critic.head.q1_only(critic_features, raw.clamp(-1, 1)).mean()
    assert m["actor/saturation"].item() == 1.0
    assert m["loss/actor"].item() == pytest.approx(expected.item(), rel=1e-3)
    assert m["loss/actor"].item() != pytest.approx(clamped.item(), rel=1e-3)


def test_tanh_head_reports_saturation_of_large_preactivations() -> None:
    agent = make_agent("agent.policy_delay=1")
    with torch.no_grad():
        agent.actor.head.net[-1].bias.fill_(10.0)
    m = agent.update(make_batch(), step=0)
    assert m["actor/saturation"].item() == 1.0 and m["actor/preact_abs"].item() > 3
    assert m["alerts/saturation_critical"].item() == 1
    assert "actor saturated" in agent.monitor.report(step=1)[0]


def test_preactivation_penalty_enters_the_actor_gradient() -> None:
    torch.manual_seed(0)
    plain = make_agent("agent.policy_delay=1", "clip=none")
    torch.manual_seed(0)
    penalized = make_agent("agent.policy_delay=1", "clip=none", "agent.preactivation_penalty=10")
    batch = make_batch()
    torch.manual_seed(1)  # same target-smoothing noise for both updates
    a = plain.update(batch, step=0)
    torch.manual_seed(1)
    b = penalized.update(batch, step=0)
    assert a["loss/actor"].item() == pytest.approx(b["loss/actor"].item())  # same Q term
    assert b["grad/actor"].item() > a["grad/actor"].item()


def test_sgd_steps_by_lr_times_the_gradient_and_reports_that_update_ratio() -> None:
    agent = make_agent("optim.name=sgd", "agent.policy_delay=1", "clip=none")
    assert isinstance(agent.actor_optimizer, torch.optim.SGD)
    before = torch.cat([p.detach().flatten().clone() for p in agent.critic.head.parameters()])
    m = agent.update(make_batch(), step=0)
    step = torch.cat([p.detach().flatten() for p in agent.critic.head.parameters()]) - before
    # a first SGD step with momentum is -lr * grad (the buffer starts as the gradient)
    lr = agent.critic_optimizer.param_groups[0]["lr"]
    assert step.norm().item() == pytest.approx(lr * m["grad_clipped/critic"].item(), rel=1e-4)
    assert m["update_ratio/critic"].item() == pytest.approx((step.norm() / before.norm()).item(), rel=1e-4)


def test_adam_update_ratios_are_about_the_learning_rate() -> None:
    adam = make_agent("agent.policy_delay=1")
    m = adam.update(make_batch(), step=0)
    for module in ("actor", "actor_cnn", "critic", "critic_cnn"):
        assert 0 < m[f"update_ratio/{module}"].item() < 0.05  # Adam's first step is ~lr per weight
