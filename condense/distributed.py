"""Class-sharded distillation over ``torchrun`` processes, and rank-aware helpers.

``torchrun --nproc_per_node K -m condense run ...`` starts K processes; each one joins the job with
:func:`init` (gloo on the CPU, nccl on CUDA) and :func:`condense.distill` then shards the classes
over the ranks in contiguous ranges. Every rank draws the same encoder each iteration and every
per-class draw is keyed by ``(seed, iteration, class)``, so the gathered synthetic set equals a
one-process run with the same seed up to floating-point reduction order:

* encoders without BatchNorm (InstanceNorm, ...): each class's loss depends on its own images
  only; no communication happens inside an iteration;
* BatchNorm encoders with ``class_chunk`` 0 (all classes in one pass): each rank pushes its
  classes in one pass and :class:`SyncBatchNorm` all-reduces the per-channel statistics, so the
  real pass is normalised with the statistics of all classes' real images and the synthetic
  pass with those of all synthetic images, as in one process (spec §1.1 step 7); gradients flow
  through the all-reduce;
* BatchNorm encoders with ``class_chunk`` N: one process normalises each chunk of N classes
  with that chunk's statistics; the ranks then own whole chunks (aligned to multiples of N) and
  keep BatchNorm local, which is the same computation.

Rank 0 writes checkpoints and the artifact; ``--resume`` loads the checkpoint on rank 0 and
broadcasts it. A collective that fails (another rank died, or did not answer within the timeout,
``CONDENSE_DIST_TIMEOUT`` seconds, default 1800) raises :class:`DistributedError`, which names the
intact checkpoint to resume from.

For spreading other work (e.g. evaluation models) over the ranks: :func:`shard` and
:func:`gather_objects`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import torch
from torch import Tensor, nn

from .errors import CheckpointError, CondenseError, ConfigError

if TYPE_CHECKING:
    from .data import RealData
    from .interfaces import Encoder
    from .plan import Plan

T = TypeVar("T")

#: environment variable: seconds a collective may wait for the other ranks
TIMEOUT_ENV = "CONDENSE_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0

__all__ = [
    "DEFAULT_TIMEOUT_S", "ClassShard", "DistributedError", "SyncBatchNorm", "TIMEOUT_ENV",
    "abandon", "barrier", "convert_sync_batchnorm", "gather_objects", "init", "is_distributed", "is_main",
    "local_rank", "on_rank0", "rank", "rank0_first", "shard", "shard_classes", "shutdown",
    "world_size",
]


class DistributedError(CondenseError):
    """Joining the process group failed, or another rank failed or timed out."""


def _error_classes() -> dict[str, type[CondenseError]]:
    from . import errors

    found = {n: c for n, c in vars(errors).items()
             if isinstance(c, type) and issubclass(c, CondenseError)}
    return {**found, "DistributedError": DistributedError}


#: errors re-raised by name on every rank when rank 0 fails (sent as name + message, no pickle)
_CONDENSE_ERRORS = _error_classes()


# --------------------------------------------------------------------------------------------
# process group


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def is_distributed() -> bool:
    """Whether this process is one of several in an initialised process group."""
    dist = _dist()
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return int(_dist().get_world_size()) if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return int(_dist().get_rank()) if is_distributed() else 0


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK`` from torchrun; 0 outside)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that writes files and prints."""
    return rank() == 0


def _timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be positive, got {raw!r}")
    return value


