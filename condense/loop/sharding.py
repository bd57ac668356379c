"""Which classes this process updates, and how its results meet the other processes'.

One interface, two implementations: :class:`LocalShard` (one process: every class, or the
``classes`` a caller asked for) and :class:`ClassShard` (a ``torchrun`` process group: the
classes are split into contiguous ranges over the ranks). Every rank draws the same encoder each
iteration and every per-class draw is keyed by ``(seed, iteration, class)``, so the gathered
synthetic set equals one process with the same seed up to floating-point reduction order; the
rules for BatchNorm encoders are in docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..distributed import all_reduce_, on_rank0, rank, shard, world_size
from ..errors import CheckpointError, ConfigError
from ..interfaces import Encoder
from ..networks import convert_sync_batchnorm, has_batchnorm
from ..realdata import RealData
from ..rng import keyed_generator
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .memory import resolve_class_chunk
from .plan import Plan

#: checkpoint tensors that are class-major like the synthetic set (gathered over the ranks)
CLASS_MAJOR = ("syn", "momentum_buffer")


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


def couples_classes(plan: Plan, data: RealData, device: torch.device) -> bool:
    """Whether the plan's encoder couples the samples of a pass (BatchNorm, ``couples_batch``)."""
    if not plan.method.needs_encoder:
        return False
    probe = plan.sampler.sample(data.spec, generator=keyed_generator(plan.seed, "probe"),
                                device=device)
    return has_batchnorm(probe) or bool(getattr(probe, "couples_batch", False))


def warn_if_chunk_changes_statistics(chunk: int, n_classes: int, *, auto: bool) -> None:
    """The one warning for a BatchNorm encoder whose classes go through several passes."""
    how = (f"class_chunk 0 (auto) resolved to {chunk} classes per pass to fit in memory; set "
           f"class_chunk explicitly or use more memory per process. " if auto else "")
    warnings.warn(
        f"{how}class_chunk={chunk} with a BatchNorm encoder: BatchNorm couples the classes of one "
        f"forward pass, so batch statistics now come from {chunk} classes instead of "
        f"{n_classes}, unlike the official all-classes pass; this changes the image gradients "
        f"(measured in docs/methods.md, 'BatchNorm and class chunks') and the artifact records "
        f"it (meta['passes']). Chunking is exact with --set sampler.norm=instancenorm",
        stacklevel=4)


def passes_meta(chunk: int, coupled: bool, all_classes: bool, *, processes: int) -> dict[str, Any]:
    """The artifact's ``passes`` record: the class chunk the run used (0 = all classes of a
    process in one pass), whether BatchNorm statistics came from all classes or from each
    chunk (``None``: the encoder couples no samples), and the number of processes."""
    stats = None if not coupled else ("all-classes" if all_classes else "per-chunk")
    return {"class_chunk": chunk, "batchnorm_statistics": stats, "processes": processes}


