"""TD3 agent: encoders, targets, clipping, alerts and the non-finite guard, on real networks and small batches."""

from __future__ import annotations

import copy

import pytest
import torch
from omegaconf import OmegaConf

from td3exp import build
from td3exp.agent import TD3Agent
from td3exp.monitor import GradientMonitor, NonFiniteError, Thresholds
from td3exp.replay import ReplayBatch

from .conftest import compose_config

OBS = (4, 36, 36)  # smallest frames NatureCNN accepts: fast updates, same code path
CPU = torch.device("cpu")


def make_agent(*overrides: str) -> TD3Agent:
    cfg = OmegaConf.to_object(compose_config(["agent.start_steps=0", *overrides]))
    return build.build_agent(cfg, OBS, 2, CPU)  # type: ignore[arg-type]


def make_batch(size: int = 8, seed: int = 0, reward_scale: float = 1.0) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    return ReplayBatch(
        obs=torch.randint(0, 256, (size, *OBS), dtype=torch.uint8, generator=g),
        actions=torch.rand((size, 2), generator=g) * 2 - 1,
        rewards=torch.randn((size, 1), generator=g) * reward_scale,
        next_obs=torch.randint(0, 256, (size, *OBS), dtype=torch.uint8, generator=g),
        terminated=torch.zeros((size, 1)),
    )


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_separate_layout_gives_actor_and_critic_their_own_cnn() -> None:
    agent = make_agent("encoder=separate")
    assert agent.actor.encoder is not agent.critic.encoder
    assert not set(map(id, agent.actor.encoder.parameters())) & set(map(id, agent.critic.encoder.parameters()))
    assert set(agent.actor_modules) == {"actor", "actor_cnn"}


def test_shared_detached_layout_trains_the_cnn_through_the_critic_only() -> None:
    agent = make_agent("encoder=shared_detached", "agent.policy_delay=1")
    assert agent.actor.encoder is agent.critic.encoder
    optimized = {id(p) for g in agent.actor_optimizer.param_groups for p in g["params"]}
    assert not optimized & set(map(id, agent.critic.encoder.parameters()))
    metrics = agent.update(make_batch(), step=0)
    assert metrics["grad/actor_cnn"].item() == 0.0 and metrics["grad/critic_cnn"].item() > 0


def test_shared_detached_targets_share_one_encoder_moved_once_per_target_update() -> None:
    agent = make_agent("encoder=shared_detached", "agent.policy_delay=1", "agent.tau=0.5")
    assert agent.actor_target.encoder is agent.critic_target.encoder
    before = flat(agent.critic_target.encoder)
    agent.update(make_batch(), step=0)
    # one Polyak step with tau 0.5 lands halfway; a second (double-counted) step would land at three quarters
    expected = 0.5 * before + 0.5 * flat(agent.critic.encoder)
    torch.testing.assert_close(flat(agent.critic_target.encoder), expected)


def test_targets_match_at_init_and_differ_after_updates() -> None:
    agent = make_agent("agent.policy_delay=1")
    assert torch.equal(flat(agent.critic), flat(agent.critic_target))
    assert torch.equal(flat(agent.actor), flat(agent.actor_target))
    for i in range(3):
        agent.update(make_batch(seed=i), step=i)
    assert not torch.equal(flat(agent.critic), flat(agent.critic_target))
    assert not torch.equal(flat(agent.actor), flat(agent.actor_target))
    # Polyak: targets move towards the online nets, only a little
    assert (flat(agent.critic) - flat(agent.critic_target)).abs().max() < 0.1


def test_actor_updates_only_every_policy_delay() -> None:
    agent = make_agent("agent.policy_delay=2")
    actor_before = flat(agent.actor)
    first = agent.update(make_batch(), step=0)
    assert "loss/actor" not in first and torch.equal(actor_before, flat(agent.actor))
    second = agent.update(make_batch(seed=1), step=1)
    assert "loss/actor" in second and not torch.equal(actor_before, flat(agent.actor))


@pytest.mark.parametrize("max_norm", [1.0, 10.0])
def test_post_clip_norm_is_at_most_max_norm(max_norm: float) -> None:
    agent = make_agent(f"clip.max_norm={max_norm}", f"clip.critic_max_norm={max_norm}", "agent.policy_delay=1")
    m = agent.update(make_batch(reward_scale=1e4), step=0)  # large rewards: large critic gradients
    assert m["grad/critic_cnn"] > max_norm  # clipping had something to do
    for side in (("actor", "actor_cnn"), ("critic", "critic_cnn")):
        post = torch.linalg.vector_norm(torch.stack([m[f"grad_clipped/{k}"] for k in side]))
        assert post <= max_norm * (1 + 1e-4)
    # the reported post-clip norms are the real norms of the clipped gradients
    measured = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in agent.critic.parameters()]))
    assert measured == pytest.approx(float(m["grad_clipped/critic"] ** 2 + m["grad_clipped/critic_cnn"] ** 2) ** 0.5,
                                     rel=1e-4)


def test_no_clip_leaves_large_gradients_as_they_are_and_reports_their_real_norms() -> None:
    agent = make_agent("clip=none", "agent.policy_delay=1")
    m = agent.update(make_batch(reward_scale=1e4), step=0)  # gradients far above any clip norm
    assert m["grad/critic_cnn"] > 1e3
    # the gradients the optimizer stepped with (still in .grad) have the norms reported before and after clipping
    for k, module in agent.actor_modules.items():
        measured = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()]))
        assert m[f"grad/{k}"].item() == pytest.approx(measured.item(), rel=1e-5)
        assert m[f"grad_clipped/{k}"].item() == pytest.approx(measured.item(), rel=1e-5)
    for k, module in (("critic", agent.critic.head), ("critic_cnn", agent.critic.encoder)):
        measured = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()]))
        assert m[f"grad_clipped/{k}"].item() == pytest.approx(measured.item(), rel=1e-5)


