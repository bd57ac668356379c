"""A run resolved but not distilled: ``condense run … --dry-run`` and :func:`condense.dry_run`.

What a run would do — method, preset, sampler and loop settings, the dataset's shape, the
device, the class chunk and whether it changes what BatchNorm computes, the memory one iteration
needs — without running it; with ``probe`` iterations, also measured seconds per iteration.
Nothing is written: no artifact, no checkpoint, no decoded-image cache entry, no download
(docs/getting-started.md, "Dry runs").
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from .api import plan_run
from .datasets.cache import no_writes
from .devices import resolve_device
from .loop import Plan, StepEvent, run
from .loop.memory import available_bytes, estimate_class_bytes, resolve_class_chunk
from .loop.sharding import couples_classes
from .realdata import RealData

__all__ = ["DryRun", "Probe", "describe_run", "dry_run"]

#: float32 tensors the loop keeps per synthetic image: the images, their gradient, SGD momentum
SYN_COPIES = 3


@dataclasses.dataclass(frozen=True)
class Probe:
    """Iterations actually run (``dry_run(..., probe=N)``)."""

    iterations: int  #: iterations run (0 for a method without iterations: the whole run)
    seconds: tuple[float, ...]  #: wall seconds of each; the first includes the set-up
    seconds_per_iteration: float | None  #: the last iteration (warm); None without iterations
    estimated_seconds: float  #: the whole run: set-up + ``seconds_per_iteration`` × iterations
    peak_bytes: int | None  #: CUDA: peak allocated memory of the process; None on the CPU


@dataclasses.dataclass(frozen=True)
class DryRun:
    """Everything a run would use, resolved (:func:`dry_run`). Byte counts are estimates."""

    plan: dict[str, Any]  #: the resolved plan (``Plan.to_dict()``: method, sampler, loop configs)
    method: str
    preset: str | None
    sampler: str
    dataset: str
    image_shape: tuple[int, int, int]  #: channels, height, width
    num_classes: int
    train_images: int
    ipc: int
    iterations: int
    seed: int
    device: str
    needs_encoder: bool  #: whether the method uses the loop's encoder pass (and the class chunk)
    batchnorm: bool  #: the encoder couples the images of one forward pass (BatchNorm)
    class_chunk: int  #: classes per forward pass (``num_classes``: all in one pass)
    chunk_auto: bool  #: chosen by the automatic rule (``class_chunk`` 0), not by the user
    chunk_changes_batchnorm: bool  #: BatchNorm statistics would come from a chunk, not all classes
    class_bytes: int | None  #: activation bytes one class adds to a pass (None: no encoder pass)
    activation_bytes: int | None  #: ``class_bytes`` × classes per pass
    data_bytes: int  #: the training images on the device (uint8)
    synthetic_bytes: int  #: the synthetic images, their gradient and momentum (float32)
    available_bytes: int  #: what the automatic rule may fill (0: unknown)
    load_seconds: float  #: reading (or decoding) the training split
    artifact: str | None = None  #: where ``condense run`` would write (set by the caller)
    probe: Probe | None = None

    @property
    def iteration_bytes(self) -> int:
        """Memory one iteration needs: the activations of one pass, the data, the synthetic set."""
        return (self.activation_bytes or 0) + self.data_bytes + self.synthetic_bytes

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["iteration_bytes"] = self.iteration_bytes
        return out


def dry_run(
    method: str,
    *,
    dataset: str | RealData,
    ipc: int,
    iterations: int | None = None,
    seed: int = 0,
    preset: str | None = None,
    settings: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    dataset_config: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    probe: int = 0,
) -> DryRun:
    """Resolve a run as :func:`condense.distill` would, without distilling.

    Loads the training split (never downloads, never writes the decoded-image cache), resolves
    the plan and the class chunk on ``device``; with ``probe`` > 0 runs that many iterations (no
    checkpoint, nothing kept) and estimates the time of the whole run. Errors are those of the
    real run (an unknown setting, a missing dataset ...).
    """
    dev = resolve_device(device)
    t0 = time.perf_counter()
    with no_writes():
        plan, data = plan_run(method, dataset=dataset, ipc=ipc, iterations=iterations, seed=seed,
                              preset=preset, settings=settings, data_dir=data_dir,
                              download=False, dataset_config=dataset_config)
        data.class_index()
    return describe_run(plan, data, dev, probe=probe, load_seconds=time.perf_counter() - t0)


def describe_run(plan: Plan, data: RealData, device: str | torch.device, *, probe: int = 0,
                 load_seconds: float = 0.0) -> DryRun:
    """:class:`DryRun` of ``plan`` on loaded ``data`` (see :func:`dry_run`)."""
    dev = torch.device(device)
    spec = data.spec
    n = spec.num_classes
    needs_encoder = plan.method.needs_encoder
    chunk = resolve_class_chunk(plan, data, dev, n)
    per_pass = chunk if 0 < chunk < n else n
    coupled = couples_classes(plan, data, dev)
    class_bytes = estimate_class_bytes(plan, data, dev) if needs_encoder else None
    pixels = spec.channels * spec.image_size[0] * spec.image_size[1]
    result = DryRun(
        plan=plan.to_dict(),
        method=type(plan.method).name,
        preset=plan.preset,
        sampler=type(plan.sampler).name,
        dataset=data.name,
        image_shape=(spec.channels, *spec.image_size),
        num_classes=n,
        train_images=int(data.train.images.shape[0]),
        ipc=plan.ipc,
        iterations=plan.loop.iterations,
        seed=plan.seed,
        device=str(dev),
        needs_encoder=needs_encoder,
        batchnorm=coupled,
        class_chunk=per_pass,
        chunk_auto=plan.loop.class_chunk == 0,
        chunk_changes_batchnorm=chunk_changes_batchnorm(coupled, per_pass, n),
        class_bytes=class_bytes,
        activation_bytes=None if class_bytes is None else class_bytes * per_pass,
        data_bytes=data.train.images.numel() * data.train.images.element_size(),
        synthetic_bytes=SYN_COPIES * 4 * n * plan.ipc * pixels,
        available_bytes=available_bytes(dev),
        load_seconds=load_seconds,
    )
    if probe > 0:
        result = dataclasses.replace(result, probe=probe_run(plan, data, dev, probe))
    return result


def chunk_changes_batchnorm(batchnorm: bool, per_pass: int, num_classes: int) -> bool:
    """Whether running ``per_pass`` classes per forward pass changes what the encoder computes:
    BatchNorm's batch statistics then come from a chunk instead of all classes
    (docs/distributed.md)."""
    return batchnorm and per_pass < num_classes


def probe_run(plan: Plan, data: RealData, device: torch.device, iterations: int) -> Probe:
    """Run ``iterations`` iterations of ``plan`` (nothing written) and time them."""
    stamps: list[float] = []

    def tick(event: StepEvent) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())

    timed = plan.with_loop(log_every=1, checkpoint_every=0, eval_every=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # the chunk's BatchNorm warning is a field of DryRun
        warnings.simplefilter("ignore")
        run(timed, data, device=device, callback=tick, stop_after=iterations)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    total = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    if not stamps:  # no iterations (random, herding): the set-up is the whole run
        return Probe(0, (total,), None, total, peak)
    seconds = tuple(b - a for a, b in zip([t0, *stamps[:-1]], stamps, strict=True))
    per_it = seconds[-1]
    setup = max(0.0, seconds[0] - per_it)
    return Probe(len(seconds), seconds, per_it, setup + per_it * plan.loop.iterations, peak)