def init(device: str | torch.device = "cpu", *, backend: str | None = None,
         timeout_s: float | None = None) -> torch.device:
    """Join the ``torchrun`` job described by the environment; return this rank's device.

    A no-op returning ``device`` unless ``WORLD_SIZE`` > 1 (so one-process runs need nothing).
    Backend: nccl for CUDA devices, gloo otherwise. A CUDA device without an index becomes
    ``cuda:LOCAL_RANK``. ``timeout_s`` (default ``$CONDENSE_DIST_TIMEOUT`` or 1800) bounds how
    long any collective waits for the other ranks.
    """
    dev = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1") or "1")
    if world <= 1:
        return dev
    dist = _dist()
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed; "
                               "run a single process or install a torch with distributed support")
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK {dev.index} has no GPU (this machine has "
                f"{torch.cuda.device_count()}); use torchrun --nproc_per_node "
                f"{torch.cuda.device_count()} or fewer")
        torch.cuda.set_device(dev)
    if dist.is_initialized():
        return dev
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world} but {', '.join(missing)} not set; start the "
                               f"processes with torchrun (see docs/distributed.md)")
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    timeout = datetime.timedelta(seconds=timeout_s if timeout_s is not None else _timeout_s())
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timeout}
    if backend == "nccl":
        kwargs["device_id"] = dev
    try:
        dist.init_process_group(**kwargs)
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"rank {os.environ.get('RANK')} of {world} could not join the process group at "
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} "
            f"({_first_line(exc)}); "
            f"check that every node uses the same --rdzv-endpoint/--master-addr and that the port "
            f"is reachable") from None
    return dev


def shutdown() -> None:
    """Leave the process group (if one was joined)."""
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def abandon(code: int) -> NoReturn:
    """Exit at once after a collective failure, skipping interpreter teardown.

    With a peer gone, the process group's background threads cannot be joined: a normal exit
    (or ``destroy_process_group``) can abort with ``terminate called without an active
    exception`` and a core-dump exit status, burying the real error. Output is flushed first.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# --------------------------------------------------------------------------------------------
# failures


def _first_line(exc: BaseException, limit: int = 240) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_collective_failure(exc: BaseException) -> bool:
    dist = _dist()
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    if not isinstance(exc, RuntimeError) or isinstance(exc, torch.OutOfMemoryError):
        return False
    text = str(exc)
    return any(s in text for s in ("gloo", "NCCL", "nccl", "Connection reset", "Connection closed",
                                   "Timed out", "timed out", "ProcessGroup", "Broken pipe"))


def _failure(exc: BaseException, what: str, note: str) -> DistributedError:
    return DistributedError(
        f"rank {rank()} of {world_size()}: {what} failed: another process stopped (its own error "
        f"is above) or did not answer within the timeout (${TIMEOUT_ENV}, "
        f"{_timeout_s():.0f} s) [{_first_line(exc)}]. {note}".rstrip()
    )


@contextlib.contextmanager
def _guard(what: str, note: str = "") -> Iterator[None]:
    """Turn a failed collective into :class:`DistributedError` (other errors pass through)."""
    try:
        yield
    except DistributedError:
        raise
    except Exception as exc:
        if _is_collective_failure(exc):
            raise _failure(exc, what, note) from exc
        raise


# --------------------------------------------------------------------------------------------
# generic helpers (also for evaluators)


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if is_distributed():
        with _guard("barrier"):
            _dist().barrier()


def shard(n_items: int, *, rank_: int | None = None, world: int | None = None) -> range:
    """This rank's contiguous share of ``range(n_items)`` (all of it in one process).

    Shares differ in size by at most one; rank order is item order, so concatenating the ranks'
    results (:func:`gather_objects`) gives the one-process order.
    """
    r = rank() if rank_ is None else rank_
    k = world_size() if world is None else world
    return range(r * n_items // k, (r + 1) * n_items // k)


def gather_objects(items: Sequence[T]) -> list[T]:
    """Concatenate every rank's ``items`` in rank order, on every rank (picklable objects)."""
    if not is_distributed():
        return list(items)
    parts: list[Any] = [None] * world_size()
    with _guard("gathering results"):
        _dist().all_gather_object(parts, list(items))
    return [x for part in parts for x in part]


