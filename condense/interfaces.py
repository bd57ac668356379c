"""The abstract interfaces plugins implement: Method, EncoderSampler, Evaluator, DatasetSource.

Each interface has a ``name`` class attribute (the id users type), a nested frozen ``Config``
dataclass (defaults + validation), and exactly one abstract method.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from .config import Config

if TYPE_CHECKING:
    from .data import RealData
    from .distill import DistillContext
    from .plan import Plan
    from .synset import SynSet


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What an encoder needs to know about the images it sees."""

    channels: int
    image_size: tuple[int, int]
    num_classes: int


@dataclasses.dataclass(frozen=True)
class Features:
    """What an encoder returns.

    ``embedding`` is the flattened last-layer output, ``(B, D)``; ``maps`` holds the activation
    output of every block, ``(B, C_l, H_l, W_l)``, first block first. The shared loop regroups both
    per class to ``(k, n, ...)`` before handing them to :meth:`FeatureMatching.loss`.
    """

    embedding: Tensor
    maps: tuple[Tensor, ...] = ()

    def grouped(self, k: int) -> Features:
        """Reshape the batch axis ``(k*n, ...)`` to ``(k, n, ...)`` (classes contiguous)."""
        return Features(
            self.embedding.reshape(k, -1, *self.embedding.shape[1:]),
            tuple(m.reshape(k, -1, *m.shape[1:]) for m in self.maps),
        )

    @staticmethod
    def cat(parts: Sequence[Features]) -> Features:
        """Concatenate the features of consecutive batches along the batch axis."""
        if len(parts) == 1:
            return parts[0]
        return Features(
            torch.cat([p.embedding for p in parts]),
            tuple(torch.cat(ms) for ms in zip(*(p.maps for p in parts), strict=True)),
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
    """A feature extractor whose ``forward(x)`` returns :class:`Features`.

    The loop may split a no-grad pass into micro-batches when the encoder's output for a sample
    does not depend on the other samples of the pass. BatchNorm layers are detected; an encoder
    that couples samples in another way must set ``couples_batch = True``.
    """

    #: whether a sample's features depend on the rest of the batch (besides BatchNorm layers)
    couples_batch: bool = False

    def forward(self, x: Tensor) -> Features:  # pragma: no cover - interface
        raise NotImplementedError


class _Component(ABC):
    """Shared plumbing: ``name``, nested ``Config``, construction from a config or a dict."""

    name: ClassVar[str]
    Config: ClassVar[type[Config]] = Config
    #: named bundles of config overrides, e.g. ``{"paper": {"attention_power": 4}}``
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, config: Config | Mapping[str, Any] | None = None) -> None:
        cls = type(self).Config
        if config is None:
            config = cls()
        elif not isinstance(config, Config):
            config = cls.from_dict(config, owner=type(self).name)
        elif not isinstance(config, cls):
            raise TypeError(f"{type(self).__name__} needs a {cls.__qualname__}, got {type(config)}")
        self.config = config


class EncoderSampler(_Component):
    """Draws a freshly initialised (never trained) feature extractor each iteration."""

    @abstractmethod
    def sample(
        self, spec: DataSpec, *, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> Encoder:
        """Return an encoder with a fresh random initialisation drawn from ``generator``.

        Parameters must not require grad. The encoder is in ``train()`` mode (the official
        DM/DataDAM semantics: BatchNorm uses batch statistics). An implementation may return the
        same module re-initialised in place (cheaper, and keeps compiled graphs valid).
        """


class Method(_Component):
    """How synthetic images are learned.

    ``iteration`` is called once per distillation step by the shared loop: compute the loss of
    this step and call ``backward()`` on it (as often as needed, e.g. once per class chunk); the
    loop zeroes gradients before and steps the optimiser after. Feature-matching methods should
    subclass :class:`condense.FeatureMatching` and implement only ``loss``; other families
    (gradient or trajectory matching) override ``iteration`` and use what the context offers.
    """

    #: loop settings this method defaults to (``lr_img``, ``batch_real``, ``iterations`` ...)
    loop_defaults: ClassVar[Mapping[str, Any]] = {}
    #: encoder sampler settings this method defaults to, e.g. ``{"norm": "batchnorm"}``
    sampler_defaults: ClassVar[Mapping[str, Any]] = {}
    #: whether the loop should draw an encoder each iteration (``ctx.encoder``)
    needs_encoder: ClassVar[bool] = True

    def auto_overrides(self, spec: DataSpec, ipc: int) -> dict[str, Any]:
        """Data-dependent defaults (e.g. a larger image LR at high IPC); keys as for ``--set``."""
        return {}

    def initialize(self, plan: Plan, data: RealData) -> Tensor | None:
        """Initial synthetic images (class-major), or ``None`` for the loop's ``init`` setting.

        Selection baselines (random, herding) return their picks here and run 0 iterations.
        """
        return None

    @abstractmethod
    def iteration(self, ctx: DistillContext) -> Tensor:
        """Run one step's forward/backward; return the step's loss (detached scalar)."""


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


class Evaluator(_Component):
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


class DatasetSource(_Component):
    """A real dataset: its constants, and how to read its files into uint8 tensors."""

    # Class attributes; a source whose shape depends on its config (``imagefolder``) sets them
    # on the instance in ``__init__``.
    aliases: tuple[str, ...] = ()
    channels: int
    image_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: DSA strategy the field uses for this dataset (DM's README drops flip for MNIST and SVHN)
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"
    description: str = ""

    @abstractmethod
    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        """Read ``split`` ("train" or "test") into uint8 tensors; raise DatasetError if missing."""


@dataclasses.dataclass(frozen=True)
class RawSplit:
    """A decoded split: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``."""

    images: Tensor
    labels: Tensor
    class_names: tuple[str, ...]
    source: str = ""
