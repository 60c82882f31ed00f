"""The bare-math limit of one TD3 update: the same networks' forward/backward, fused Adam steps and the Polyak update,
in a loop on preallocated channels_last float tensors. No replay, no uint8 conversion, no monitoring: what an update
cannot do without. The actor step reuses the critic's features, as td3exp's update does."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def nature_cnn(in_channels: int, image_size: int, features_dim: int) -> nn.Sequential:
    convs = nn.Sequential(
        nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = convs(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
    return nn.Sequential(convs, nn.Linear(flat, features_dim), nn.ReLU())


def mlp(in_dim: int, hidden_dims: list[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


class Actor(nn.Module):
    def __init__(self, cnn: nn.Sequential, head: nn.Sequential) -> None:
        super().__init__()
        self.cnn, self.head = cnn, head

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.cnn(obs)))


class Critic(nn.Module):
    def __init__(self, cnn: nn.Sequential, q1: nn.Sequential, q2: nn.Sequential) -> None:
        super().__init__()
        self.cnn, self.q1, self.q2 = cnn, q1, q2


class BareTD3:
    """TD3's update math and nothing else; ``step`` runs one update (critic, and every ``policy_delay`` the actor and
    the targets)."""

    def __init__(
        self, batch_size: int, obs_shape: tuple[int, int, int], action_dim: int, features_dim: int,
        hidden_dims: list[int], policy_delay: int, device: torch.device,
    ) -> None:
        torch.manual_seed(0)
        channels, size = obs_shape[0], obs_shape[-1]
        self.actor = Actor(nature_cnn(channels, size, features_dim), mlp(features_dim, hidden_dims, action_dim))
        q_in = features_dim + action_dim
        self.critic = Critic(
            nature_cnn(channels, size, features_dim), mlp(q_in, hidden_dims, 1), mlp(q_in, hidden_dims, 1))
        for module in (self.actor, self.critic):
            module.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=1e-4, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=1e-4, fused=True)
        self.online: list[torch.Tensor] = [*self.actor.parameters(), *self.critic.parameters()]
        self.targets: list[torch.Tensor] = [*self.actor_target.parameters(), *self.critic_target.parameters()]

        def frames() -> torch.Tensor:
            return torch.rand(batch_size, *obs_shape, device=device).contiguous(memory_format=torch.channels_last)

        self.obs, self.next_obs = frames(), frames()
        self.actions = torch.rand(batch_size, action_dim, device=device) * 2 - 1
        self.rewards = torch.randn(batch_size, 1, device=device)
        self.terminated = torch.zeros(batch_size, 1, device=device)
        self.policy_delay, self.updates = policy_delay, 0

    def step(self) -> None:
        self.updates += 1
        with torch.no_grad():
            noise = (torch.randn_like(self.actions) * 0.2).clamp(-0.5, 0.5)
            next_actions = (self.actor_target(self.next_obs) + noise).clamp(-1, 1)
            next_input = torch.cat([self.critic_target.cnn(self.next_obs), next_actions], dim=1)
            next_q = torch.min(self.critic_target.q1(next_input), self.critic_target.q2(next_input))
            target_q = self.rewards + 0.99 * (1 - self.terminated) * next_q
        features = self.critic.cnn(self.obs)
        critic_input = torch.cat([features, self.actions], dim=1)
        q1, q2 = self.critic.q1(critic_input), self.critic.q2(critic_input)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        if self.updates % self.policy_delay:
            return
        actions = self.actor(self.obs)
        self.critic.q1.requires_grad_(False)  # the actor loss reaches the action, not Q1's weights
        actor_loss = -self.critic.q1(torch.cat([features.detach(), actions], dim=1)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.critic.q1.requires_grad_(True)
        self.actor_optimizer.step()
        with torch.no_grad():  # Polyak averaging; torch has no public fused form of it (td3exp uses the same)
            torch._foreach_lerp_(self.targets, self.online, 0.005)
