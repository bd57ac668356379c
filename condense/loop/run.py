"""The one distillation loop shared by every method.

Each iteration: draw a fresh encoder (keyed by ``(seed, iteration)``), let the method compute
and back-propagate its loss (feature-matching methods push chunks of classes through one
forward pass), step the synthetic images with SGD. Every random draw is keyed by
``(seed, iteration, class, stream)``: chunk size, resume and sharding do not change it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import augment
from ..errors import CheckpointError, ConfigError, RunInterrupted
from ..interfaces import Method, ProgressEvent, ProgressFn
from ..realdata import RealData
from ..rng import keyed_generator
from ..synset import SynSet
from .checkpoint import check_resume_point, momentum_of
from .context import LoopContext
from .plan import Plan
from .provenance import synset_meta
from .sharding import create_shard


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """Emitted to ``callback`` every ``log_every`` iterations (and the last)."""

    iteration: int
    loss: float
    seconds: float


def run(
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
    stop: Callable[[], bool] | None = None,
) -> SynSet:
    """Run ``plan`` on ``data`` and return the distilled :class:`SynSet`.

    ``checkpoint``: path of the atomic checkpoint written every ``loop.checkpoint_every``
    iterations; with ``resume`` the run continues from it. ``evaluate(synset, iteration)`` is
    called every ``loop.eval_every`` iterations. ``classes`` restricts which classes this process
    updates (manual sharding); ``stop_after`` ends early after that many iterations (tests,
    preemption). ``stop()`` is asked after each iteration: when it answers true before the end,
    the run writes a checkpoint at that iteration (if it has a ``checkpoint`` path) and raises
    :class:`condense.RunInterrupted` (``--resume`` continues bitwise as if uninterrupted; a
    command line passes a flag set by Ctrl-C/SIGTERM); a sharded run of several processes does
    not ask it (the ranks could disagree on where to stop). ``loop.class_chunk`` 0 resolves to
    all classes unless they would not fit in memory
    (:func:`condense.loop.memory.resolve_class_chunk`). ``data`` and ``plan`` are left unchanged:
    the run works on its own copy of the data (ZCA fitted there, images on the device) and on a
    fresh method instance.

    In a process group of several ranks (``torchrun``, :func:`condense.distributed.init`) and
    without ``classes``, the classes are sharded over the ranks and the result equals one process
    up to floating-point reduction order; every rank gets the gathered set, rank 0 writes the
    checkpoints, and ``callback``/``progress``/``evaluate`` are called on every rank (guard side
    effects with :func:`condense.distributed.is_main`). See ``docs/distributed.md``.
    """
    device = torch.device(device)
    loop = plan.loop
    data = data.prepared(device, zca_eps=loop.zca_eps if loop.zca else None)
    shard = create_shard(plan, data, device, classes=classes, checkpoint=checkpoint)
    method: Method = type(plan.method)(plan.method.config)  # state lives for this run only
    dsa = data.source.dsa_strategy if loop.dsa_strategy == "auto" else loop.dsa_strategy
    augment.parse_strategy(dsa)

    init = method.initialize(data, ipc=plan.ipc, seed=plan.seed, sampler=plan.sampler)
    syn = (init if init is not None else initial_images(plan, data, device)).to(device)
    syn = syn.detach().clone().requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=loop.lr_img, momentum=loop.momentum)
    plan_dict = plan.to_dict()
    start = 0
    if resume:
        saved = shard.load(Path(checkpoint) if checkpoint is not None else None, plan_dict)
        check_resume_point(checkpoint, saved.iteration, loop.iterations)
        _restore(saved.tensors, syn, optimizer)
        method.load_state_dict(saved.method_state)
        start = saved.iteration

    ctx = LoopContext(data=data, syn=syn, optimizer=optimizer, loop=shard.plan.loop,
                      sampler=plan.sampler, ipc=plan.ipc, seed=plan.seed, device=device,
                      classes=shard.classes, dsa_strategy=dsa, prepare_encoder=shard.prepare)

    def save(iteration: int) -> None:
        tensors = {"syn": syn}
        buf = momentum_of(optimizer, syn)
        if buf is not None:
            tensors["momentum_buffer"] = buf
        shard.save(Path(checkpoint), plan_dict, iteration, tensors,  # type: ignore[arg-type]
                   method.state_dict())

    def result(iteration: int) -> SynSet:
        return make_synset(plan, data, shard.gather(syn), iteration, method,
                           passes=shard.passes)

    end = loop.iterations if stop_after is None else min(loop.iterations, start + stop_after)
    t0 = time.perf_counter()
    last_loss = float("nan")
    for it in range(start, end):
        ctx.begin(it, draw_encoder=method.needs_encoder)
        loss = method.iteration(ctx)
        ctx.finish()
        done = it + 1
        # ranks must agree on collectives, so a sharded run reads the loss on every rank
        wants_loss = shard.collective or callback is not None or progress is not None
        if wants_loss and (done % loop.log_every == 0 or done == end or done == start + 1):
            last_loss = float(shard.reduce(loss))  # the one host sync
            if callback:
                callback(StepEvent(iteration=done, loss=last_loss,
                                   seconds=time.perf_counter() - t0))
        if progress:
            progress(ProgressEvent("distill", done, loop.iterations, {"loss": last_loss}))
        if checkpoint is not None and loop.checkpoint_every and done % loop.checkpoint_every == 0:
            save(done)
        if evaluate is not None and loop.eval_every and done % loop.eval_every == 0:
            evaluate(result(done), done)
        if stop is not None and not shard.collective and done < end and stop():
            _interrupt(done, loop.iterations, checkpoint, save)
    if checkpoint is not None and end > start:
        save(end)
    return result(end)


def _interrupt(done: int, total: int, checkpoint: str | Path | None,
               save: Callable[[int], None]) -> None:
    if checkpoint is None:
        raise RunInterrupted(f"stopped at iteration {done} of {total} (no checkpoint path: "
                             f"nothing to resume from)", iteration=done, checkpoint=None)
    save(done)
    raise RunInterrupted(f"stopped at iteration {done} of {total}; checkpoint written to "
                         f"{checkpoint}", iteration=done, checkpoint=str(checkpoint))


def _restore(tensors: dict[str, Tensor], syn: Tensor, optimizer: torch.optim.Optimizer) -> None:
    saved = tensors["syn"]
    if saved.shape != syn.shape:
        raise CheckpointError(f"checkpoint: synthetic set shape {tuple(saved.shape)} differs from "
                          f"this run's {tuple(syn.shape)}")
    with torch.no_grad():
        syn.copy_(saved)
    if "momentum_buffer" in tensors:
        optimizer.state[syn]["momentum_buffer"] = tensors["momentum_buffer"].to(syn.device).clone()


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
            images = data.train.images
            parts.append(data.normalize(images[rows.to(images.device)]).to(device))
        else:
            parts.append(torch.randn(plan.ipc, spec.channels, *spec.image_size,
                                     generator=g).to(device))
    return torch.cat(parts)


def make_synset(plan: Plan, data: RealData, syn: Tensor, iterations_done: int,
                method: Method | None = None, *,
                passes: Mapping[str, Any] | None = None) -> SynSet:
    """Wrap the current synthetic tensor with its self-describing metadata (and the method's
    learned tensors that the artifact has a slot for: ``syn_lr``, ``soft_labels``). ``passes``
    (the class chunk used and where BatchNorm statistics came from) is recorded as
    ``meta["passes"]``."""
    labels = torch.arange(data.spec.num_classes).repeat_interleave(plan.ipc)
    meta = synset_meta(plan, data, iterations_done)
    if passes:
        meta["passes"] = dict(passes)
    extras = {k: v.detach().to("cpu", torch.float32).clone()
              for k, v in (method.artifact_tensors() if method is not None else {}).items()}
    unknown = set(extras) - {"syn_lr", "soft_labels"}
    if unknown:
        raise ConfigError(f"method {type(method).__name__}.artifact_tensors() returned "
                          f"{sorted(unknown)}; the artifact has slots for syn_lr and soft_labels")
    if "soft_labels" in extras:
        meta["label_type"] = "soft"
    zca = data.zca
    return SynSet(
        images=syn.detach().to("cpu", torch.float32).clone(),
        labels=labels,
        meta=meta,
        soft_labels=extras.get("soft_labels"),
        syn_lr=extras.get("syn_lr"),
        zca_mean=None if zca is None else zca.mean,
        zca_transform=None if zca is None else zca.transform,
    )
