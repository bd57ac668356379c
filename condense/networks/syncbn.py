"""BatchNorm whose statistics span every rank's batch (class-sharded distillation).

Used by :mod:`condense.loop.sharding` when a BatchNorm encoder's classes are spread over several
processes: the statistics must come from all classes' images, as in one process (see
docs/distributed.md).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from ..distributed import all_reduce_, is_distributed


class _AllReduceSum(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient (every rank calls backward)."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, note: str) -> Tensor:  # type: ignore[override]
        ctx.note = note
        return all_reduce_(tensor.clone(memory_format=torch.contiguous_format),
                           "synchronising BatchNorm statistics", note)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return all_reduce_(grad.clone(memory_format=torch.contiguous_format),
                           "synchronising BatchNorm gradients", ctx.note), None


class SyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm (any input rank ≥ 2, channels on dim 1) with statistics over all ranks' batches.

    In training mode the per-channel mean and the biased variance used for normalisation are
    computed over the union of every rank's batch (two all-reduces: sums and counts, then the
    centred sums of squares), in float32; gradients flow through both. Running statistics are
    updated like ``nn.BatchNorm2d`` (unbiased variance). Works on the CPU (gloo), unlike
    ``torch.nn.SyncBatchNorm``. In eval mode, or outside a process group, it is plain BatchNorm.
    """

    note: str = ""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or not is_distributed():
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float()
        count = x.new_full((1,), float(x.numel() // max(1, x.shape[1])))
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), count]), self.note)
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply(centred.square().sum(dims), self.note) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        rm, rv, tracked = self.running_mean, self.running_var, self.num_batches_tracked
        if self.track_running_stats and rm is not None and rv is not None and tracked is not None:
            with torch.no_grad():
                tracked.add_(1)
                m = 1.0 / float(tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * (n / (n - 1.0).clamp(min=1.0))  # no host sync
                rm.mul_(1 - m).add_(mean.detach().to(rm.dtype), alpha=m)
                rv.mul_(1 - m).add_(unbiased.to(rv.dtype), alpha=m)
        return y.to(input.dtype)


_PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` contains a BatchNorm layer (which couples the samples of a pass)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def convert_sync_batchnorm(module: nn.Module, note: str = "") -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``module`` by :class:`SyncBatchNorm`, in place.

    Parameters, buffers and the training flag carry over; already converted layers are kept, so
    calling it on a cached, re-initialised encoder every iteration costs one module walk.
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
                sync.note = note
                setattr(parent, name, sync)
            elif isinstance(child, SyncBatchNorm):
                child.note = note
    return module
