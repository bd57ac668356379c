"""The one distillation loop shared by every method.

Each iteration: draw a fresh encoder (keyed by ``(seed, iteration)``), let the method compute
and back-propagate its loss (feature-matching methods push chunks of classes through one
forward pass), step the synthetic images with SGD. Every random draw is keyed by
``(seed, iteration, class, stream)``: chunk size, resume and sharding do not change it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import augment, distributed
from ._alloc import tune_allocator
from .checkpoint import load_checkpoint, save_checkpoint
from .data import RealData
from .errors import CheckpointError, ConfigError
from .interfaces import Encoder, Features, Method, ProgressEvent, ProgressFn
from .plan import Plan, resolve_class_chunk
from .rng import keyed_generator
from .synset import SynSet

#: auto micro-batch on the CPU: keep each activation of the no-grad real pass under this size.
#: Below glibc's largest mmap threshold (32 MiB) the buffers are reused from the heap instead of
#: being mapped and page-faulted afresh each call, and they stay warm in cache (DM at batch_real
#: 256: 2.4 -> 1.4 s per iteration on 2 cores; benchmarks/distill.py).
MICROBATCH_BYTES = 24 * 2**20


@dataclasses.dataclass
class DistillContext:
    """What a method sees in :meth:`Method.iteration`.

    ``syn`` is the learnable ``(C·ipc, ch, H, W)`` tensor in class-major order; ``classes`` are
    the classes this process owns (all of them unless sharded); ``encoder`` is this iteration's
    freshly drawn network (``None`` for methods with ``needs_encoder = False``).
    """

    plan: Plan
    data: RealData
    syn: Tensor
    device: torch.device
    classes: Sequence[int]
    iteration: int = 0
    encoder: Encoder | None = None
    dsa_strategy: str = "none"
    _auto_microbatch: int | None = dataclasses.field(default=None, repr=False)

    @property
    def ipc(self) -> int:
        return self.plan.ipc

    @property
    def seed(self) -> int:
        return self.plan.seed

    def generator(self, *keys: int | str) -> torch.Generator:
        """A CPU generator keyed by ``(seed, iteration, *keys)``."""
        return keyed_generator(self.seed, self.iteration, *keys)

    def chunks(self) -> Iterator[list[int]]:
        """The owned classes in chunks of ``loop.class_chunk`` (0 = one chunk)."""
        size = self.plan.loop.class_chunk or len(self.classes)
        for i in range(0, len(self.classes), size):
            yield list(self.classes[i : i + size])

    def batch_real(self) -> int:
        smallest = min(len(ix) for ix in self.data.class_index())
        return min(self.plan.loop.batch_real, smallest)

    def real_images(self, classes: Sequence[int], n: int | None = None) -> Tensor:
        """``n`` real images per class (without replacement), normalised, on the device."""
        n = n or self.batch_real()
        index = self.data.class_index()
        picks = [index[c][torch.randperm(len(index[c]), generator=self.generator(c, "real"))[:n]]
                 for c in classes]
        rows = torch.cat(picks).to(self.data.train.images.device, non_blocking=True)
        images = self.data.train.images.index_select(0, rows)
        return self.data.normalize(images.to(self.device, non_blocking=True))

    def syn_images(self, classes: Sequence[int]) -> Tensor:
        """The synthetic images of ``classes`` (a differentiable view of ``syn``)."""
        ipc = self.ipc
        if list(classes) == list(range(classes[0], classes[-1] + 1)):
            return self.syn[classes[0] * ipc : (classes[-1] + 1) * ipc]
        rows = torch.cat([torch.arange(c * ipc, (c + 1) * ipc) for c in classes]).to(self.device)
        return self.syn.index_select(0, rows)

    def augment_pair(self, real: Tensor, syn: Tensor, classes: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Siamese DSA: one parameter set per class, applied to its real and synthetic images."""
        if augment.parse_strategy(self.dsa_strategy) == ():
            return real, syn
        k = len(classes)
        per_class = augment.DSAParams.cat(
            [augment.sample_params(1, self.dsa_strategy, tuple(real.shape[-2:]),
                                   self.generator(c, "dsa")) for c in classes]
        )
        groups = torch.arange(k)
        rp = per_class.take(groups.repeat_interleave(real.shape[0] // k))
        sp = per_class.take(groups.repeat_interleave(syn.shape[0] // k))
        return augment.apply(real, rp), augment.apply(syn, sp)

    def encode(self, x: Tensor) -> Features:
        """Run this iteration's encoder with the loop's memory-format/autocast settings."""
        assert self.encoder is not None, "this method declared needs_encoder = False"
        loop = self.plan.loop
        if loop.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx: Any = contextlib.nullcontext()
        if loop.autocast == "bf16":
            ctx = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        with ctx:
            feats = self.encoder(x)
        if loop.autocast == "bf16":
            feats = Features(feats.embedding.float(), tuple(m.float() for m in feats.maps))
        return feats

    def encode_real(
        self, x: Tensor, summarize: Callable[[Features], Features] = lambda f: f
    ) -> Features:
        """``summarize(encode(x))`` without gradients, in micro-batches where that is exact.

        An encoder without BatchNorm (and without ``couples_batch``) treats every sample on its
        own, so the pass is split into ``loop.microbatch`` images per call (0 = auto: the whole
        pass on accelerators; on the CPU, as many images as keep each activation under
        :data:`MICROBATCH_BYTES`). ``summarize`` must be per-sample too; it runs on each piece so
        that large feature maps never exist for the whole pass.
        """
        with torch.no_grad():
            size = self._microbatch(x)
            if size >= x.shape[0]:
                return summarize(self.encode(x))
            return Features.cat([summarize(self.encode(part)) for part in x.split(size)])

    def _microbatch(self, x: Tensor) -> int:
        n = x.shape[0]
        encoder = self.encoder
        if encoder is None or getattr(encoder, "couples_batch", False) or \
                distributed.has_batchnorm(encoder):
            return n
        if self.plan.loop.microbatch:
            return self.plan.loop.microbatch
        if self.device.type != "cpu":
            return n
        if self._auto_microbatch is None:  # measured once per run on two images
            probe = self.encode(x[:2])
            per_image = max(t[0].numel() * t.element_size() for t in (probe.embedding, *probe.maps))
            self._auto_microbatch = max(1, MICROBATCH_BYTES // per_image)
        return self._auto_microbatch


class FeatureMatching(Method):
    """A method that matches statistics of encoder features of real and synthetic images.

    Implement :meth:`loss` only. The shared :meth:`iteration` pushes each chunk of classes through
    the encoder (real images without gradients, in micro-batches where the encoder allows it),
    applies :meth:`summarize` per sample, regroups per class and calls ``loss(real, syn)`` with
    ``Features`` whose tensors are ``(k, n, ...)`` and ``(k, ipc, ...)``. The loss must be a
    **sum over the k classes** so that chunking leaves the total unchanged.
    """

    def summarize(self, feats: Features) -> Features:
        """Reduce an encoder's features to what :meth:`loss` reads (default: everything).

        Called on real and synthetic features before grouping, possibly on micro-batches of the
        real images, so it must treat each sample on its own. Dropping unused ``maps`` (or
        reducing them, e.g. to attention maps) saves memory and time on large real batches.
        """
        return feats

    def iteration(self, ctx: DistillContext) -> Tensor:
        total = torch.zeros((), device=ctx.device)
        for chunk in ctx.chunks():
            k = len(chunk)
            real, syn = ctx.augment_pair(ctx.real_images(chunk), ctx.syn_images(chunk), chunk)
            real_f = ctx.encode_real(real, self.summarize).grouped(k)
            syn_f = self.summarize(ctx.encode(syn)).grouped(k)
            loss = self.loss(real_f, syn_f)
            loss.backward()
            total += loss.detach()
        return total

    def loss(self, real: Features, syn: Features) -> Tensor:  # noqa: D102 - documented on class
        raise NotImplementedError

    # ``loss`` is the one method subclasses implement; make it abstract for them.
    loss.__isabstractmethod__ = True  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """Emitted to ``callback`` every ``log_every`` iterations (and the last)."""

    iteration: int
    loss: float
    seconds: float


def initial_images(plan: Plan, data: RealData, device: torch.device) -> Tensor:
    """Class-major initial synthetic images: random real ones (keyed per class) or noise."""
    spec = data.spec
    parts = []
    index = data.class_index()
    for c in range(spec.num_classes):
        g = keyed_generator(plan.seed, "init", c)
        if plan.loop.init == "real":
            if len(index[c]) < plan.ipc:
                raise ConfigError(
                    f"IPC {plan.ipc} is larger than class {data.class_names[c]!r} "
                    f"({len(index[c])} training images); use --ipc {len(index[c])} or less"
                )
            rows = index[c][torch.randperm(len(index[c]), generator=g)[: plan.ipc]]
            parts.append(data.normalize(data.train.images[rows]))
        else:
            parts.append(torch.randn(plan.ipc, spec.channels, *spec.image_size, generator=g))
    return torch.cat(parts).to(device)


def distill(
    plan: Plan,
    data: RealData,
    *,
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    callback: Callable[[StepEvent], None] | None = None,
    evaluate: Callable[[SynSet, int], Any] | None = None,
    classes: Sequence[int] | None = None,
    stop_after: int | None = None,
) -> SynSet:
    """Run ``plan`` on ``data`` and return the distilled :class:`SynSet`.

    ``checkpoint``: path of the atomic checkpoint written every ``loop.checkpoint_every``
    iterations; with ``resume`` the run continues from it. ``evaluate(synset, iteration)`` is
    called every ``loop.eval_every`` iterations. ``classes`` restricts which classes this process
    updates (manual sharding); ``stop_after`` ends early after that many iterations (tests,
    preemption). ``loop.class_chunk`` 0 resolves to all classes unless they would not fit in
    memory (:func:`condense.plan.resolve_class_chunk`).

    In a process group of several ranks (``torchrun``, :func:`condense.distributed.init`) and
    without ``classes``, the classes are sharded over the ranks and the result equals one process
    up to floating-point reduction order; every rank gets the gathered set, rank 0 writes the
    checkpoints, and ``callback``/``progress``/``evaluate`` are called on every rank (guard side
    effects with :func:`condense.distributed.is_main`). See ``docs/distributed.md``.
    """
    tune_allocator()
    device = torch.device(device)
    spec = data.spec
    loop = plan.loop
    if loop.zca and data.zca is None:
        data.fit_zca(loop.zca_eps)
    method = plan.method
    owned = list(range(spec.num_classes)) if classes is None else list(classes)
    shard = None
    if classes is None and distributed.is_distributed():
        shard = distributed.ClassShard.create(plan, data, device, checkpoint)
        owned, run_plan = list(shard.classes), shard.plan
        if distributed.is_main():
            _warn_chunking(run_plan, range(spec.num_classes))
    else:
        chunk = resolve_class_chunk(plan, data, device, len(owned))
        run_plan = plan if chunk == loop.class_chunk else dataclasses.replace(
            plan, loop=dataclasses.replace(loop, class_chunk=chunk))
        _warn_chunking(run_plan, owned)
    dsa = data.source.dsa_strategy if loop.dsa_strategy == "auto" else loop.dsa_strategy
    augment.parse_strategy(dsa)

    init = method.initialize(plan, data)
    syn = (init if init is not None else initial_images(plan, data, device)).to(device)
    syn = syn.detach().clone().requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=loop.lr_img, momentum=loop.momentum)
    start = 0
    if resume and shard is not None:
        start = shard.load_checkpoint(checkpoint, plan, syn, optimizer)
    elif resume:
        if checkpoint is None or not Path(checkpoint).exists():
            raise CheckpointError(f"--resume: no checkpoint at {checkpoint}; start without --resume")
        start = load_checkpoint(Path(checkpoint), plan, syn, optimizer)

    ctx = DistillContext(plan=run_plan, data=data, syn=syn, device=device, classes=owned,
                         dsa_strategy=dsa)
    data.train = dataclasses.replace(data.train, images=data.train.images.to(device))
    end = loop.iterations if stop_after is None else min(loop.iterations, start + stop_after)
    save = save_checkpoint if shard is None else shard.save_checkpoint
    full: Callable[[Tensor], Tensor] = (lambda t: t) if shard is None else shard.gather
    t0 = time.perf_counter()
    last_loss = float("nan")
    for it in range(start, end):
        ctx.iteration = it
        if method.needs_encoder:
            ctx.encoder = plan.sampler.sample(spec, generator=keyed_generator(plan.seed, it, "encoder"),
                                              device=device)
            if loop.channels_last:  # NHWC kernels: ~1.6x faster on CPU (oneDNN), faster on cuDNN
                ctx.encoder.to(memory_format=torch.channels_last)
            if shard is not None:
                ctx.encoder = shard.prepare(ctx.encoder)
        optimizer.zero_grad(set_to_none=True)
        loss = method.iteration(ctx)
        optimizer.step()
        done = it + 1
        # ranks must agree on collectives, so a sharded run reads the loss on every rank
        wants_loss = shard is not None or callback is not None or progress is not None
        if wants_loss and (done % loop.log_every == 0 or done == end or done == start + 1):
            last_loss = float(loss if shard is None else shard.reduce(loss))  # the one sync
            if callback:
                callback(StepEvent(iteration=done, loss=last_loss,
                                   seconds=time.perf_counter() - t0))
        if progress:
            progress(ProgressEvent("distill", done, loop.iterations, {"loss": last_loss}))
        if checkpoint is not None and loop.checkpoint_every and done % loop.checkpoint_every == 0:
            save(Path(checkpoint), plan, syn, optimizer, done)
        if evaluate is not None and loop.eval_every and done % loop.eval_every == 0:
            evaluate(make_synset(plan, data, full(syn), done), done)
    if checkpoint is not None and end > start:
        save(Path(checkpoint), plan, syn, optimizer, end)
    return make_synset(plan, data, full(syn), end)


def _warn_chunking(plan: Plan, owned: Sequence[int]) -> None:
    chunk = plan.loop.class_chunk
    norm = plan.sampler.config.to_dict().get("norm")
    if norm == "batchnorm" and chunk and chunk < len(owned):
        warnings.warn(
            f"class_chunk={chunk} with a BatchNorm encoder: BatchNorm couples the classes of one "
            f"forward pass, so batch statistics now come from {chunk} classes instead of all; "
            f"results differ from the official all-classes pass (exact with instancenorm)",
            stacklevel=3,
        )


def make_synset(plan: Plan, data: RealData, syn: Tensor, iterations_done: int) -> SynSet:
    """Wrap the current synthetic tensor with its self-describing metadata."""
    from .provenance import synset_meta

    labels = torch.arange(data.spec.num_classes).repeat_interleave(plan.ipc)
    meta = synset_meta(plan, data, iterations_done)
    zca = data.zca
    return SynSet(
        images=syn.detach().to("cpu", torch.float32).clone(),
        labels=labels,
        meta=meta,
        zca_mean=None if zca is None else zca.mean,
        zca_transform=None if zca is None else zca.transform,
    )
