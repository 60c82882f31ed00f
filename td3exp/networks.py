"""Encoders (NatureCNN for pixels, VectorInput for state vectors), the deterministic actor head, the twin-Q critic
head, and the Actor / Critic that pair them."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn


def kaiming_init(module: nn.Module) -> None:
    """He init for the ReLU stacks, zero biases (as SB3/DrQ-v2 do for conv encoders)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def mlp(in_dim: int, hidden_dims: list[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def output_in_fp32(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net``'s hidden layers under whatever autocast is on, its output layer in fp32.  bf16 keeps 8 significant
    bits: a Q value of ~150 rounded to bf16 moves in steps of 1.0, coarser than the TD errors it learns from."""
    *hidden, output = net
    for layer in hidden:
        x = layer(x)
    with torch.autocast(x.device.type, enabled=False):
        return output(x.float())


def to_device(module: nn.Module, device: torch.device, channels_last: bool) -> None:
    """Move a module; channels_last makes these convs faster on CPU (../shared/bench: 3.3 -> 4.0 updates/s) and
    on tensor cores."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    cast(Any, module).to(device, memory_format=memory_format)  # torch's stubs omit memory_format


class NatureCNN(nn.Module):
    """Mnih et al. (2015) encoder: uint8 frames -> features.

    ``pixel_scale``: "unit" divides pixels by 255; "raw" feeds 0..255 floats (with Kaiming init, feature norms in the
    thousands: the condition that saturates a tanh actor). ``trunk_norm`` ends in LayerNorm + tanh instead of ReLU,
    bounding the features as DrQ-v2's trunk does.
    """

    def __init__(
        self, in_channels: int, image_size: int, features_dim: int = 512, pixel_scale: str = "unit",
        trunk_norm: bool = False,
    ) -> None:
        super().__init__()
        self.scale = 1.0 / 255.0 if pixel_scale == "unit" else 1.0
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
        trunk: list[nn.Module] = [nn.LayerNorm(features_dim), nn.Tanh()] if trunk_norm else [nn.ReLU()]
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), *trunk)
        self.features_dim = features_dim
        self.apply(kaiming_init)

    def preprocess(self, obs: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames -> scaled floats; ``out`` lets the agent reuse one buffer per batch instead of allocating
        ~29 MB per forward (glibc maps and unmaps blocks that large every update)."""
        return torch.mul(obs, self.scale, out=out) if out is not None else obs.float() * self.scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs``: uint8 frames, or floats already ``preprocess``-ed."""
        x = self.preprocess(obs) if obs.dtype == torch.uint8 else obs
        return self.linear(self.convs(x))


class VectorInput(nn.Module):
    """The "encoder" of a state-vector observation: none.  The heads see the observation itself (float32), as in the
    TD3 paper; with no parameters there is no encoder gradient, learning rate or feature norm to measure."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.features_dim = obs_dim

    def preprocess(self, obs: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return obs.float()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float()


Encoder = NatureCNN | VectorInput


class ActorHead(nn.Module):
    """Features -> action. ``bounded``: tanh into [-1, 1]; unbounded: the raw output, which the actor loss then sees
    as is (the agent clips it only when it goes to the env and the replay).  ``kaiming``: He init (for the CNN
    features); False keeps torch's default Linear init, as the TD3 paper's and SB3's MLP heads use."""

    def __init__(self, features_dim: int, action_dim: int, hidden_dims: list[int], bounded: bool = True,
                 kaiming: bool = True) -> None:
        super().__init__()
        self.net = mlp(features_dim, hidden_dims, action_dim)
        if kaiming:
            self.net.apply(kaiming_init)
        self.bounded = bounded
        self.action_dim = action_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.act_and_preactivation(features)[0]

    def act_and_preactivation(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        preactivation = self.net(features)
        return (torch.tanh(preactivation) if self.bounded else preactivation), preactivation


class TwinQHead(nn.Module):
    """Two independent Q MLPs over the same (critic-encoder features, action) input; ``kaiming`` as in ActorHead.
    Their output layers run in fp32 under bf16 autocast too (``output_in_fp32``): Q values come out fp32."""

    def __init__(self, features_dim: int, action_dim: int, hidden_dims: list[int], kaiming: bool = True) -> None:
        super().__init__()
        self.q1 = mlp(features_dim + action_dim, hidden_dims, 1)
        self.q2 = mlp(features_dim + action_dim, hidden_dims, 1)
        if kaiming:
            self.apply(kaiming_init)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([features, action], dim=1)
        return output_in_fp32(self.q1, x), output_in_fp32(self.q2, x)

    def q1_only(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return output_in_fp32(self.q1, torch.cat([features, action], dim=1))


class Actor(nn.Module):
    """Encoder + actor head. With ``detach_features`` the actor loss never reaches the encoder (DrQ-v2)."""

    def __init__(self, encoder: Encoder, head: ActorHead, detach_features: bool) -> None:
        super().__init__()
        self.encoder, self.head, self.detach_features = encoder, head, detach_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(obs))

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(obs)
        return features.detach() if self.detach_features else features


class Critic(nn.Module):
    """Encoder feeding both Q heads."""

    def __init__(self, encoder: Encoder, head: TwinQHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(obs), action)
