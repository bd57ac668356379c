"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021) as pure tensor functions.

Semantics follow the official code (VICO-UoE/DatasetCondensation utils.py, ``DiffAugment``) in
mode 'S': each call picks **one** op from the strategy and applies it. The parameters are
explicit: :func:`sample_params` draws them from a ``torch.Generator`` and :func:`apply` applies
them. For the Siamese use in distillation, one parameter set is drawn per class and applied to
that class's real *and* synthetic images; for evaluation, one op per mini-batch with per-image
parameters.

Parameters live on the CPU (their draws are device-independent); the images may be anywhere.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError

OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclasses.dataclass(frozen=True)
class DSAConfig:
    """DSA ratios (``ParamDiffAug`` of the official code)."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


@dataclasses.dataclass(frozen=True)
class DSAParams:
    """One parameter set per row; ``op`` indexes :data:`OPS`. All tensors on the CPU."""

    op: Tensor  # (G,) int64
    brightness: Tensor  # (G,) additive shift in [-b/2, b/2)
    saturation: Tensor  # (G,) factor in [0, s)
    contrast: Tensor  # (G,) factor in [c, 1 + c)
    crop: Tensor  # (G, 2) int64 row/column shifts in [-s, s]
    cutout: Tensor  # (G, 2) int64 centre row/column
    flip: Tensor  # (G,) bool
    scale: Tensor  # (G, 2) sx, sy
    rotate: Tensor  # (G,) angle in radians

    def __len__(self) -> int:
        return int(self.op.shape[0])

    def take(self, index: Tensor) -> DSAParams:
        """Rows ``index`` (e.g. expand per-class parameters to per-sample ones)."""
        return DSAParams(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @staticmethod
    def cat(parts: list[DSAParams]) -> DSAParams:
        return DSAParams(
            **{
                f.name: torch.cat([getattr(p, f.name) for p in parts])
                for f in dataclasses.fields(DSAParams)
            }
        )


def parse_strategy(strategy: str) -> tuple[int, ...]:
    """``"color_crop_cutout"`` -> op indices; ``""``/``"none"`` -> no augmentation."""
    if strategy.lower() in ("", "none"):
        return ()
    ops = strategy.split("_")
    bad = [o for o in ops if o not in OPS]
    if bad:
        raise ConfigError(
            f"unknown DSA op {', '.join(bad)} in {strategy!r}; valid ops: {', '.join(OPS)} "
            f"joined by '_', or 'none'"
        )
    return tuple(OPS.index(o) for o in ops)


def sample_params(
    n: int,
    strategy: str,
    image_size: tuple[int, int],
    generator: torch.Generator,
    *,
    config: DSAConfig = DSAConfig(),
    shared_op: bool = True,
) -> DSAParams:
    """Draw ``n`` parameter sets; with ``shared_op`` all rows use the same op (mode 'S').

    Every parameter is drawn whatever the op, in a fixed order, so the stream is stable.
    """
    ops = parse_strategy(strategy)
    h, w = image_size
    g = generator
    if not ops:
        op = torch.full((n,), -1, dtype=torch.long)
    elif shared_op:
        op = torch.full((n,), ops[int(torch.randint(len(ops), (1,), generator=g))])
    else:
        op = torch.tensor(ops)[torch.randint(len(ops), (n,), generator=g)]
    shift = (int(h * config.ratio_crop_pad + 0.5), int(w * config.ratio_crop_pad + 0.5))
    k = _cutout_size(image_size, config)
    r = config.ratio_scale
    return DSAParams(
        op=op,
        brightness=(torch.rand(n, generator=g) - 0.5) * config.brightness,
        saturation=torch.rand(n, generator=g) * config.saturation,
        contrast=torch.rand(n, generator=g) + config.contrast,
        crop=torch.stack(
            [
                torch.randint(-shift[0], shift[0] + 1, (n,), generator=g),
                torch.randint(-shift[1], shift[1] + 1, (n,), generator=g),
            ],
            1,
        ),
        cutout=torch.stack(
            [
                torch.randint(0, h + (1 - k[0] % 2), (n,), generator=g),
                torch.randint(0, w + (1 - k[1] % 2), (n,), generator=g),
            ],
            1,
        ),
        flip=torch.rand(n, generator=g) < config.prob_flip,
        scale=torch.rand(n, 2, generator=g) * (r - 1.0 / r) + 1.0 / r,
        rotate=(torch.rand(n, generator=g) - 0.5) * 2 * config.ratio_rotate / 180 * math.pi,
    )


def _cutout_size(image_size: tuple[int, int], config: DSAConfig) -> tuple[int, int]:
    return (int(image_size[0] * config.ratio_cutout + 0.5),
            int(image_size[1] * config.ratio_cutout + 0.5))


def apply(x: Tensor, params: DSAParams, *, config: DSAConfig = DSAConfig()) -> Tensor:
    """Apply per-row parameters to ``x`` ``(N, C, H, W)`` (``len(params) == N``); differentiable."""
    if len(params) != x.shape[0]:
        raise ValueError(f"{len(params)} parameter rows for a batch of {x.shape[0]}")
    ops = params.op
    present = torch.unique(ops).tolist()  # CPU tensor: no device sync
    if present == [-1]:
        return x
    if len(present) == 1:
        return _OP_FNS[OPS[present[0]]](x, params, config)
    out = x
    for k in present:
        if k < 0:
            continue
        rows = (ops == k).nonzero().flatten()
        rows_dev = rows.to(x.device, non_blocking=True)
        y = _OP_FNS[OPS[k]](x.index_select(0, rows_dev), params.take(rows), config)
        out = out.index_copy(0, rows_dev, y)
    return out


def _col(t: Tensor, x: Tensor) -> Tensor:
    """(N,) CPU params -> (N, 1, 1, 1) on x's device and dtype."""
    return t.to(device=x.device, dtype=x.dtype, non_blocking=True).view(-1, 1, 1, 1)


