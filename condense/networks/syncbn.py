"""condense's BatchNorm for the encoders of the distillation loop: one precise implementation
for one process, K processes (statistics over every rank's batch) and any memory format.

Why not ``nn.BatchNorm2d``: torch's CPU kernel for channels_last (NHWC) inputs accumulates the
per-channel sums row by row in float32, so its error grows with the batch: at DataDAM's real
pass (640 × 128 × 32 × 32) the normalised output is off by ~9e-4 and the input gradient by
~1.5e-4 of its scale (the NCHW kernel: ~6e-7). Here the statistics are two-pass (mean, then the
centred sum of squares) with torch's pairwise-summed reductions in float32, and the backward is
written out with the same reductions; the element-wise parts run through torch's own kernels in
the input's memory format, so the channels_last speed of the convolutions is kept.

Used by :mod:`condense.loop.sharding` for every BatchNorm encoder: in a process group whose
classes are spread over the ranks the statistics (and their gradients) are all-reduced, so they
come from all classes' images as in one process (docs/distributed.md); in one process the same
arithmetic runs without the all-reduce.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import all_reduce_, is_distributed

#: bytes of one block of the centred reductions on the CPU: small temporaries stay in cache and
#: are reused from the heap (a whole-batch temporary would be mapped and page-faulted afresh every
#: call); on accelerators the batch is one block (one kernel each, the caching allocator reuses)
BLOCK_BYTES = 4 * 2**20


def _centred_sums(x: Tensor, mean: Tensor, g: Tensor | None = None) -> Tensor:
    """Per channel ``Σ (x − mean)²`` (or ``Σ g·(x − mean)``), over blocks of the batch."""
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    m = mean.view(shape)
    rows = x.shape[0] if x.device.type != "cpu" else max(
        1, BLOCK_BYTES // max(1, x[:1].numel() * x.element_size()))
    total = x.new_zeros(x.shape[1])
    for i in range(0, x.shape[0], rows):
        xc = x[i : i + rows] - m
        total += (xc.square_() if g is None else xc.mul_(g[i : i + rows])).sum(dims)
    return total


def _sum(t: Tensor, group: bool, what: str, note: str) -> Tensor:
    """Sum over the ranks (in place on a contiguous copy) when ``group``; else ``t``."""
    if not group:
        return t
    return all_reduce_(t.clone(memory_format=torch.contiguous_format), what, note)


class _BatchNormFn(torch.autograd.Function):
    """Training-mode BatchNorm with statistics over the union of the ranks' batches (``group``).

    Returns ``(y, mean, biased var, count)``; only ``y`` is differentiable.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None,  # type: ignore[override]
                eps: float, group: bool, note: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        dims = [0, *range(2, x.dim())]
        count = x.new_full((1,), float(x.numel() // max(1, x.shape[1])))
        sums = _sum(torch.cat([x.sum(dims), count]), group, "synchronising BatchNorm statistics",
                    note)
        n = sums[-1:]
        mean = sums[:-1] / n
        centred_sq = _centred_sums(x, mean)
        var = _sum(centred_sq, group, "synchronising BatchNorm statistics", note) / n
        # the element-wise normalisation with the statistics above: torch's eval-mode kernel
        y = F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)
        invstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, weight, mean, invstd, n)
        ctx.group, ctx.note = group, note
        ctx.mark_non_differentiable(mean, var, n)
        return y, mean, var, n

    @staticmethod
    def backward(ctx: Any, gy: Tensor, *_: Any) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight, mean, invstd, n = ctx.saved_tensors
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        g = gy.contiguous(memory_format=torch.channels_last) if (
            x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous()) else gy.contiguous()
        sum_g = g.sum(dims)
        sum_gxc = _centred_sums(x, mean, g)  # Σ g·(x − mean), per channel
        grad_w = sum_gxc * invstd if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = sum_g if ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            both = _sum(torch.cat([sum_g, sum_gxc]), ctx.group, "synchronising BatchNorm "
                        "gradients", ctx.note) / n
            mean_g, mean_gxc = both.chunk(2)
            a = invstd if weight is None else weight * invstd
            k = -a * invstd * invstd * mean_gxc
            c = -k * mean - a * mean_g
            # a·(g − mean(g) − x̂·mean(g·x̂)) = a·g + k·x + c, per channel
            grad_x = torch.addcmul(c.view(shape), x, k.view(shape)).addcmul_(g, a.view(shape))
        return grad_x, grad_w, grad_b, None, None, None


class SyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm (any input rank ≥ 2, channels on dim 1), precise in every memory format, with
    statistics over all ranks' batches when ``synchronise`` and inside a process group.

    In training mode the per-channel mean and the biased variance used for normalisation are
    computed two-pass in float32 (over the union of every rank's batch: two all-reduces, sums
    and counts, then the centred sums of squares); gradients flow through the statistics (one
    all-reduce in backward). Running statistics are updated like ``nn.BatchNorm2d`` (unbiased
    variance). Works on the CPU (gloo), unlike ``torch.nn.SyncBatchNorm``. In eval mode it is
    plain BatchNorm with the running statistics.
    """

    note: str = ""
    #: whether the statistics span the ranks of a process group (one process: no effect)
    synchronise: bool = True

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not self.training:
            return super().forward(input)
        self._check_input_dim(input)
        group = self.synchronise and is_distributed()
        y, mean, var, n = _BatchNormFn.apply(input.float(), self.weight, self.bias, self.eps,
                                             group, self.note)
        rm, rv, tracked = self.running_mean, self.running_var, self.num_batches_tracked
        if self.track_running_stats and rm is not None and rv is not None and tracked is not None:
            with torch.no_grad():
                tracked.add_(1)
                m = 1.0 / float(tracked) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1.0).clamp(min=1.0))  # no host sync
                rm.mul_(1 - m).add_(mean.to(rm.dtype), alpha=m)
                rv.mul_(1 - m).add_(unbiased.to(rv.dtype), alpha=m)
        return y.to(input.dtype)


_PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` contains a BatchNorm layer (which couples the samples of a pass)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def convert_sync_batchnorm(module: nn.Module, note: str = "", *,
                           synchronise: bool = True) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``module`` by :class:`SyncBatchNorm`, in place.

    ``synchronise=False`` keeps the statistics to this process's batch (the precise arithmetic
    without the all-reduce). Parameters, buffers and the training flag carry over; already
    converted layers are kept (their ``note`` and ``synchronise`` updated), so calling it on a
    cached, re-initialised encoder every iteration costs one module walk.
    """
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in _PLAIN_BN:
                sync = SyncBatchNorm(child.num_features, eps=child.eps, momentum=child.momentum,
                                     affine=child.affine,
                                     track_running_stats=child.track_running_stats)
                like = next(itertools.chain(child.parameters(), child.buffers()), None)
                if like is not None:
                    sync.to(like.device)
                sync.load_state_dict(child.state_dict())
                sync.requires_grad_(any(p.requires_grad for p in child.parameters()))
                sync.train(child.training)
                sync.note, sync.synchronise = note, synchronise
                setattr(parent, name, sync)
            elif isinstance(child, SyncBatchNorm):
                child.note, child.synchronise = note, synchronise
    return module
