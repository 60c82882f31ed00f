"""TD3 (Fujimoto et al., 2018) on image observations or state vectors.

Clipped double-Q, delayed policy updates, target policy smoothing, Polyak-averaged targets.  ``update`` shows the
paper's math; its two optimizer steps and everything measured around them are an ``UpdateMeasurement`` (gradient
norms, clipping, the non-finite skip, update ratios, feature norms, saturation).  ``update`` returns metrics as
device tensors: nothing in it reads a value back to the host.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from td3exp.config import AgentConfig
from td3exp.cuda_graph import GraphedUpdate
from td3exp.monitor import GradientMonitor
from td3exp.networks import Actor, Critic
from td3exp.replay import ReplayBatch
from td3exp.update_measurement import UpdateMeasurement


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Autograd records no gradient path into ``module``'s weights for what is computed inside."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def polyak_(targets: Sequence[torch.Tensor], online: Sequence[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, as one fused lerp (torch has no public multi-tensor lerp)."""
    torch._foreach_lerp_(list(targets), list(online), tau)


class TD3Agent:
    """Owns actor, critic, their targets and optimizer steps; ``act`` collects, ``update`` learns.

    ``hyperparameters``: TD3's (``AgentConfig``: gamma, tau, policy_delay, target_noise, noise_clip,
    exploration_noise, start_steps, preactivation_penalty, precision).  ``measurement``: the two optimizer steps and
    everything measured around them (td3exp/update_measurement.py).  ``cuda_graph``: replay the update as CUDA graphs
    (CUDA only; build the optimizers with ``capturable=True``).
    """

    def __init__(
        self, actor: Actor, critic: Critic, hyperparameters: AgentConfig, measurement: UpdateMeasurement,
        device: torch.device, seed: int = 0, channels_last: bool = False, cuda_graph: bool = False,
    ) -> None:
        self.actor, self.critic, self.hyperparameters, self.measurement = actor, critic, hyperparameters, measurement
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)
        self.shared_encoder = actor.detach_features
        if self.shared_encoder:  # one target encoder for both, as online: one forward and one Polyak step, not two
            target_head = copy.deepcopy(actor.head).requires_grad_(False)
            self.actor_target = Actor(self.critic_target.encoder, target_head, detach_features=True)
        else:
            self.actor_target = copy.deepcopy(actor).requires_grad_(False)
        # each parameter once: under a shared encoder the actor's encoder parameters are the critic's
        pairs = [(self.critic_target, critic),
                 (self.actor_target.head, actor.head) if self.shared_encoder else (self.actor_target, actor)]
        self._target_params = [p for target, _ in pairs for p in target.parameters()]
        self._online_params = [p for _, online in pairs for p in online.parameters()]
        self.action_dim, self.device, self.channels_last = actor.head.action_dim, device, channels_last
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=hyperparameters.precision == "bf16")
        # acting on a state vector reads the fp32 weights as they are: under autocast each call casts every weight
        # anew, which for one observation takes longer than the whole fp32 forward
        self._act_autocast = self.autocast if measurement.learned_features else contextlib.nullcontext()
        self.rng = np.random.default_rng(seed)
        self.num_updates = 0
        self._float_obs: dict[str, torch.Tensor] = {}  # reused scaled-pixel buffers (see NatureCNN.preprocess)
        # the whole update as CUDA graphs (td3exp/cuda_graph.py); the optimizers must be fused and capturable
        self.graphed = GraphedUpdate(self.update_body) if cuda_graph else None

    @property
    def monitor(self) -> GradientMonitor:
        return self.measurement.monitor

    @property
    def actor_optimizer(self) -> torch.optim.Optimizer:
        return self.measurement.actor.optimizer

    @property
    def critic_optimizer(self) -> torch.optim.Optimizer:
        return self.measurement.critic.optimizer

    @property
    def actor_modules(self) -> dict[str, nn.Module]:
        return self.measurement.actor_modules

    def _prep(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.contiguous(memory_format=torch.channels_last) if self.channels_last else obs

    def _scaled(self, name: str, obs: torch.Tensor) -> torch.Tensor:
        """Batch pixels as floats in a buffer reused every update (all encoders share one pixel scale); state
        vectors are floats already."""
        if obs.is_floating_point():
            return obs
        buffer = self._float_obs.get(name)
        if buffer is None or buffer.shape != obs.shape:
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            buffer = torch.empty(obs.shape, device=self.device, memory_format=fmt)
            self._float_obs[name] = buffer
        return self.critic.encoder.preprocess(obs, out=buffer)

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        """Action in [-1, 1] for one observation: uniform before ``start_steps``, then actor + Gaussian noise (none
        in eval)."""
        return self.act_batch(obs[None], step, eval_mode)[0]

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray, first_step: int, eval_mode: bool = False) -> np.ndarray:
        """Actions (N, A) for observations (N, C, H, W) taken at agent steps ``first_step``, ``first_step + 1``, ...
        (parallel envs): one actor forward and one device-to-host copy for the whole batch."""
        n = len(obs)
        actions = np.empty((n, self.action_dim), dtype=np.float32)
        steps = first_step + np.arange(n)
        random = np.zeros(n, dtype=bool) if eval_mode else steps < self.hyperparameters.start_steps
        if random.any():
            actions[random] = self.rng.uniform(-1.0, 1.0, (int(random.sum()), self.action_dim))
        policy = ~random
        if policy.any():
            with self._act_autocast:
                x = self._prep(torch.as_tensor(obs[policy], device=self.device))
                chosen = self.actor(x).float().cpu().numpy()
            if not eval_mode:
                chosen = chosen + self.rng.normal(0.0, self.hyperparameters.exploration_noise, chosen.shape)
            actions[policy] = np.clip(chosen, -1.0, 1.0)
        return actions

    def update(self, batch: ReplayBatch, step: int) -> dict[str, torch.Tensor]:
        """One critic step; every ``policy_delay`` updates also an actor step and a target update."""
        self.num_updates += 1
        with_actor = self.num_updates % self.hyperparameters.policy_delay == 0
        eager = self.measurement.begin_update(self.num_updates)
        if self.graphed is not None and not eager:
            return self.graphed.step(batch, with_actor)
        return self.update_body(batch, with_actor)

    def update_body(self, batch: ReplayBatch, with_actor: bool) -> dict[str, torch.Tensor]:
        """The update itself: a pure function of the batch and the agent's device state (so it can be graphed)."""
        # scaled straight into channels_last float buffers: one pass over the pixels, no layout copy first
        obs, next_obs = self._scaled("obs", batch.obs), self._scaled("next_obs", batch.next_obs)
        # critic: clipped double-Q TD error
        critic_loss, features, metrics = self.critic_loss(obs, batch.actions, batch.rewards, next_obs, batch.terminated)
        metrics.update(self.measurement.critic_step(critic_loss, features))
        if with_actor:
            # actor: maximize Q1 of the critic just updated (as SB3 and CleanRL do), so its features come from the
            # updated critic encoder; no gradient reaches that encoder from the actor loss
            with torch.no_grad(), self.autocast:
                critic_features = self.critic.encoder(obs)
            actor_loss, actor_features, preactivation, actor_metrics = self.actor_loss(obs, critic_features)
            metrics.update(actor_metrics)
            metrics.update(self.measurement.actor_step(actor_loss, actor_features, preactivation))
            self.update_targets()
        metrics.update(self.measurement.end_update())
        return metrics

    def critic_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
        terminated: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Clipped double-Q TD loss; returns (loss, critic features, metrics).  Q values and the TD error are fp32
        under bf16 too (the Q heads' output layers run in fp32, see ``TwinQHead``)."""
        td3 = self.hyperparameters
        with torch.no_grad(), self.autocast:
            # target policy smoothing: clipped noise on the target action
            noise = (torch.randn_like(actions) * td3.target_noise).clamp(-td3.noise_clip, td3.noise_clip)
            next_features = self.critic_target.encoder(next_obs)
            next_actor_features = next_features if self.shared_encoder else self.actor_target.encoder(next_obs)
            next_actions = (self.actor_target.head(next_actor_features) + noise).clamp(-1.0, 1.0)
            next_q = torch.min(*self.critic_target.head(next_features, next_actions))
            # bootstrap through time limits, stop only at true terminations
            target_q = rewards + td3.gamma * (1.0 - terminated) * next_q
        with self.autocast:
            features = self.critic.encoder(obs)
            q1, q2 = self.critic.head(features, actions)
        loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        metrics = {
            "loss/critic": loss.detach(),
            "q/q1": q1.detach().mean(),
            "q/q2": q2.detach().mean(),
            "q/abs_diff": (q1 - q2).detach().abs().mean(),
            "q/target": target_q.mean(),
        }
        return loss, features.detach(), metrics

    def actor_loss(
        self, obs: torch.Tensor, critic_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """-Q1(s, pi(s)), plus the optional pre-activation penalty; returns (loss, actor features, pre-activation,
        metrics).

        ``critic_features``: the critic encoder's output for ``obs`` after this update's critic step, without a
        gradient path.  The actor is judged by the critic just updated, encoder and head alike, as SB3 and CleanRL
        do; the features from before the critic step would pair the old encoder with the new head, a critic that
        never existed.  It costs one gradient-free encoder forward per actor step."""
        with self.autocast:
            # a shared, detached encoder gives the actor the critic's features
            features = critic_features if self.shared_encoder else self.actor.encoder(obs)
            actions, preactivation = self.actor.head.act_and_preactivation(features)
            with frozen(self.critic.head):  # gradients reach the action through Q1, not the critic's weights
                q_loss = -self.critic.head.q1_only(critic_features, actions).mean()
        preactivation = preactivation.float()
        loss = q_loss
        if self.hyperparameters.preactivation_penalty > 0:
            loss = loss + self.hyperparameters.preactivation_penalty * preactivation.pow(2).mean()
        return loss, features, preactivation, {"loss/actor": q_loss.detach()}

    @torch.no_grad()
    def update_targets(self) -> None:
        polyak_(self._target_params, self._online_params, self.hyperparameters.tau)

    def state_dict(self) -> dict[str, dict]:
        """Networks and targets (what ``model.pt`` holds)."""
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
        }

    def training_state(self) -> dict:
        """Everything besides the networks that an exact resume needs: optimizer steps (with AutoClip), monitor,
        exploration RNG and the update count."""
        return {
            "networks": self.state_dict(),
            **self.measurement.state_dict(),
            "rng": self.rng.bit_generator.state,
            "num_updates": self.num_updates,
        }

    def load_training_state(self, state: dict) -> None:
        nets = state["networks"]
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(nets[name])
        self.measurement.load_state_dict(state)
        self.rng.bit_generator.state = state["rng"]
        self.num_updates = state["num_updates"]