def color(x: Tensor, p: DSAParams, config: DSAConfig = DSAConfig()) -> Tensor:
    """Brightness, then saturation (channel mean), then contrast (image mean)."""
    x = x + _col(p.brightness, x)
    m = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
    x = (x - m) * _col(p.saturation, x) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return (x - m) * _col(p.contrast, x) + m


def crop(x: Tensor, p: DSAParams, config: DSAConfig = DSAConfig()) -> Tensor:
    """Integer translation with zero fill: ``out[i, j] = x[i + ty, j + tx]`` where in range."""
    n, c, h, w = x.shape
    shifts = p.crop.to(x.device, non_blocking=True)
    rows = torch.arange(h, device=x.device)[None] + shifts[:, :1]  # (N, H)
    cols = torch.arange(w, device=x.device)[None] + shifts[:, 1:]  # (N, W)
    keep = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    rows = rows.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w)
    cols = cols.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w)
    y = x.gather(2, rows).gather(3, cols)
    return y * keep[:, None].to(x.dtype)


def cutout(x: Tensor, p: DSAParams, config: DSAConfig = DSAConfig()) -> Tensor:
    """Zero a k×k square (k = ratio·size) centred at the drawn offset, clipped at the borders."""
    n, c, h, w = x.shape
    kh, kw = _cutout_size((h, w), config)
    centre = p.cutout.to(x.device, non_blocking=True)
    top = centre[:, :1] - kh // 2  # (N, 1)
    left = centre[:, 1:] - kw // 2
    r = torch.arange(h, device=x.device)[None]
    q = torch.arange(w, device=x.device)[None]
    in_r = (r >= top) & (r < top + kh)  # (N, H)
    in_c = (q >= left) & (q < left + kw)  # (N, W)
    hole = in_r[:, :, None] & in_c[:, None, :]  # (N, H, W)
    return x * (~hole)[:, None].to(x.dtype)


def flip(x: Tensor, p: DSAParams, config: DSAConfig = DSAConfig()) -> Tensor:
    """Horizontal flip (width axis) where ``p.flip``."""
    mask = p.flip.to(x.device, non_blocking=True).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    theta = theta.to(device=x.device, dtype=x.dtype, non_blocking=True)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def scale(x: Tensor, p: DSAParams, config: DSAConfig = DSAConfig()) -> Tensor:
    """theta = diag(sx, sy): output coordinates scaled into input coordinates."""
    theta = torch.zeros(len(p), 2, 3)
    theta[:, 0, 0] = p.scale[:, 0]
    theta[:, 1, 1] = p.scale[:, 1]
    return _affine(x, theta)


def rotate(x: Tensor, p: DSAParams, config: DSAConfig = DSAConfig()) -> Tensor:
    """theta = [[cos, -sin, 0], [sin, cos, 0]], angle in ±ratio_rotate degrees."""
    cos, sin = torch.cos(p.rotate), torch.sin(p.rotate)
    theta = torch.zeros(len(p), 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    return _affine(x, theta)


_OP_FNS = {"color": color, "crop": crop, "cutout": cutout, "flip": flip, "scale": scale,
           "rotate": rotate}


def augment(
    x: Tensor,
    strategy: str,
    generator: torch.Generator,
    *,
    config: DSAConfig = DSAConfig(),
) -> Tensor:
    """Evaluation-time DSA: one op for the batch, per-image parameters."""
    if not parse_strategy(strategy):
        return x
    params = sample_params(x.shape[0], strategy, tuple(x.shape[-2:]), generator, config=config)
    return apply(x, params, config=config)
