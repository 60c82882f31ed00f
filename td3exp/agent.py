"""TD3 (Fujimoto et al., 2018) on image observations with per-module gradient monitoring.

Clipped double-Q, delayed policy updates, target policy smoothing, Polyak-averaged targets.  ``update`` returns
metrics as device tensors; nothing in it reads a value back to the host.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from td3exp.clipping import AutoClip, clip_modules
from td3exp.diagnostics import UpdateRatio, mean_feature_norm, saturation
from td3exp.monitor import GradientMonitor
from td3exp.networks import ActorHead, NatureCNN, TwinQHead


class ReplayBatch(NamedTuple):
    obs: torch.Tensor  # uint8 (B, C, H, W)
    actions: torch.Tensor  # float (B, A) in [-1, 1]
    rewards: torch.Tensor  # float (B, 1)
    next_obs: torch.Tensor  # uint8 (B, C, H, W)
    terminated: torch.Tensor  # float (B, 1): 1 only at true terminations, never at time limits


class Actor(nn.Module):
    """Encoder + tanh head. With ``detach_features`` the actor loss never reaches the encoder (DrQ-v2)."""

    def __init__(self, encoder: NatureCNN, head: ActorHead, detach_features: bool) -> None:
        super().__init__()
        self.encoder, self.head, self.detach_features = encoder, head, detach_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(obs))

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(obs)
        return features.detach() if self.detach_features else features


class Critic(nn.Module):
    """Encoder feeding both Q heads."""

    def __init__(self, encoder: NatureCNN, head: TwinQHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(obs), action)


@dataclass(frozen=True)
class TD3Params:
    """TD3 hyperparameters (see conf/agent/td3.yaml for their meaning and defaults)."""

    gamma: float = 0.99
    tau: float = 0.005
    policy_delay: int = 2
    target_noise: float = 0.2
    noise_clip: float = 0.5
    exploration_noise: float = 0.1
    start_steps: int = 10_000
    preactivation_penalty: float = 0.0  # weight of mean(pre-tanh output^2) in the actor loss
    critic_max_norm: float | None = None


class TD3Agent:
    """Owns actor, critic, their targets and optimizers; ``act`` collects, ``update`` learns."""

    def __init__(
        self,
        actor: Actor,
        critic: Critic,
        actor_optimizer: torch.optim.Optimizer,
        critic_optimizer: torch.optim.Optimizer,
        monitor: GradientMonitor,
        params: TD3Params,
        action_dim: int,
        device: torch.device,
        seed: int = 0,
        channels_last: bool = False,
        actor_clip: float | AutoClip | None = None,
    ) -> None:
        """``actor_clip``: max norm for actor + actor-CNN gradients, an AutoClip, or None (no clipping)."""
        self.actor, self.critic = actor, critic
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)
        self.shared_encoder = actor.detach_features
        if self.shared_encoder:  # one target encoder for both, as online: one forward and one Polyak step, not two
            target_head = copy.deepcopy(actor.head).requires_grad_(False)
            self.actor_target = Actor(self.critic_target.encoder, target_head, detach_features=True)
        else:
            self.actor_target = copy.deepcopy(actor).requires_grad_(False)
        # each parameter once: under a shared encoder the actor's encoder parameters are the critic's
        target_pairs: list[tuple[nn.Module, nn.Module]] = [(self.critic_target, critic)]
        target_pairs.append((self.actor_target.head, actor.head) if self.shared_encoder else (self.actor_target, actor))
        self._target_params: list[torch.Tensor] = [p for target, _ in target_pairs for p in target.parameters()]
        self._online_params: list[torch.Tensor] = [p for _, online in target_pairs for p in online.parameters()]
        self.actor_optimizer, self.critic_optimizer = actor_optimizer, critic_optimizer
        self.monitor, self.p = monitor, params
        self.action_dim, self.device, self.channels_last = action_dim, device, channels_last
        self.actor_clip = actor_clip
        self.rng = np.random.default_rng(seed)
        self.num_updates = 0
        # actor-side modules for clipping/monitoring; under a shared encoder the actor has no CNN of its own
        self.actor_modules: dict[str, nn.Module] = {"actor": actor.head}
        if not self.shared_encoder:
            self.actor_modules["actor_cnn"] = actor.encoder
        self.critic_modules: dict[str, nn.Module] = {"critic": critic.head, "critic_cnn": critic.encoder}
        self.actor_ratio, self.critic_ratio = UpdateRatio(self.actor_modules), UpdateRatio(self.critic_modules)
        self._zero = torch.zeros((), device=device)

    def _prep(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.contiguous(memory_format=torch.channels_last) if self.channels_last else obs

    @torch.no_grad()
    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        """Action in [-1, 1]: uniform before ``start_steps``, then actor + Gaussian noise (none in eval)."""
        if step < self.p.start_steps and not eval_mode:
            return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        x = self._prep(torch.as_tensor(obs, device=self.device).unsqueeze(0))
        action = self.actor(x)[0].float().cpu().numpy()
        if not eval_mode:
            action = action + self.rng.normal(0.0, self.p.exploration_noise, self.action_dim)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def update(self, batch: ReplayBatch, step: int) -> dict[str, torch.Tensor]:
        """One critic step; every ``policy_delay`` updates also an actor step and a target update."""
        obs, next_obs = self._prep(batch.obs), self._prep(batch.next_obs)
        metrics, critic_features, finite = self.update_critic(
            obs, batch.actions, batch.rewards, next_obs, batch.terminated
        )
        self.num_updates += 1
        if self.num_updates % self.p.policy_delay == 0:
            actor_metrics, actor_finite = self.update_actor(obs, critic_features)
            metrics.update(actor_metrics)
            finite = finite & actor_finite
            self.update_targets()
        self.monitor.observe_finite(finite)
        metrics.update(self.monitor.metrics())
        return metrics

    def update_critic(
        self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
        terminated: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            # target policy smoothing: clipped noise on the target action
            noise = (torch.randn_like(actions) * self.p.target_noise).clamp(-self.p.noise_clip, self.p.noise_clip)
            next_features = self.critic_target.encoder(next_obs)
            next_actor_features = next_features if self.shared_encoder else self.actor_target.encoder(next_obs)
            next_actions = (self.actor_target.head(next_actor_features) + noise).clamp(-1.0, 1.0)
            next_q = torch.min(*self.critic_target.head(next_features, next_actions))
            # bootstrap through time limits, stop only at true terminations
            target_q = rewards + self.p.gamma * (1.0 - terminated) * next_q
        features = self.critic.encoder(obs)
        q1, q2 = self.critic.head(features, actions)
        loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)

        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        pre, post, total = clip_modules(self.critic_modules, self.p.critic_max_norm)
        finite, ratios = self._step(self.critic_optimizer, self.critic_ratio, loss, total, pre)
        metrics = {
            "features/critic_norm": mean_feature_norm(features),
            **{f"update_ratio/{k}": v for k, v in ratios.items()},
            "loss/critic": loss.detach(),
            "q/q1": q1.detach().mean(),
            "q/q2": q2.detach().mean(),
            "q/abs_diff": (q1 - q2).detach().abs().mean(),
            "q/target": target_q.mean(),
            **{f"grad/{k}": v for k, v in pre.items()},
            **{f"grad_clipped/{k}": v for k, v in post.items()},
        }
        # reused by the actor loss: critic features from before this step, detached (as DrQ-v2 does)
        return metrics, features.detach(), finite

    def update_actor(
        self, obs: torch.Tensor, critic_features: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        # a shared, detached encoder gives the actor the same features the critic just computed
        features = critic_features if self.shared_encoder else self.actor.encoder(obs)
        actions, preactivation = self.actor.head.act_and_preactivation(features)
        # the actor loss differentiates through Q1 to the action only: no gradients for the critic's weights
        self.critic.head.requires_grad_(False)
        q_loss = -self.critic.head.q1_only(critic_features, actions).mean()
        loss = q_loss
        if self.p.preactivation_penalty > 0:
            loss = loss + self.p.preactivation_penalty * preactivation.pow(2).mean()

        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic.head.requires_grad_(True)
        pre, post, total = clip_modules(self.actor_modules, self.actor_clip)
        finite, ratios = self._step(self.actor_optimizer, self.actor_ratio, loss, total, pre)
        if "actor_cnn" not in pre:  # shared, detached encoder: the actor loss has no path into a CNN
            pre["actor_cnn"] = post["actor_cnn"] = ratios["actor_cnn"] = self._zero
        saturated = saturation(preactivation, self.actor.head.bounded)
        self.monitor.observe_saturation(saturated)
        metrics = {
            "loss/actor": q_loss.detach(),
            "actor/saturation": saturated,
            "actor/preact_abs": preactivation.detach().abs().mean(),
            "features/actor_norm": mean_feature_norm(features),
            **{f"update_ratio/{k}": v for k, v in ratios.items()},
            **{f"grad/{k}": v for k, v in pre.items()},
            **{f"grad_clipped/{k}": v for k, v in post.items()},
        }
        return metrics, finite

    def _step(
        self, optimizer: torch.optim.Optimizer, ratio: UpdateRatio, loss: torch.Tensor, total_norm: torch.Tensor,
        norms: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Step unless loss or gradients are non-finite; returns (finite, update ratios). The skip happens inside the
        fused optimizer kernel (``found_inf``, as GradScaler uses it), so deciding it needs no host sync."""
        self.monitor.observe_norms(norms)
        finite = torch.isfinite(loss.detach()) & torch.isfinite(total_norm)
        optimizer.found_inf = (~finite).float()  # type: ignore[attr-defined]
        ratio.snapshot()
        optimizer.step()
        return finite, ratio.measure()

    @torch.no_grad()
    def update_targets(self) -> None:
        """Polyak averaging: target <- (1 - tau) * target + tau * online, as one fused lerp."""
        torch._foreach_lerp_(self._target_params, self._online_params, self.p.tau)

    def state_dict(self) -> dict[str, dict]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
        }
