"""``avg_pool2d(relu(x), 2)`` as one autograd function, for NCHW tensors on the CPU.

PyTorch's CPU ``avg_pool2d`` on NCHW is slow for the ConvNet's first block (100×128×32×32 on one
thread: ~25 ms forward, ~30 ms backward, plus ~25 ms for the ReLU's backward). Here the forward
adds row pairs (contiguous) and multiplies by a (W, W/2) pooling matrix; the backward multiplies by
its transpose and applies the ReLU mask in one ``threshold_backward`` over the row pairs: 2-3x
less time for ReLU + pooling (``benchmarks/evaluate.py``). Same values up to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: below this many pixels per map the native kernels are as fast (measured at 8×8)
MIN_PIXELS = 256


def _pool_matrix(w: int, like: Tensor) -> Tensor:
    """``(W/2, W)``: row ``j`` averages columns ``2j`` and ``2j+1`` (and the row pair: 1/4)."""
    u = torch.zeros(w // 2, w, dtype=like.dtype, device=like.device)
    j = torch.arange(w // 2, device=like.device)
    u[j, 2 * j] = 0.25
    u[j, 2 * j + 1] = 0.25
    return u


class _ReluAvgPool2(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:  # type: ignore[override]
        *lead, h, w = x.shape
        r = torch.relu(x).reshape(-1, 2, w)  # consecutive row pairs
        y = (r[:, 0] + r[:, 1]) @ _pool_matrix(w, x).t()  # (rows/2, W) -> (rows/2, W/2)
        return y.reshape(*lead, h // 2, w // 2)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[no-untyped-def, override]
        (x,) = ctx.saved_tensors
        w = x.shape[-1]
        up = grad.reshape(-1, w // 2) @ _pool_matrix(w, grad)  # (rows/2, W), already × 1/4
        pairs = up.reshape(-1, 1, w).expand(-1, 2, w)
        return torch.ops.aten.threshold_backward(pairs, x.reshape(-1, 2, w), 0).reshape(x.shape)


def fusable(x: Tensor) -> bool:
    """Whether :func:`relu_avg_pool2` is the faster path for ``x``."""
    h, w = x.shape[-2:]
    return (x.device.type == "cpu" and x.is_contiguous() and h % 2 == 0 and w % 2 == 0
            and h * w >= MIN_PIXELS)


def relu_avg_pool2(x: Tensor) -> Tensor:
    """``F.avg_pool2d(F.relu(x), 2)`` for ``(..., H, W)`` with even ``H`` and ``W``."""
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"relu_avg_pool2 needs even H and W, got {tuple(x.shape[-2:])}")
    return _ReluAvgPool2.apply(x)


__all__ = ["fusable", "relu_avg_pool2"]