def on_rank0(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and return its (picklable) result on every rank.

    If ``fn`` raises a :class:`CondenseError` on rank 0, every rank raises it (same type and
    message); other exceptions become :class:`DistributedError` on the other ranks.
    """
    if not is_distributed():
        return fn()
    box: list[Any] = [None]
    error: BaseException | None = None
    if is_main():
        try:
            box[0] = ("ok", fn())
        except Exception as exc:  # reported to every rank below
            error = exc
            box[0] = ("error", (type(exc).__name__, str(exc) if isinstance(exc, CondenseError)
                                else _first_line(exc)))
    with _guard("waiting for rank 0"):
        _dist().broadcast_object_list(box, src=0)
    status, value = box[0]
    if error is not None:
        raise error
    if status == "error":
        name, message = value
        cls = _CONDENSE_ERRORS.get(name)
        if cls is not None:
            raise cls(message)
        raise DistributedError(f"rank {rank()} of {world_size()}: rank 0 failed ({name}: "
                               f"{message})")
    return value  # type: ignore[no-any-return]


@contextlib.contextmanager
def rank0_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. downloads, cache writes), then the other ranks.

    If rank 0 fails inside the block, the other ranks raise instead of running it.
    """
    if not is_distributed():
        yield
        return
    if is_main():
        try:
            yield
        except Exception as exc:
            on_rank0(_raiser(exc))  # tells the others, then re-raises here
            raise
        on_rank0(lambda: None)
    else:
        on_rank0(lambda: None)
        yield


def _raiser(exc: Exception) -> Callable[[], None]:
    def fail() -> None:
        raise exc

    return fail


def _all_reduce_(t: Tensor, what: str, note: str = "", op: str = "sum") -> Tensor:
    dist = _dist()
    with _guard(what, note):
        dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.SUM)
    return t