@dataclasses.dataclass
class LocalShard:
    """One process: it owns ``classes`` and nothing is communicated."""

    plan: Plan
    classes: Sequence[int]
    #: what the artifact records about the forward passes (:func:`passes_meta`)
    passes: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: whether the loop must call :meth:`reduce` on every process (collectives)
    collective: bool = dataclasses.field(default=False, init=False)

    @classmethod
    def create(cls, plan: Plan, data: RealData, device: torch.device,
               classes: Sequence[int] | None = None) -> LocalShard:
        num_classes = data.spec.num_classes
        owned = list(range(num_classes)) if classes is None else list(classes)
        chunk = resolve_class_chunk(plan, data, device, len(owned))
        coupled = couples_classes(plan, data, device)
        if 0 < chunk < len(owned) and coupled:
            warn_if_chunk_changes_statistics(chunk, len(owned), auto=plan.loop.class_chunk == 0)
        run_plan = plan if chunk == plan.loop.class_chunk else plan.with_loop(class_chunk=chunk)
        together = chunk if 0 < chunk < len(owned) else len(owned)  # classes per statistics
        return cls(plan=run_plan, classes=owned,
                   passes=passes_meta(chunk, coupled, together == num_classes, processes=1))

    def prepare(self, encoder: Encoder) -> Encoder:
        """The iteration's encoder with condense's BatchNorm (the arithmetic of K processes)."""
        return convert_sync_batchnorm(encoder, synchronise=False)

    def reduce(self, value: Tensor) -> Tensor:
        return value

    def gather(self, t: Tensor) -> Tensor:
        return t

    def save(self, path: Path, plan: Mapping[str, Any], iteration: int,
             tensors: Mapping[str, Tensor], method_state: Mapping[str, Any]) -> None:
        save_checkpoint(path, plan, iteration, tensors, method_state)

    def load(self, path: Path | None, plan: Mapping[str, Any]) -> Checkpoint:
        if path is None or not Path(path).exists():
            raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
        return load_checkpoint(Path(path), plan)


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
    #: what the artifact records about the forward passes (:func:`passes_meta`)
    passes: dict[str, Any] = dataclasses.field(default_factory=dict)
    collective: bool = dataclasses.field(default=True, init=False)

    @classmethod
    def create(cls, plan: Plan, data: RealData, device: torch.device,
               checkpoint: str | Path | None = None) -> ClassShard:
        world, me = world_size(), rank()
        num_classes = data.spec.num_classes
        note = (f"The last checkpoint {checkpoint} is intact: fix the cause and rerun the same "
                f"command with --resume." if checkpoint is not None else "")
        coupled = couples_classes(plan, data, device)
        chunk = plan.loop.class_chunk
        if chunk == 0:  # auto: each rank estimates for its share; all agree on the smallest
            local = resolve_class_chunk(plan, data, device, math.ceil(num_classes / world))
            agreed = torch.tensor([local or num_classes], dtype=torch.int64, device=device)
            all_reduce_(agreed, "agreeing on the class chunk", note, op="min")
            chunk = 0 if int(agreed) >= math.ceil(num_classes / world) else int(agreed)
        ranges = shard_classes(num_classes, world, chunk, coupled)
        if coupled and me == 0 and 0 < chunk < num_classes:
            warn_if_chunk_changes_statistics(chunk, num_classes, auto=plan.loop.class_chunk == 0)
        run_plan = plan if chunk == plan.loop.class_chunk else plan.with_loop(class_chunk=chunk)
        sync = coupled and not (0 < chunk < num_classes)
        return cls(plan=run_plan, classes=ranges[me], ipc=plan.ipc, sync_bn=sync, note=note,
                   passes=passes_meta(chunk, coupled, not (0 < chunk < num_classes),
                                      processes=world))

    @property
    def rows(self) -> slice:
        """This rank's rows of the class-major synthetic tensor."""
        return slice(self.classes.start * self.ipc, self.classes.stop * self.ipc)

    def prepare(self, encoder: Encoder) -> Encoder:
        """The iteration's encoder with condense's BatchNorm, synchronised where statistics couple
        ranks (the same arithmetic as one process either way)."""
        return convert_sync_batchnorm(encoder, self.note, synchronise=self.sync_bn)

    def reduce(self, value: Tensor) -> Tensor:
        """Sum of a (loss) tensor over the ranks."""
        return all_reduce_(value.detach().clone(), "summing the loss", self.note)

    def gather(self, t: Tensor) -> Tensor:
        """The full class-major tensor: every rank contributes its own rows (exact copy)."""
        out = torch.zeros_like(t.detach())
        out[self.rows] = t.detach()[self.rows]
        return all_reduce_(out, "gathering the synthetic images", self.note)

    def save(self, path: Path, plan: Mapping[str, Any], iteration: int,
             tensors: Mapping[str, Tensor], method_state: Mapping[str, Any]) -> None:
        """Gather the class-major tensors; rank 0 writes (with its method state); every rank
        learns the outcome."""
        full = {k: self.gather(t) if k in CLASS_MAJOR else t for k, t in tensors.items()}
        on_rank0(lambda: save_checkpoint(path, plan, iteration, full, method_state))

    def load(self, path: Path | None, plan: Mapping[str, Any]) -> Checkpoint:
        """Rank 0 reads the checkpoint; its contents are sent to every rank. Rows of the other
        ranks' classes get no gradient here, so their momentum is zeroed (they must not drift).
        The contents travel with :func:`condense.distributed.on_rank0`'s broadcast."""

        def read() -> Checkpoint:
            if path is None or not Path(path).exists():
                raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
            return load_checkpoint(Path(path), plan)

        state = on_rank0(read)
        tensors = dict(state.tensors)
        if "momentum_buffer" in tensors:
            owned = torch.zeros(tensors["momentum_buffer"].shape[0], dtype=torch.bool)
            owned[self.rows] = True
            tensors["momentum_buffer"][~owned] = 0
        return dataclasses.replace(state, tensors=tensors)


def create_shard(plan: Plan, data: RealData, device: torch.device, *,
                 classes: Sequence[int] | None,
                 checkpoint: str | Path | None) -> LocalShard | ClassShard:
    """The shard for this process: class-sharded inside a process group (unless ``classes`` is
    given), local otherwise. A method that is not ``class_shardable`` refuses a class subset."""
    method = plan.method
    subset = (world_size() > 1 if classes is None
              else sorted(classes) != list(range(data.spec.num_classes)))
    if subset and not method.class_shardable:
        raise ConfigError(
            f"{method.name} cannot run on a subset of the classes (it needs the whole synthetic "
            f"set in every step): run it in one process"
            + (" without torchrun" if classes is None else " without classes="))
    if classes is None and world_size() > 1:
        return ClassShard.create(plan, data, device, checkpoint)
    return LocalShard.create(plan, data, device, classes)


__all__ = ["ClassShard", "LocalShard", "create_shard", "passes_meta", "shard_classes"]
