"""The core's own plugin: the ConvNet encoder sampler and the random/herding baselines.

Registered through the same public hooks as any third-party plugin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from .config import Config
from .hookspecs import hookimpl
from .interfaces import DataSpec, Encoder, EncoderSampler, Method
from .networks import ConvNet, FeatureEncoder, reinit_
from .networks.factory import default_depth
from .rng import keyed_generator


class ConvNetSampler(EncoderSampler):
    """Randomly initialised ConvNet (width/depth/norm/activation/pooling), redrawn each call."""

    name = "convnet"

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        width: int = 128  # filters per block
        depth: int = 0  # blocks; 0 = by image size (3 up to 32 px, 4 at 64, 6 at 128)
        norm: Literal["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"] = "instancenorm"
        act: Literal["relu", "sigmoid", "leakyrelu", "swish"] = "relu"
        pool: Literal["avgpool", "maxpool", "none"] = "avgpool"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._cache: dict[tuple[Any, ...], FeatureEncoder] = {}

    def build(self, spec: DataSpec) -> ConvNet:
        c = self.config
        return ConvNet(spec.channels, spec.num_classes, spec.image_size, width=c.width,
                       depth=c.depth or default_depth(spec.image_size), norm=c.norm, act=c.act,
                       pool=c.pool)

    def sample(self, spec: DataSpec, *, generator: torch.Generator,
               device: torch.device | str = "cpu") -> Encoder:
        key = (spec, str(device))
        encoder = self._cache.get(key)
        if encoder is None:
            encoder = FeatureEncoder(self.build(spec)).to(device)
            encoder.requires_grad_(False)
            self._cache = {key: encoder}
        reinit_(encoder, generator)
        return encoder.train()


class RandomReal(Method):
    """Baseline: ipc real training images per class, drawn at random (no optimisation)."""

    name = "random"
    loop_defaults: ClassVar[dict[str, Any]] = {"iterations": 0, "init": "real"}
    needs_encoder = False

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        pass

    def iteration(self, ctx: Any) -> Tensor:
        return torch.zeros(())


class Herding(Method):
    """Baseline: per-class herding selection in the embedding of a random ConvNet."""

    name = "herding"
    loop_defaults: ClassVar[dict[str, Any]] = {"iterations": 0}
    needs_encoder = False

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        batch: int = 1024  # images embedded per forward pass

    def initialize(self, plan: Any, data: Any) -> Tensor:
        spec = data.spec
        encoder = plan.sampler.sample(spec, generator=keyed_generator(plan.seed, "herding"))
        encoder.eval()
        picks = []
        for c, rows in enumerate(data.class_index()):
            with torch.no_grad():
                emb = torch.cat([
                    encoder(data.normalize(data.train.images[rows[i : i + self.config.batch]])).embedding
                    for i in range(0, len(rows), self.config.batch)
                ])
            chosen = herding_select(emb, plan.ipc)
            picks.append(data.normalize(data.train.images[rows[chosen]]))
        return torch.cat(picks)

    def iteration(self, ctx: Any) -> Tensor:
        return torch.zeros(())


def herding_select(features: Tensor, k: int) -> Tensor:
    """Greedy herding (Welling 2009): indices whose running mean best tracks the class mean."""
    if k > features.shape[0]:
        raise ValueError(f"cannot select {k} of {features.shape[0]}")
    mu = features.mean(0)  # (D,)
    running = torch.zeros_like(mu)
    available = torch.ones(features.shape[0], dtype=torch.bool)
    chosen = []
    for t in range(1, k + 1):
        dist = ((mu - (running + features) / t) ** 2).sum(1)  # (N,)
        dist[~available] = float("inf")
        i = int(torch.argmin(dist))
        chosen.append(i)
        available[i] = False
        running += features[i]
    return torch.tensor(chosen)


@hookimpl
def register_encoder_samplers(register: Callable[[type[EncoderSampler]], None]) -> None:
    register(ConvNetSampler)


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    register(RandomReal)
    register(Herding)
