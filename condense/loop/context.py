"""The loop's implementation of the contract's :class:`~condense.StepContext`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from .. import augment
from ..interfaces import DataSpec, Encoder, EncoderSampler, Features, StepContext
from ..networks import has_batchnorm
from ..realdata import RealData
from ..rng import keyed_generator
from .settings import LoopConfig

#: auto micro-batch on the CPU: keep each activation of the no-grad real pass under this size.
#: Below glibc's largest mmap threshold (32 MiB) the buffers are reused from the heap instead of
#: being mapped and page-faulted afresh each call, and they stay warm in cache (DM at batch_real
#: 256: 2.4 -> 1.4 s per iteration on 2 cores; benchmarks/distill.py).
MICROBATCH_BYTES = 24 * 2**20


def _identity(f: Features) -> Features:
    return f


class LoopContext(StepContext):
    """What a method sees in ``iteration``: the run's data, images, encoder and settings.

    Built once per run by :func:`condense.loop.run`; ``begin(it)`` prepares each iteration and
    ``finish()`` steps the images unless the method already did (:meth:`step_images`).
    """

    def __init__(self, *, data: RealData, syn: Tensor, optimizer: torch.optim.Optimizer | None,
                 loop: LoopConfig, sampler: EncoderSampler, ipc: int, seed: int,
                 device: torch.device, classes: Sequence[int], dsa_strategy: str = "none",
                 prepare_encoder: Callable[[Encoder], Encoder] | None = None) -> None:
        self.data = data
        self._syn = syn
        self.optimizer = optimizer
        self.loop = loop
        self.sampler = sampler
        self._ipc, self._seed = ipc, seed
        self.device = device
        self.classes = list(classes)
        self.dsa_strategy = dsa_strategy
        self.iteration = 0
        self.encoder: Encoder | None = None
        self._prepare = prepare_encoder or (lambda e: e)
        self._stepped = False
        self._auto_microbatch: int | None = None

    @classmethod
    def for_plan(cls, plan: Any, data: RealData, syn: Tensor, *, device: torch.device | str = "cpu",
                 classes: Sequence[int] | None = None, iteration: int = 0,
                 dsa_strategy: str = "none", draw_encoder: bool = True) -> LoopContext:
        """A context outside the loop (tests, notebooks): ``plan``'s settings and sampler, no
        image optimiser, positioned at ``iteration`` with its encoder drawn."""
        ctx = cls(data=data, syn=syn, optimizer=None, loop=plan.loop, sampler=plan.sampler,
                  ipc=plan.ipc, seed=plan.seed, device=torch.device(device),
                  classes=range(data.spec.num_classes) if classes is None else classes,
                  dsa_strategy=dsa_strategy)
        ctx.begin(iteration, draw_encoder=draw_encoder)
        return ctx

    # -- driven by the loop ------------------------------------------------------------------

    def begin(self, iteration: int, *, draw_encoder: bool) -> None:
        """Start an iteration: zero the images' gradients, draw the encoder (keyed by it)."""
        self.iteration = iteration
        self._stepped = False
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        if draw_encoder:
            encoder = self.sampler.sample(self.spec, device=self.device,
                                          generator=keyed_generator(self._seed, iteration,
                                                                    "encoder"))
            if self.loop.channels_last:  # NHWC kernels: ~1.6x faster on CPU (oneDNN) and cuDNN
                encoder.to(memory_format=torch.channels_last)
            self.encoder = self._prepare(encoder)

    def finish(self) -> None:
        """End an iteration: one optimiser step unless the method stepped itself."""
        if not self._stepped and self.optimizer is not None:
            self.optimizer.step()

    # -- the contract ------------------------------------------------------------------------

    @property
    def ipc(self) -> int:
        return self._ipc

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def spec(self) -> DataSpec:
        return self.data.spec

    @property
    def syn(self) -> Tensor:
        return self._syn

    def generator(self, *keys: int | str) -> torch.Generator:
        return keyed_generator(self._seed, self.iteration, *keys)

    def chunks(self) -> Iterator[list[int]]:
        size = self.loop.class_chunk or len(self.classes)
        for i in range(0, len(self.classes), size):
            yield list(self.classes[i : i + size])

    def batch_real(self) -> int:
        smallest = min(len(ix) for ix in self.data.class_index())
        return min(self.loop.batch_real, smallest)

    def real_images(self, classes: Sequence[int], n: int | None = None,
                    *keys: int | str) -> Tensor:
        n = n or self.batch_real()
        index = self.data.class_index()
        picks = [index[c][torch.randperm(len(index[c]),
                                         generator=self.generator(c, "real", *keys))[:n]]
                 for c in classes]
        rows = torch.cat(picks).to(self.data.train.images.device, non_blocking=True)
        images = self.data.train.images.index_select(0, rows)
        return self.data.normalize(images.to(self.device, non_blocking=True))

    def syn_images(self, classes: Sequence[int]) -> Tensor:
        ipc = self._ipc
        if list(classes) == list(range(classes[0], classes[-1] + 1)):
            return self._syn[classes[0] * ipc : (classes[-1] + 1) * ipc]
        rows = torch.cat([torch.arange(c * ipc, (c + 1) * ipc) for c in classes]).to(self.device)
        return self._syn.index_select(0, rows)

    def labels(self, classes: Sequence[int], n: int) -> Tensor:
        return torch.tensor(list(classes), device=self.device).repeat_interleave(n)

    def augment_pair(self, real: Tensor, syn: Tensor, classes: Sequence[int],
                     *keys: int | str) -> tuple[Tensor, Tensor]:
        if augment.parse_strategy(self.dsa_strategy) == ():
            return real, syn
        k = len(classes)
        per_class = augment.DSAParams.cat(
            [augment.sample_params(1, self.dsa_strategy, tuple(real.shape[-2:]),
                                   self.generator(c, "dsa", *keys)) for c in classes]
        )
        groups = torch.arange(k)
        rp = per_class.take(groups.repeat_interleave(real.shape[0] // k))
        sp = per_class.take(groups.repeat_interleave(syn.shape[0] // k))
        return augment.apply(real, rp), augment.apply(syn, sp)

    def augment(self, x: Tensor, *keys: int | str) -> Tensor:
        if augment.parse_strategy(self.dsa_strategy) == ():
            return x
        params = augment.sample_params(x.shape[0], self.dsa_strategy, tuple(x.shape[-2:]),
                                       self.generator("augment", *keys))
        return augment.apply(x, params)

    def encode(self, x: Tensor, encoder: Encoder | None = None) -> Features:
        encoder = encoder if encoder is not None else self.encoder
        if encoder is None:
            raise RuntimeError("no encoder: the method declared needs_encoder = False; pass one")
        if self.loop.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx: Any = contextlib.nullcontext()
        if self.loop.autocast == "bf16":
            ctx = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        with ctx:
            feats = encoder(x)
        return feats.float() if self.loop.autocast == "bf16" else feats

    def encode_real(self, x: Tensor,
                    summarize: Callable[[Features], Features] | None = None) -> Features:
        summarize = summarize or _identity
        with torch.no_grad():
            size = self._microbatch(x)
            if size >= x.shape[0]:
                return summarize(self.encode(x))
            return Features.cat([summarize(self.encode(part)) for part in x.split(size)])

    def trainable_encoder(self, *keys: int | str) -> Encoder:
        encoder = self.sampler.sample_trainable(self.spec,
                                                generator=self.generator("trainable", *keys),
                                                device=self.device)
        if self.loop.channels_last:
            encoder.to(memory_format=torch.channels_last)
        return self._prepare(encoder)

    def step_images(self) -> None:
        if self.optimizer is None:
            raise RuntimeError("this context has no image optimiser")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._stepped = True

    # -- internals ---------------------------------------------------------------------------

    def _microbatch(self, x: Tensor) -> int:
        """Images per no-grad call: ``loop.microbatch``, or 0 = auto (the whole pass on
        accelerators; on the CPU as many images as keep each activation under
        :data:`MICROBATCH_BYTES`, measured once per run on two images). Never split an encoder
        whose samples are coupled (BatchNorm, ``couples_batch``)."""
        n = x.shape[0]
        encoder = self.encoder
        if encoder is None or getattr(encoder, "couples_batch", False) or has_batchnorm(encoder):
            return n
        if self.loop.microbatch:
            return self.loop.microbatch
        if self.device.type != "cpu":
            return n
        if self._auto_microbatch is None:
            probe = self.encode(x[:2])
            per_image = max(t[0].numel() * t.element_size() for t in (probe.embedding, *probe.maps))
            self._auto_microbatch = max(1, MICROBATCH_BYTES // per_image)
        return self._auto_microbatch
