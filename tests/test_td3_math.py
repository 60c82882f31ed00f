"""TD3's math checked against values computed by hand, piece by piece (Fujimoto et al., 2018, Algorithm 1): the
clipped double-Q target with its termination mask, target policy smoothing (clipped noise, clamped action), the actor
loss, the policy delay and Polyak averaging on actor steps only.  Each test would fail under one of these mutations
of the agent: no (1 - terminated) mask, max instead of min over the target critics, unclipped target noise, an
unclamped target action, an actor loss without its minus sign, an actor (and target) step on every update.

Real networks from the real factory (encoder=mlp, tiny widths); the batch is made up, so every number is known.
"""

from __future__ import annotations

import copy

import pytest
import torch
from omegaconf import OmegaConf

from td3exp import build
from td3exp.agent import TD3Agent
from td3exp.replay import ReplayBatch

from .conftest import compose_config

OBS, ACT, B = 5, 2, 64
CPU = torch.device("cpu")


def make_agent(*overrides: str) -> TD3Agent:
    cfg = OmegaConf.to_object(compose_config([
        "env=gymnasium", "agent=fujimoto", "agent.hidden_dims=[32,32]", f"agent.batch_size={B}", *overrides]))
    torch.manual_seed(0)
    return build.build_agent(cfg, (OBS,), ACT, CPU)  # type: ignore[arg-type]


def make_batch(seed: int = 1) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    terminated = (torch.arange(B) % 3 == 0).float()[:, None]  # a third of the transitions end the episode
    return ReplayBatch(torch.randn(B, OBS, generator=g), torch.rand(B, ACT, generator=g) * 2 - 1,
                       torch.randn(B, 1, generator=g), torch.randn(B, OBS, generator=g), terminated)


def hand_target(agent: TD3Agent, batch: ReplayBatch, noise: torch.Tensor) -> torch.Tensor:
    """r + gamma * (1 - terminated) * min(Q1', Q2')(s', clamp(pi'(s') + clip(noise, -c, c), -1, 1))."""
    hp = agent.hyperparameters
    with torch.no_grad():
        smoothing = noise.clamp(-hp.noise_clip, hp.noise_clip)
        next_action = (agent.actor_target(batch.next_obs) + smoothing).clamp(-1.0, 1.0)
        q1, q2 = agent.critic_target(batch.next_obs, next_action)
        return batch.rewards + hp.gamma * (1.0 - batch.terminated) * torch.minimum(q1, q2)


