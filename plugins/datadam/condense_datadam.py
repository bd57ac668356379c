"""DataDAM: Efficient Dataset Distillation with Attention Matching (Sajedi et al., ICCV 2023).

Loss (exactly as the official code, DataDistillation/DataDAM main_DataDAM.py, computes it)::

    loss = w_sam · Σ_{l<L} Σ_c ‖μ_R(z_l) − μ_S(z_l)‖²  +  w_mmd·λ · Σ_c ‖μ_R(e) − μ_S(e)‖²

where ``z_l`` is the L2-normalised spatial attention map ``Σ_k |A_{l,k}|^p`` of block ``l``'s
activation output (every block but the last), ``e`` the last-layer embedding, ``w_sam = w_mmd =
100`` and ``λ = task_balance``. Default preset = the official code (BatchNorm ConvNet, p = 1,
20 000 iterations); ``datadam-paper`` = the paper and its HP table (InstanceNorm, p = 4, 8000).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import condense

__version__ = "0.1.0"


def attention_map(fmap: Tensor, power: float) -> Tensor:
    """``(..., C, H, W)`` -> ``(..., H·W)``: Σ_k |A_k|^p over channels, flattened, L2-normalised."""
    # Σ_k |A_k|^p as (‖A‖_p)^p: the fused norm kernel avoids materialising |A| (a full copy of
    # the activations, ~20% of a CPU step); identical for p = 1, equal to rounding otherwise.
    a = torch.linalg.vector_norm(fmap, ord=power, dim=-3)  # (..., C, H, W) -> (..., H, W)
    if power != 1:
        a = a.pow(power)
    a = a.flatten(start_dim=-2)  # (..., H, W) -> (..., H·W)
    return F.normalize(a, p=2, dim=-1, eps=1e-12)


def mean_match(real: Tensor, syn: Tensor) -> Tensor:
    """Σ over classes and features of (per-class mean difference)²: ``(k, n, D)``, ``(k, m, D)``."""
    diff = real.mean(dim=1) - syn.mean(dim=1)  # (k, D)
    return (diff * diff).sum()


def sam_loss(real_maps: tuple[Tensor, ...], syn_maps: tuple[Tensor, ...], power: float) -> Tensor:
    """Spatial attention matching summed over the given layers (maps grouped ``(k, n, C, H, W)``).
    """
    return _matched(tuple(attention_map(r, power) for r in real_maps),
                    tuple(attention_map(s, power) for s in syn_maps))


def _matched(real_att: tuple[Tensor, ...], syn_att: tuple[Tensor, ...]) -> Tensor:
    total = real_att[0].new_zeros(())
    for r, s in zip(real_att, syn_att, strict=True):
        total = total + mean_match(r, s)
    return total


def attention_features(feats: condense.Features, power: float) -> condense.Features:
    """The embedding and the attention maps of every block but the last (per sample)."""
    return condense.Features(feats.embedding,
                             tuple(attention_map(m, power) for m in feats.maps[:-1]))


def datadam_loss(
    real: condense.Features,
    syn: condense.Features,
    *,
    power: float = 1.0,
    task_balance: float = 0.01,
    sam_weight: float = 100.0,
    mmd_weight: float = 100.0,
) -> Tensor:
    """The full DataDAM loss on grouped features (SAM on all blocks but the last, + MMD)."""
    return summarized_loss(attention_features(real, power), attention_features(syn, power),
                           task_balance=task_balance, sam_weight=sam_weight, mmd_weight=mmd_weight)


def summarized_loss(
    real: condense.Features,
    syn: condense.Features,
    *,
    task_balance: float = 0.01,
    sam_weight: float = 100.0,
    mmd_weight: float = 100.0,
) -> Tensor:
    """:func:`datadam_loss` on :func:`attention_features` (``maps`` are attention maps)."""
    if any(m.dim() != real.embedding.dim() for m in (*real.maps, *syn.maps)):
        raise ValueError("summarized_loss expects attention maps (k, n, H·W) next to the "
                         "(k, n, D) embedding: pass the features through attention_features first")
    sam = _matched(real.maps, syn.maps) if real.maps else real.embedding.new_zeros(())
    mmd = mean_match(real.embedding, syn.embedding)
    return sam_weight * sam + mmd_weight * task_balance * mmd


class DataDAM(condense.FeatureMatching):
    """Spatial attention matching + last-layer MMD through random ConvNets (ICCV 2023)."""

    name = "datadam"
    loop_defaults = {"iterations": 20000, "lr_img": 1.0, "batch_real": 64, "momentum": 0.5}
    sampler_defaults = {"norm": "batchnorm"}
    presets = {
        "datadam": {},
        "datadam-paper": {"sampler.norm": "instancenorm", "attention_power": 4.0,
                          "iterations": 8000},
    }

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        attention_power: float = 1.0  # p in Σ_k |A_k|^p (code: 1, paper: 4)
        task_balance: float = 0.01  # λ, weight of the last-layer MMD term
        sam_weight: float = 100.0  # factor on each attention layer term (code: 100)
        mmd_weight: float = 100.0  # factor on the MMD term before λ (code: 100, so 100·λ = 1)

    def auto_overrides(self, spec: condense.DataSpec, ipc: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if ipc > 50:  # HP table and --lr_img help text
            out["lr_img"] = 10.0
        if max(spec.image_size) >= 128:  # HP table: λ 0.02 at high resolution
            out["task_balance"] = 0.02
        return out

    def summarize(self, feats: condense.Features) -> condense.Features:
        return attention_features(feats, self.config.attention_power)

    def loss(self, real: condense.Features, syn: condense.Features) -> Tensor:
        c = self.config  # features already summarised: maps are attention maps
        return summarized_loss(real, syn, task_balance=c.task_balance, sam_weight=c.sam_weight,
                               mmd_weight=c.mmd_weight)


@condense.hookimpl
def register_methods(register: Any) -> None:
    register(DataDAM)


__all__ = ["DataDAM", "attention_features", "attention_map", "datadam_loss", "mean_match",
           "sam_loss", "summarized_loss"]