def test_planted_huge_gradient_raises_a_critical_alert(capsys) -> None:
    agent = make_agent("agent.policy_delay=1", "monitor.thresholds.critic_cnn.critical=100",
                       "monitor.thresholds.critic_cnn.warning=10")
    m = agent.update(make_batch(reward_scale=1e6), step=0)
    assert m["grad/critic_cnn"] > 100
    assert m["alerts/critical"].item() >= 1
    messages = agent.monitor.report(step=1)
    assert len(messages) == 1 and "CRITICAL" in messages[0] and "grad/critic_cnn" in messages[0]
    assert agent.monitor.report(step=2) == []  # said once, not again while the count stays


def test_planted_nan_is_skipped_and_counted() -> None:
    agent = make_agent("agent.policy_delay=1")
    critic_before, actor_before = flat(agent.critic), flat(agent.actor)
    batch = make_batch()
    batch.rewards[0, 0] = float("nan")
    m = agent.update(batch, step=0)
    assert m["alerts/nonfinite"].item() == 1
    assert torch.equal(critic_before, flat(agent.critic))  # the critic step was skipped
    assert torch.isfinite(flat(agent.critic)).all() and torch.isfinite(flat(agent.actor)).all()
    m = agent.update(make_batch(seed=1), step=1)  # a clean batch trains again
    assert m["alerts/nonfinite"].item() == 1 and not torch.equal(critic_before, flat(agent.critic))
    assert not torch.equal(actor_before, flat(agent.actor))


def test_run_stops_after_too_many_nonfinite_updates_in_a_row() -> None:
    agent = make_agent("monitor.max_consecutive_nonfinite=3")
    batch = make_batch()
    batch.rewards[:] = float("inf")
    for i in range(2):
        agent.update(batch, step=i)
    agent.monitor.report(step=2)  # two in a row: still fine
    agent.update(batch, step=2)
    with pytest.raises(NonFiniteError, match="3 updates in a row"):
        agent.monitor.report(step=3)


def test_act_is_uniform_before_start_steps_and_bounded_after() -> None:
    agent = make_agent("agent.start_steps=5")
    obs = torch.randint(0, 256, OBS, dtype=torch.uint8).numpy()
    random_actions = [agent.act(obs, step=0) for _ in range(50)]
    assert len({tuple(a) for a in random_actions}) == 50
    greedy = agent.act(obs, step=10, eval_mode=True)
    assert (abs(greedy) <= 1).all() and (agent.act(obs, step=10, eval_mode=True) == greedy).all()
    noisy = agent.act(obs, step=10)
    assert (abs(noisy) <= 1).all() and noisy.dtype.name == "float32"


@pytest.mark.parametrize("layout", ["separate", "shared_detached"])
def test_the_actor_is_judged_by_the_critic_just_updated(layout: str) -> None:
    """The actor loss is -Q1 of the critic after this update's critic step, encoder and head alike (as SB3 and
    CleanRL evaluate it), not the features from before the step with the head from after it."""
    agent = make_agent(f"encoder={layout}", "agent.policy_delay=1", "optim.critic_cnn_lr=1e-2", "clip=none")
    actor_before = copy.deepcopy(agent.actor)
    batch = make_batch()
    m = agent.update(batch, step=0)
    with torch.no_grad():  # the actor step moves neither the critic's encoder nor its head
        features = agent.critic.encoder(batch.obs)
        actions = actor_before.head(features if layout == "shared_detached" else actor_before.encoder(batch.obs))
        expected = -agent.critic.head.q1_only(features, actions).mean()
    assert m["loss/actor"].item() == pytest.approx(expected.item(), rel=1e-4)


def test_alert_counts_are_the_same_whether_a_steps_modules_are_neighbours_in_the_thresholds_or_not() -> None:
    """The monitor counts in place on slices of its counters when a step's modules are neighbours in the thresholds'
    order (the default), and through an index where they are not (an order the config may give): same counts."""
    levels = Thresholds(warning=10.0, critical=100.0)
    norms = [{"actor": torch.tensor(50.0), "actor_cnn": torch.tensor(float("nan"))},
             {"actor": torch.tensor(500.0), "actor_cnn": torch.tensor(5.0)},
             {"actor": torch.tensor(20.0), "actor_cnn": torch.tensor(200.0)}]
    counts = {}
    for order in (("actor", "actor_cnn", "critic"), ("actor", "critic", "actor_cnn")):
        monitor = GradientMonitor(dict.fromkeys(order, levels), 10, torch.device("cpu"))
        for step_norms in norms:
            monitor.observe_norms(step_norms)
        counts[order] = {name: (int(monitor.warning_counts[i]), int(monitor.critical_counts[i]),
                                float(monitor.peak[i])) for name, i in monitor._index.items()}
    neighbours, apart = counts.values()
    assert neighbours == apart
    # a NaN norm is critical and the peak is inf; 50 and 20 warn, 500 is critical
    assert neighbours["actor"] == (2, 1, 500.0) and neighbours["actor_cnn"] == (0, 2, float("inf"))
    assert neighbours["critic"] == (0, 0, 0.0)
