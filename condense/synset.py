"""SynSet: a distilled set in memory (images, labels, metadata), usable as a torch Dataset."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .zca import ZCA


@dataclasses.dataclass
class SynSet(Dataset[tuple[Tensor, Tensor]]):
    """A distilled set.

    ``images``: float32 ``(N, C, H, W)`` in the space recorded by ``meta`` (normalised with
    ``meta["mean"]``/``meta["std"]``, then ZCA-whitened if ``meta["zca"]`` is set);
    ``labels``: int64 ``(N,)``; optional ``soft_labels`` ``(N, K)`` and learned ``syn_lr``.
    ``meta`` holds JSON-able values (see docs/reference/artifact-format.md).
    """

    images: Tensor
    labels: Tensor
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    soft_labels: Tensor | None = None
    syn_lr: Tensor | None = None
    zca_mean: Tensor | None = None
    zca_transform: Tensor | None = None

    def __repr__(self) -> str:
        x = self.images
        parts = [f"{len(self)} images {tuple(x.shape[1:])} "
                 f"{str(x.dtype).removeprefix('torch.')}"]
        if x.device.type != "cpu":
            parts[0] += f" on {x.device}"
        for key in ("method", "dataset", "ipc"):
            if key in self.meta:
                parts.append(f"{key}={self.meta[key]!r}")
        parts.append(f"{self.num_classes} classes")
        extras = [k for k in ("soft_labels", "syn_lr", "zca_transform")
                  if getattr(self, k) is not None]
        if extras:
            parts.append("with " + ", ".join(extras))
        return f"SynSet({', '.join(parts)})"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        target = self.soft_labels[index] if self.soft_labels is not None else self.labels[index]
        return self.images[index], target

    @property
    def num_classes(self) -> int:
        names = self.meta.get("class_names")
        if names:
            return len(names)
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    @property
    def ipc(self) -> int:
        return int(self.meta.get("ipc") or (len(self) // max(self.num_classes, 1)))

    def denormalize(self) -> Tensor:
        """Images mapped back to [0, 1] pixel space (undoing ZCA, then the normalisation)."""
        x = self.images
        if self.zca_transform is not None and self.zca_mean is not None:
            eps = float(self.meta.get("zca", {}).get("eps", 0.1))
            x = ZCA(self.zca_mean, self.zca_transform, eps).inverse(x)
        c = x.shape[1]
        mean = torch.tensor(self.meta.get("mean", [0.0] * c), dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.meta.get("std", [1.0] * c), dtype=x.dtype).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1)