# --------------------------------------------------------------------------------------------
# synchronised BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient (every rank calls backward)."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, note: str) -> Tensor:  # type: ignore[override]
        ctx.note = note
        return _all_reduce_(tensor.clone(memory_format=torch.contiguous_format),
                            "synchronising BatchNorm statistics", note)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return _all_reduce_(grad.clone(memory_format=torch.contiguous_format),
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


# --------------------------------------------------------------------------------------------
# class sharding for the distillation loop


def shard_classes(num_classes: int, world: int, chunk: int, coupled: bool) -> list[range]:
    """Contiguous class ranges, one per rank.

    Balanced ranges, except for a BatchNorm (``coupled``) encoder with ``0 < chunk <
    num_classes``: then each rank owns whole chunks (starting at multiples of ``chunk``), so
    every forward pass sees the same classes as in one process with that chunk size.
    """
    if world > num_classes:
        raise ConfigError(f"{world} processes for {num_classes} classes: every process needs a "
                          f"class; start at most {num_classes} processes")
    if coupled and 0 < chunk < num_classes:
        n_chunks = math.ceil(num_classes / chunk)
        if world > n_chunks:
            raise ConfigError(
                f"class_chunk={chunk} with a BatchNorm encoder gives {n_chunks} chunks of classes "
                f"for {world} processes (each process owns whole chunks); use a class_chunk of "
                f"at most {num_classes // world} or at most {n_chunks} processes")
        return [range(min(num_classes, s.start * chunk), min(num_classes, s.stop * chunk))
                for s in (shard(n_chunks, rank_=r, world=world) for r in range(world))]
    return [shard(num_classes, rank_=r, world=world) for r in range(world)]


@dataclasses.dataclass
class ClassShard:
    """This rank's part of a class-sharded distillation (made by :meth:`create`).

    ``plan`` is the plan to run with (``class_chunk`` resolved), ``classes`` the owned classes,
    ``sync_bn`` whether BatchNorm statistics are synchronised across ranks.
    """

    plan: Plan
    classes: range
    ipc: int
    sync_bn: bool
    note: str

    @classmethod
    def create(cls, plan: Plan, data: RealData, device: torch.device,
               checkpoint: str | Path | None = None) -> ClassShard:
        from .plan import resolve_class_chunk
        from .rng import keyed_generator

        world, me = world_size(), rank()
        num_classes = data.spec.num_classes
        note = (f"The last checkpoint {checkpoint} is intact: fix the cause and rerun the same "
                f"command with --resume." if checkpoint is not None else "")
        coupled = False
        if plan.method.needs_encoder:
            probe = plan.sampler.sample(data.spec, generator=keyed_generator(plan.seed, "probe"),
                                        device=device)
            coupled = has_batchnorm(probe)
        chunk = plan.loop.class_chunk
        if chunk == 0:  # auto: each rank estimates for its share; all agree on the smallest
            local = resolve_class_chunk(plan, data, device, math.ceil(num_classes / world))
            agreed = torch.tensor([local or num_classes], dtype=torch.int64, device=device)
            _all_reduce_(agreed, "agreeing on the class chunk", note, op="min")
            chunk = 0 if int(agreed) >= math.ceil(num_classes / world) else int(agreed)
        ranges = shard_classes(num_classes, world, chunk, coupled)
        run_plan = plan
        if chunk and chunk < num_classes:
            loop = dataclasses.replace(plan.loop, class_chunk=chunk)
            run_plan = dataclasses.replace(plan, loop=loop)
            if coupled and me == 0 and plan.loop.class_chunk == 0:
                warnings.warn(
                    f"class_chunk 0 (auto) resolved to {chunk} classes per pass with a BatchNorm "
                    f"encoder: batch statistics come from {chunk} classes instead of all; set "
                    f"--class-chunk explicitly or use more memory per process", stacklevel=3)
        sync = coupled and not (0 < chunk < num_classes)
        return cls(plan=run_plan, classes=ranges[me], ipc=plan.ipc, sync_bn=sync, note=note)

    @property
    def rows(self) -> slice:
        """This rank's rows of the class-major synthetic tensor."""
        return slice(self.classes.start * self.ipc, self.classes.stop * self.ipc)

    def prepare(self, encoder: Encoder) -> Encoder:
        """The iteration's encoder, with BatchNorm synchronised where statistics couple ranks."""
        if self.sync_bn:
            convert_sync_batchnorm(encoder, self.note)
        return encoder

    def reduce(self, value: Tensor) -> Tensor:
        """Sum of a (loss) tensor over the ranks."""
        return _all_reduce_(value.detach().clone(), "summing the loss", self.note)

    def gather(self, t: Tensor) -> Tensor:
        """The full class-major tensor: every rank contributes its own rows (exact copy)."""
        out = torch.zeros_like(t.detach())
        out[self.rows] = t.detach()[self.rows]
        return _all_reduce_(out, "gathering the synthetic images", self.note)

    def save_checkpoint(self, path: Path, plan: Plan, syn: Tensor,
                        optimizer: torch.optim.Optimizer, iteration: int) -> None:
        """Gather syn and the momentum buffer; rank 0 writes; every rank learns the outcome."""
        from .checkpoint import save_checkpoint

        full = self.gather(syn)
        buf = optimizer.state.get(syn, {}).get("momentum_buffer")
        full_buf = None if buf is None else self.gather(buf)

        def write() -> None:
            holder = full.clone().requires_grad_(True)
            shim = torch.optim.SGD([holder], lr=1.0)
            if full_buf is not None:
                shim.state[holder]["momentum_buffer"] = full_buf
            save_checkpoint(path, plan, holder, shim, iteration)

        on_rank0(write)

    def load_checkpoint(self, path: str | Path | None, plan: Plan, syn: Tensor,
                        optimizer: torch.optim.Optimizer) -> int:
        """Rank 0 reads the checkpoint; syn, momentum and iteration are broadcast to every rank."""
        from .checkpoint import load_checkpoint

        def read() -> tuple[int, bool]:
            if path is None or not Path(path).exists():
                raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
            start = load_checkpoint(Path(path), plan, syn, optimizer)
            return start, optimizer.state.get(syn, {}).get("momentum_buffer") is not None

        start, has_buf = on_rank0(read)
        dist = _dist()
        with _guard("broadcasting the checkpoint", self.note), torch.no_grad():
            dist.broadcast(syn.data, src=0)
            if has_buf:
                state = optimizer.state[syn]
                if not is_main():
                    state["momentum_buffer"] = torch.zeros_like(syn.detach())
                dist.broadcast(state["momentum_buffer"], src=0)
                # rows of other ranks' classes get no gradient here; they must not drift either
                owned = torch.zeros(syn.shape[0], dtype=torch.bool)
                owned[self.rows] = True
                state["momentum_buffer"][~owned.to(syn.device)] = 0
        return start
