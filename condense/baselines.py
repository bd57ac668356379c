"""The selection baselines every method is compared with: ``random`` and ``herding``.

Both pick real training images (no optimisation, 0 iterations). Registered through the same
public hook as any third-party plugin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from .config import Config
from .hookspecs import hookimpl
from .interfaces import EncoderSampler, Method, StepContext
from .realdata import RealData
from .rng import keyed_generator


class RandomReal(Method):
    """Baseline: ipc real training images per class, drawn at random (no optimisation)."""

    name = "random"
    loop_defaults: ClassVar[dict[str, Any]] = {"iterations": 0, "init": "real"}
    needs_encoder = False

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        pass

    def iteration(self, ctx: StepContext) -> Tensor:
        return torch.zeros(())


class Herding(Method):
    """Baseline: per-class herding selection in the embedding of a random ConvNet."""

    name = "herding"
    loop_defaults: ClassVar[dict[str, Any]] = {"iterations": 0}
    needs_encoder = False

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        batch: int = 1024  # images embedded per forward pass

    def initialize(self, data: RealData, *, ipc: int, seed: int,
                   sampler: EncoderSampler) -> Tensor:
        spec = data.spec
        encoder = sampler.sample(spec, generator=keyed_generator(seed, "herding"),
                                 device=data.train.images.device)
        encoder.eval()
        picks = []
        for _c, rows in enumerate(data.class_index()):
            with torch.no_grad():
                batch = self.config.batch
                emb = torch.cat([
                    encoder(data.normalize(data.train.images[rows[i : i + batch]])).embedding
                    for i in range(0, len(rows), batch)
                ])
            chosen = herding_select(emb, ipc)
            picks.append(data.normalize(data.train.images[rows[chosen]]))
        return torch.cat(picks)

    def iteration(self, ctx: StepContext) -> Tensor:
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
def register_methods(register: Callable[[type[Method]], None]) -> None:
    register(RandomReal)
    register(Herding)
