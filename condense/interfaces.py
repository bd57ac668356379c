"""The plugin contract: every type a plugin implements or receives, and nothing of the loop.

* :class:`Method` — how synthetic images are learned; :class:`FeatureMatching` is the base of
  the feature-matching family (implement ``loss`` only).
* :class:`StepContext` — everything a method may use inside ``iteration``; the loop implements it.
* :class:`EncoderSampler` — draws the networks methods look through (:class:`Encoder`).
* :class:`Evaluator` — judges a distilled set.
* :class:`DatasetSource` (defined with the real data it reads, re-exported here).

Each component has a ``name`` class attribute (the id users type), a nested frozen ``Config``
dataclass (defaults + validation), and one abstract method. Importing this module imports
nothing of the distillation loop: see ``docs/architecture.md`` for the layers.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .config import Component
from .realdata import DatasetSource, DataSpec, RawSplit, RealData
from .synset import SynSet

__all__ = [
    "DataSpec", "DatasetSource", "Encoder", "EncoderSampler", "EvalResult", "Evaluator",
    "FeatureMatching", "Features", "Method", "ProgressEvent", "ProgressFn", "RawSplit",
    "StepContext",
]


@dataclasses.dataclass(frozen=True)
class Features:
    """What an encoder returns.

    ``embedding`` is the flattened last-layer output, ``(B, D)``; ``maps`` holds the activation
    output of every block, ``(B, C_l, H_l, W_l)``, first block first; ``logits`` the output of
    the encoder's classifier head ``(B, num_classes)`` where it has one (gradient matching trains
    and differentiates through it). The shared loop regroups them per class to ``(k, n, ...)``
    before handing them to :meth:`FeatureMatching.loss`.
    """

    embedding: Tensor
    maps: tuple[Tensor, ...] = ()
    logits: Tensor | None = None

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Features:
        return Features(fn(self.embedding), tuple(fn(m) for m in self.maps),
                        None if self.logits is None else fn(self.logits))

    def grouped(self, k: int) -> Features:
        """Reshape the batch axis ``(k*n, ...)`` to ``(k, n, ...)`` (classes contiguous)."""
        return self._map(lambda t: t.reshape(k, -1, *t.shape[1:]))

    def float(self) -> Features:
        """Every tensor as float32 (after a bf16 autocast pass)."""
        return self._map(lambda t: t.float())

    @staticmethod
    def cat(parts: Sequence[Features]) -> Features:
        """Concatenate the features of consecutive batches along the batch axis."""
        if len(parts) == 1:
            return parts[0]
        logits = [p.logits for p in parts]
        return Features(
            torch.cat([p.embedding for p in parts]),
            tuple(torch.cat(ms) for ms in zip(*(p.maps for p in parts), strict=True)),
            None if any(t is None for t in logits) else torch.cat(logits),  # type: ignore[arg-type]
        )


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """A unit of long work advanced; the CLI renders these as rich progress bars."""

    task: str
    completed: int
    total: int
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)


ProgressFn = Callable[[ProgressEvent], None]


class Encoder(nn.Module):
    """A network whose ``forward(x)`` returns :class:`Features`.

    The loop may split a no-grad pass into micro-batches when the encoder's output for a sample
    does not depend on the other samples of the pass. BatchNorm layers are detected; an encoder
    that couples samples in another way must set ``couples_batch = True``.
    """

    #: whether a sample's features depend on the rest of the batch (besides BatchNorm layers)
    couples_batch: bool = False

    def forward(self, x: Tensor) -> Features:  # pragma: no cover - interface
        raise NotImplementedError


class EncoderSampler(Component):
    """Draws a freshly initialised (never trained) network each iteration.

    The settings a sampler accepts are the fields of its ``Config``; a method's
    ``sampler_defaults`` apply only to the fields the chosen sampler declares (the ConvNet
    sampler's are ``width``, ``depth``, ``norm``, ``act``, ``pool``), so any sampler works with
    any method.
    """

    @abstractmethod
    def sample(
        self, spec: DataSpec, *, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> Encoder:
        """Return an encoder with a fresh random initialisation drawn from ``generator``.

        Parameters must not require grad. The encoder is in ``train()`` mode (the official
        DM/DataDAM semantics: BatchNorm uses batch statistics). An implementation may return the
        same module re-initialised in place (cheaper, and keeps compiled graphs valid).
        """

    def sample_trainable(
        self, spec: DataSpec, *, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> Encoder:
        """A new encoder the caller owns and may train: parameters require grad, and it is never
        re-initialised under the caller. Default: a deep copy of :meth:`sample`'s encoder."""
        encoder = copy.deepcopy(self.sample(spec, generator=generator, device=device))
        return encoder.requires_grad_(True).train()


class StepContext(ABC):
    """What a method sees in :meth:`Method.iteration` (the loop provides the implementation).

    Randomness: every draw must come from :meth:`generator`, keyed by ``(seed, iteration,
    *keys)``, so that class chunks, resume and sharding over processes never change a result.
    Images: the synthetic set is class-major (``ipc`` rows per class); :meth:`real_images` and
    :meth:`syn_images` return normalised tensors on :attr:`device`.
    """

    #: the 0-based iteration being run
    iteration: int
    #: the device the images live on
    device: torch.device
    #: the classes this process updates (all of them unless the run is sharded)
    classes: Sequence[int]
    #: this iteration's freshly drawn encoder (``None`` when ``needs_encoder`` is false)
    encoder: Encoder | None
    #: the run's DSA strategy (ops joined by ``_``, or ``"none"``: augmentation is the identity)
    dsa_strategy: str

    @property
    @abstractmethod
    def ipc(self) -> int:
        """Synthetic images per class."""

    @property
    @abstractmethod
    def seed(self) -> int:
        """The run's seed."""

    @property
    @abstractmethod
    def spec(self) -> DataSpec:
        """Channels, image size and number of classes."""

    @property
    @abstractmethod
    def syn(self) -> Tensor:
        """The whole learnable synthetic tensor ``(C·ipc, ch, H, W)``, class-major."""

    @abstractmethod
    def generator(self, *keys: int | str) -> torch.Generator:
        """A CPU generator keyed by ``(seed, iteration, *keys)``."""

    @abstractmethod
    def chunks(self) -> Iterator[list[int]]:
        """The owned classes in chunks of the loop's ``class_chunk`` (one chunk by default)."""

    @abstractmethod
    def batch_real(self) -> int:
        """Real images per class per step (``batch_real``, capped by the smallest class)."""

    @abstractmethod
    def real_images(self, classes: Sequence[int], n: int | None = None,
                    *keys: int | str) -> Tensor:
        """``n`` (default :meth:`batch_real`) real images per class, drawn without replacement
        from ``generator(class, "real", *keys)``, normalised, class-major, on the device. Extra
        ``keys`` give further independent batches in one iteration (e.g. one per outer step)."""

    @abstractmethod
    def syn_images(self, classes: Sequence[int]) -> Tensor:
        """The synthetic images of ``classes`` (a differentiable view of :attr:`syn`)."""

    @abstractmethod
    def labels(self, classes: Sequence[int], n: int) -> Tensor:
        """Class-major labels ``(len(classes)·n,)`` on the device, for ``n`` images per class."""

    @abstractmethod
    def augment_pair(self, real: Tensor, syn: Tensor, classes: Sequence[int],
                     *keys: int | str) -> tuple[Tensor, Tensor]:
        """Siamese DSA: one parameter set per class, drawn from ``generator(class, "dsa",
        *keys)``, applied to the class's real and synthetic images alike. The identity when the
        run's ``dsa_strategy`` is ``none``."""

    @abstractmethod
    def augment(self, x: Tensor, *keys: int | str) -> Tensor:
        """DSA with one parameter set per image, drawn from ``generator(*keys)`` (e.g. to train
        a network on the synthetic set). The identity when ``dsa_strategy`` is ``none``."""

    @abstractmethod
    def encode(self, x: Tensor, encoder: Encoder | None = None) -> Features:
        """Run ``encoder`` (default: this iteration's) with the run's memory-format and
        autocast settings; features come back in float32."""

    @abstractmethod
    def encode_real(self, x: Tensor,
                    summarize: Callable[[Features], Features] | None = None) -> Features:
        """``summarize(encode(x))`` without gradients, in micro-batches where that is exact (an
        encoder without BatchNorm and without ``couples_batch``). ``summarize`` must treat each
        sample on its own."""

    @abstractmethod
    def trainable_encoder(self, *keys: int | str) -> Encoder:
        """A new network from the run's sampler, initialised from ``generator("trainable",
        *keys)``, whose parameters require grad; the caller owns it (keep it in method state to
        train it over several iterations)."""

    @abstractmethod
    def step_images(self) -> None:
        """Apply one optimiser step to the synthetic images now, then zero their gradients.

        For methods that update the images several times in one iteration (gradient matching:
        ``outer_loop`` updates per network). If a method calls it, the loop does not step again
        at the end of the iteration; call it after the last ``backward()`` of the iteration.
        """


class Method(Component):
    """How synthetic images are learned.

    ``iteration`` is called once per distillation step by the shared loop: compute the loss of
    this step and call ``backward()`` on it (as often as needed, e.g. once per class chunk); the
    loop zeroes the images' gradients before and steps their optimiser after (unless the method
    stepped itself with :meth:`StepContext.step_images`). Feature-matching methods subclass
    :class:`FeatureMatching` and implement only ``loss``; other families override ``iteration``.

    State: a method instance lives for one run (the loop makes a fresh one from the plan's
    config). Anything kept across iterations (a network trained over several iterations, its
    optimiser, a learned learning rate) must be returned by :meth:`state_dict` and restored by
    :meth:`load_state_dict`, so that a resumed run equals an uninterrupted one.
    """

    #: loop settings this method defaults to (``lr_img``, ``batch_real``, ``iterations`` ...)
    loop_defaults: ClassVar[Mapping[str, Any]] = {}
    #: encoder sampler settings this method defaults to, e.g. ``{"norm": "batchnorm"}``; applied
    #: only to the fields the chosen sampler declares
    sampler_defaults: ClassVar[Mapping[str, Any]] = {}
    #: whether the loop should draw an encoder each iteration (``ctx.encoder``)
    needs_encoder: ClassVar[bool] = True
    #: whether one iteration may run on a subset of the classes (``classes=`` of the loop, or
    #: one ``torchrun`` rank's share). ``False`` for methods whose step needs the whole set at
    #: once (a network trained on every class between image updates, an unrolled student); the
    #: loop then refuses a class subset before any work, naming the method.
    class_shardable: ClassVar[bool] = True

    def auto_overrides(self, spec: DataSpec, ipc: int) -> dict[str, Any]:
        """Data-dependent defaults (e.g. a larger image LR at high IPC); keys as for ``--set``."""
        return {}

    def check(self, spec: DataSpec, ipc: int) -> None:
        """Refuse a plan this method cannot run (raise :class:`ConfigError` naming the fix). Called
        when the plan is resolved, before any data is loaded or written, with the config already
        set (``self.config``). Default: everything the config accepts is runnable."""

    def initialize(self, data: RealData, *, ipc: int, seed: int,
                   sampler: EncoderSampler) -> Tensor | None:
        """Initial synthetic images (class-major, normalised), or ``None`` for the loop's
        ``init`` setting. Selection baselines (random, herding) return their picks here and run
        0 iterations."""
        return None

    @abstractmethod
    def iteration(self, ctx: StepContext) -> Tensor:
        """Run one step's forward/backward; return the step's loss (detached scalar)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything kept across iterations: tensors, and JSON-able values (numbers, strings,
        lists, dicts — e.g. a network's and an optimiser's ``state_dict()``). Saved in every
        checkpoint. Default: no state."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (tensors arrive on the CPU) before the first
        iteration of a resumed run."""

    def artifact_tensors(self) -> dict[str, Tensor]:
        """Learned tensors the artifact has a slot for, stored beside the images: ``syn_lr``
        (a learned learning rate, scalar) and ``soft_labels`` (``(N, K)``)."""
        return {}


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

    def iteration(self, ctx: StepContext) -> Tensor:
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
class EvalResult:
    """What an evaluator returns: headline metrics, raw per-run values, and its protocol."""

    evaluator: str
    protocol: str
    settings: Mapping[str, Any]
    metrics: Mapping[str, float]
    per_run: tuple[float, ...] = ()
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluator": self.evaluator,
            "protocol": self.protocol,
            "settings": dict(self.settings),
            "metrics": dict(self.metrics),
            "per_run": list(self.per_run),
            "details": dict(self.details),
        }


class Evaluator(Component):
    """How a distilled set is judged (e.g. train fresh nets on it, test on real data)."""

    @abstractmethod
    def evaluate(
        self,
        synset: SynSet,
        data: RealData,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        progress: ProgressFn | None = None,
    ) -> EvalResult:
        """Judge ``synset`` against the real dataset ``data`` (train and test splits)."""
