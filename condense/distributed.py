"""Process-group helpers: joining a ``torchrun`` job, ranks, collectives that fail clearly.

The class sharding of the distillation loop built on them is :mod:`condense.loop.sharding`;
the synchronised BatchNorm layer is :class:`condense.networks.SyncBatchNorm`. How a sharded
distillation computes the same result as one process:

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
  pass with those of all synthetic images, as in one process (and as in
  DataDistillation/DataDAM main_DataDAM.py); gradients flow through the all-reduce;
* BatchNorm encoders with ``class_chunk`` N: one process normalises each chunk of N classes
  with that chunk's statistics; the ranks then own whole chunks (aligned to multiples of N) and
  keep BatchNorm local, which is the same computation.

Rank 0 writes checkpoints and the artifact; ``--resume`` loads the checkpoint on rank 0 and
broadcasts it. A collective that fails (another rank died, or did not answer within the timeout,
``CONDENSE_DIST_TIMEOUT`` seconds, default 1800) raises :class:`DistributedError`, which names the
intact checkpoint to resume from.

For spreading other work (e.g. evaluation models) over the ranks: :func:`shard` and
:func:`gather_objects`; for running something once: :func:`on_rank0`, :func:`rank0_first`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import torch
from torch import Tensor

from . import errors
from .errors import CondenseError, ConfigError, DistributedError

T = TypeVar("T")

#: environment variable: seconds a collective may wait for the other ranks
TIMEOUT_ENV = "CONDENSE_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0

__all__ = [
    "DEFAULT_TIMEOUT_S", "DistributedError", "TIMEOUT_ENV", "abandon", "all_reduce_", "barrier",
    "gather_objects", "init", "is_distributed", "is_main", "local_rank", "on_rank0", "rank",
    "rank0_first", "shard", "shutdown", "world_size",
]


def _error_classes() -> dict[str, type[CondenseError]]:
    return {n: c for n, c in vars(errors).items()
            if isinstance(c, type) and issubclass(c, CondenseError)}


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
    """Leave the process group (if one was joined), once every rank has arrived here.

    The barrier keeps a rank from tearing its group down while a peer is still inside a
    collective; a process that exits with the group still alive can abort in teardown
    (``terminate called without an active exception``)."""
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            barrier()
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


def all_reduce_(t: Tensor, what: str, note: str = "", op: str = "sum") -> Tensor:
    """All-reduce ``t`` in place (sum, or ``op="min"``); a failed collective raises
    :class:`DistributedError` naming ``what`` failed, followed by ``note``."""
    dist = _dist()
    with _guard(what, note):
        dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.SUM)
    return t
