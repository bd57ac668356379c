"""The random baseline with every accuracy: real images picked at random, trained the same way.

The baseline set is ``condense.distill("random", dataset=..., ipc=..., seed=...)`` (what
``condense run random`` writes), moved into the evaluated set's own space (its normalisation and
ZCA) so that both are trained and tested identically. Its per-network accuracies are cached under
a key over (dataset and its settings, IPC, protocol settings and the resolved DSA/lr, model,
seed, number of networks, label regime, input space, device type, condense version), so each
baseline is trained once (docs/evaluators.md, "The random baseline").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

import condense

from .cache import cache_root, entry_key, read_json, write_json


@dataclasses.dataclass(frozen=True)
class BaselineRequest:
    """Everything a baseline's numbers depend on (hashed into its cache key)."""

    fields: Mapping[str, Any]

    @property
    def key(self) -> str:
        return entry_key({"kind": "random-baseline", **dict(self.fields)})


@dataclasses.dataclass(frozen=True)
class BaselineScores:
    """Per-network accuracies (percent) of the random baseline and where they came from."""

    per_run: list[float]
    cache: str  # "hit" or "miss"
    key: str
    seconds: float  # time spent now (reading the cache, or building and training)


def random_set(data: condense.RealData, ipc: int, seed: int,
               transform: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """``ipc`` random real training images per class (condense's ``random`` baseline with
    ``seed``), mapped to the space of ``transform``; ``(images, labels)``."""
    rnd = condense.distill("random", dataset=data, ipc=ipc, seed=seed)
    pixels = (rnd.denormalize() * 255.0).round().clamp(0, 255).to(torch.uint8)
    return transform(pixels), rnd.labels.long()


def baseline_scores(request: BaselineRequest, compute: Callable[[], list[float]], *,
                    cache_dir: str = "") -> BaselineScores:
    """The cached per-network accuracies of ``request``, or ``compute()`` them and store them.

    Under ``torchrun`` every rank takes the same branch (a hit only if every rank reads it) and
    rank 0 writes.
    """
    t0 = time.perf_counter()
    key = request.key
    path = cache_root(cache_dir) / f"baseline-{key}.json"
    entry = read_json(path)
    per_run = entry.get("per_run") if entry else None
    valid = isinstance(per_run, list) and all(isinstance(v, (int, float)) for v in per_run)
    if all(condense.distributed.gather_objects([valid])) and per_run:
        return BaselineScores([float(v) for v in per_run], "hit", key, time.perf_counter() - t0)
    values = compute()
    if condense.distributed.is_main():
        write_json(path, {"per_run": values, "fields": dict(request.fields),
                          "condense": condense.__version__})
    return BaselineScores(values, "miss", key, time.perf_counter() - t0)


__all__ = ["BaselineRequest", "BaselineScores", "baseline_scores", "random_set"]