def agent_target(agent: TD3Agent, batch: ReplayBatch, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The agent's critic loss and the noise it drew (the first draw after seeding, as in ``critic_loss``)."""
    torch.manual_seed(seed)
    noise = torch.randn_like(batch.actions) * agent.hyperparameters.target_noise
    torch.manual_seed(seed)
    loss, _, _ = agent.critic_loss(batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.terminated)
    return loss, noise


def test_critic_loss_is_the_clipped_double_q_td_error() -> None:
    agent = make_agent()
    batch = make_batch()
    loss, noise = agent_target(agent, batch, seed=3)
    target = hand_target(agent, batch, noise)
    q1, q2 = agent.critic(batch.obs, batch.actions)
    expected = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_terminations_stop_bootstrapping_and_truncations_do_not() -> None:
    agent = make_agent()
    batch = make_batch()
    _, noise = agent_target(agent, batch, seed=3)
    target = hand_target(agent, batch, noise)
    ended = batch.terminated[:, 0] == 1
    torch.testing.assert_close(target[ended], batch.rewards[ended])  # a true end: the reward alone
    assert not torch.allclose(target[~ended], batch.rewards[~ended])  # a time limit stored as 0: bootstraps
    # the same batch with nothing terminated: every target bootstraps, so the loss changes
    bootstrapped = batch._replace(terminated=torch.zeros_like(batch.terminated))
    assert not torch.isclose(agent_target(agent, bootstrapped, seed=3)[0], agent_target(agent, batch, seed=3)[0])


def test_target_takes_the_minimum_of_the_twin_target_critics() -> None:
    agent = make_agent()
    batch = make_batch()
    with torch.no_grad():  # make the twins disagree clearly, Q2' above Q1' everywhere
        agent.critic_target.head.q2[-1].bias.add_(5.0)
    loss, noise = agent_target(agent, batch, seed=3)
    target = hand_target(agent, batch, noise)
    q1, q2 = agent.critic(batch.obs, batch.actions)
    torch.testing.assert_close(loss, ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean())


def test_target_noise_is_clipped_and_the_target_action_clamped() -> None:
    # large noise (std 5) clipped at 0.5, and a target actor pinned near +1: both the clip and the clamp matter
    agent = make_agent("agent.target_noise=5.0", "agent.noise_clip=0.5")
    with torch.no_grad():
        agent.actor_target.head.net[-1].bias.fill_(2.0)  # tanh(~2) = 0.96: + noise up to 0.5 leaves [-1, 1]
    batch = make_batch()
    loss, noise = agent_target(agent, batch, seed=4)
    assert noise.abs().max() > 2 * agent.hyperparameters.noise_clip  # the drawn noise does need its clip
    target = hand_target(agent, batch, noise)
    q1, q2 = agent.critic(batch.obs, batch.actions)
    torch.testing.assert_close(loss, ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean())


def test_actor_loss_is_minus_q1_of_the_actor_action() -> None:
    agent = make_agent()
    batch = make_batch()
    loss, _, _, metrics = agent.actor_loss(batch.obs, agent.critic.encoder(batch.obs).detach())
    q1 = agent.critic.head.q1_only(batch.obs, agent.actor(batch.obs))
    torch.testing.assert_close(loss, -q1.mean())
    torch.testing.assert_close(metrics["loss/actor"], -q1.mean().detach())


def test_an_actor_step_raises_q1_of_the_policy() -> None:
    """The sign of the actor loss, by its effect: gradient descent on it must climb Q1."""
    agent = make_agent("optim.actor_lr=1e-3")
    batch = make_batch()
    before = agent.critic.head.q1_only(batch.obs, agent.actor(batch.obs)).mean().item()
    critic = copy.deepcopy(agent.critic.state_dict())
    for _ in range(2):  # update 2 is an actor step
        agent.update(batch, step=0)
    agent.critic.load_state_dict(critic)  # judge the actor against the critic it started from
    after = agent.critic.head.q1_only(batch.obs, agent.actor(batch.obs)).mean().item()
    assert after > before


@pytest.mark.parametrize("delay", [2, 3])
def test_actor_and_targets_move_only_on_every_policy_delay_update(delay: int) -> None:
    agent = make_agent(f"agent.policy_delay={delay}")
    batch = make_batch()

    def snapshot() -> dict[str, list[torch.Tensor]]:
        return {name: [p.detach().clone() for p in getattr(agent, name).parameters()]
                for name in ("actor", "actor_target", "critic", "critic_target")}

    for update in range(1, 2 * delay + 1):
        before = snapshot()
        agent.update(batch, step=0)
        after = snapshot()
        moved = {name: any(not torch.equal(a, b) for a, b in zip(before[name], after[name], strict=True))
                 for name in before}
        actor_step = update % delay == 0
        assert moved == {"actor": actor_step, "actor_target": actor_step, "critic": True,
                         "critic_target": actor_step}, f"update {update}"
        if actor_step:  # Polyak: target <- (1 - tau) target + tau online, with the online weights after the step
            tau = agent.hyperparameters.tau
            for name, online in (("actor_target", "actor"), ("critic_target", "critic")):
                for old, new, weights in zip(before[name], after[name], after[online], strict=True):
                    torch.testing.assert_close(new, (1 - tau) * old + tau * weights)
