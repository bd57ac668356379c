"""The core's encoder sampler: randomly initialised ConvNets (the DC/DSA/DM/DataDAM encoders).

Registered through the same public hook as any third-party plugin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import torch

from .config import Config
from .hookspecs import hookimpl
from .interfaces import DataSpec, Encoder, EncoderSampler
from .networks import ConvNet, FeatureEncoder, reinit_
from .networks.factory import default_depth


class ConvNetSampler(EncoderSampler):
    """Randomly initialised ConvNet (width/depth/norm/activation/pooling), redrawn each call."""

    name = "convnet"

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        width: int = 128  # filters per block
        depth: int = 0  # blocks; 0 = by image size (3 up to 32 px, 4 at 64, 6 at 128)
        norm: Literal["instancenorm", "batchnorm", "layernorm", "groupnorm",
                      "none"] = "instancenorm"
        act: Literal["relu", "sigmoid", "leakyrelu", "swish"] = "relu"
        pool: Literal["avgpool", "maxpool", "none"] = "avgpool"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._cache: dict[tuple[Any, ...], FeatureEncoder] = {}

    def build(self, spec: DataSpec) -> ConvNet:
        """The ConvNet, with PyTorch's default initialisation (drawn from the global RNG)."""
        c = self.config
        return ConvNet(spec.channels, spec.num_classes, spec.image_size, width=c.width,
                       depth=c.depth or default_depth(spec.image_size), norm=c.norm, act=c.act,
                       pool=c.pool)

    def sample(self, spec: DataSpec, *, generator: torch.Generator,
               device: torch.device | str = "cpu") -> Encoder:
        key = (spec, str(device))
        encoder = self._cache.get(key)
        if encoder is None:
            encoder = self._blank(spec, device).requires_grad_(False)
            self._cache = {key: encoder}
        reinit_(encoder, generator)
        return encoder.train()

    def sample_trainable(self, spec: DataSpec, *, generator: torch.Generator,
                         device: torch.device | str = "cpu") -> Encoder:
        """A new ConvNet (never the cached one) with trainable parameters."""
        encoder = reinit_(self._blank(spec, device), generator)
        return encoder.requires_grad_(True).train()

    def _blank(self, spec: DataSpec, device: torch.device | str) -> FeatureEncoder:
        # built on the meta device: no memory, and no draw from the process's global RNG
        with torch.device("meta"):
            net = FeatureEncoder(self.build(spec))
        return net.to_empty(device=device)


@hookimpl
def register_encoder_samplers(register: Callable[[type[EncoderSampler]], None]) -> None:
    register(ConvNetSampler)
