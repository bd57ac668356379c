"""The ConvNet family of the DC/DSA/DM/DataDAM papers (their ``networks.py``), as one builder.

Blocks ``d = 1..depth``: conv3x3 (``width`` filters; padding 3 on a 1-channel first layer, which
turns 28×28 into 32×32), norm, activation, 2×2 pooling. Head: flatten -> Linear. PyTorch default
initialisation; :func:`reinit_` redraws it in place from an explicit generator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..interfaces import Encoder, Features
from .pooling import fusable, relu_avg_pool2

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
ACTS = ("relu", "sigmoid", "leakyrelu", "swish")
POOLS = ("avgpool", "maxpool", "none")


class Swish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(x)


def _norm(kind: str, c: int, h: int, w: int) -> nn.Module:
    if kind == "instancenorm":
        return nn.GroupNorm(c, c, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(c, affine=True)
    if kind == "layernorm":
        return nn.LayerNorm([c, h, w], elementwise_affine=True)
    if kind == "groupnorm":
        return nn.GroupNorm(4, c, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


def _act(kind: str) -> nn.Module:
    table = {"relu": lambda: nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid,
             "leakyrelu": lambda: nn.LeakyReLU(0.01), "swish": Swish}
    if kind not in table:
        raise ConfigError(f"unknown activation {kind!r}; valid: {', '.join(ACTS)}")
    return table[kind]()


def _pool(kind: str) -> nn.Module:
    if kind == "avgpool":
        return nn.AvgPool2d(2, 2)
    if kind == "maxpool":
        return nn.MaxPool2d(2, 2)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown pooling {kind!r}; valid: {', '.join(POOLS)}")


class ConvNet(nn.Module):
    """``ConvNet(channels, num_classes, image_size, width, depth, norm, act, pool)``.

    ``forward`` returns logits; :meth:`features` returns :class:`Features` (the per-block
    activation outputs, before pooling, the flattened embedding after the last block, and the
    classifier's logits). ``forward`` computes the same logits through :meth:`embed`, which fuses
    ReLU and pooling where that is faster (tested equal to :meth:`features`).
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        *,
        width: int = 128,
        depth: int = 3,
        norm: str = "instancenorm",
        act: str = "relu",
        pool: str = "avgpool",
    ) -> None:
        super().__init__()
        h, w = image_size
        if channels == 1:  # padding 3 on a 1-channel first conv: 28 -> 32 (the official sizes)
            h, w = h + 4, w + 4
        self.blocks = nn.ModuleList()
        in_c = channels
        for d in range(depth):
            conv = nn.Conv2d(in_c, width, 3, padding=3 if channels == 1 and d == 0 else 1)
            block = nn.ModuleDict(
                {"conv": conv, "norm": _norm(norm, width, h, w), "act": _act(act),
                 "pool": _pool(pool)}
            )
            self.blocks.append(block)
            in_c = width
            if pool != "none":
                h, w = h // 2, w // 2
        self.embed_dim = width * h * w
        self._relu_pool = act == "relu" and pool == "avgpool"  # fused in embed() where faster
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    def features(self, x: Tensor) -> Features:
        maps = []
        for block in self.blocks:
            x = block["act"](block["norm"](block["conv"](x)))
            maps.append(x)
            x = block["pool"](x)
        embedding = x.reshape(x.shape[0], -1)
        return Features(embedding=embedding, maps=tuple(maps), logits=self.classifier(embedding))

    def embed(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block["norm"](block["conv"](x))
            if self._relu_pool and fusable(x):  # NCHW on the CPU: one fused ReLU + pooling
                x = relu_avg_pool2(x)
            else:
                x = block["pool"](block["act"](x))
        return x.reshape(x.shape[0], -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


class FeatureEncoder(Encoder):
    """Wrap a network with a ``features(x) -> Features`` method as an :class:`Encoder`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Features:
        return self.net.features(x)


@torch.no_grad()
def reinit_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Redraw PyTorch's default initialisation in place from ``generator`` (drawn on the CPU).

    Conv/Linear: kaiming-uniform(a=√5) weights, U(±1/√fan_in) biases; norms: γ=1, β=0, running
    statistics reset. Same distribution as a freshly constructed module, but reproducible.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = torch.empty(m.weight.shape)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
            m.weight.copy_(w)
            if m.bias is not None:
                fan_in = w[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=generator))
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
    return module
