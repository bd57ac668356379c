"""Real data: what a dataset is (DataSpec, DatasetSource), its decoded splits (RawSplit), and
RealData, a dataset held as uint8 tensors and normalised per batch on the device.

Finding a dataset by name needs the plugin registry and lives above it
(:func:`condense.datasets.load_dataset`).
"""

from __future__ import annotations

import dataclasses
import os
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .config import Component
from .errors import DatasetError
from .zca import ZCA


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What an encoder needs to know about the images it sees."""

    channels: int
    image_size: tuple[int, int]
    num_classes: int


@dataclasses.dataclass(frozen=True)
class RawSplit:
    """A decoded split: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``."""

    images: Tensor
    labels: Tensor
    class_names: tuple[str, ...]
    source: str = ""


class DatasetSource(Component):
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

    @abstractmethod
    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        """Read ``split`` ("train" or "test") into uint8 tensors; raise DatasetError if missing."""


def default_data_dir() -> Path:
    """``$CONDENSE_DATA_DIR``, else ``$XDG_CACHE_HOME/condense/data`` (``~/.cache/...``)."""
    env = os.environ.get("CONDENSE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "condense" / "data"


@dataclasses.dataclass
class RealData:
    """Train (and lazily test) split of a real dataset, with its normalisation and optional ZCA."""

    name: str
    source: DatasetSource
    train: RawSplit
    root: str | None = None
    download: bool = False
    zca: ZCA | None = None
    #: the dataset's config (``imagefolder`` paths, ``image_size`` ...), stored in artifacts
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    _test: RawSplit | None = None
    _class_index: list[Tensor] | None = None
    _stats: dict[str, tuple[Tensor, Tensor]] = dataclasses.field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        images = self.train.images
        test = "loaded" if self._test is not None else "not loaded"
        zca = "none" if self.zca is None else "fitted"
        return (f"RealData({self.name!r}, train {tuple(images.shape)} "
                f"{str(images.dtype).removeprefix('torch.')} on {images.device}, "
                f"{len(self.class_names)} classes, test {test}, zca {zca})")

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.source.mean)

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.source.std)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def spec(self) -> DataSpec:
        _, c, h, w = self.train.images.shape
        return DataSpec(channels=c, image_size=(h, w), num_classes=len(self.class_names))

    @property
    def test(self) -> RawSplit:
        if self._test is None:
            test = self.source.load("test", self.root, download=self.download)
            check_split(self.name, self.source, test, "test", train=self.train)
            self._test = test
        return self._test

    def class_index(self) -> list[Tensor]:
        """Per-class index tensors into ``train`` (built once)."""
        if self._class_index is None:
            # numpy's single-threaded sort: torch's parallel one is ~100x slower on a busy CPU
            labels = self.train.labels.cpu().numpy()
            order = torch.from_numpy(np.argsort(labels, kind="stable"))
            counts = np.bincount(labels, minlength=len(self.class_names)).tolist()
            empty = [self.class_names[c] for c, n in enumerate(counts) if n == 0]
            if empty:
                raise DatasetError(
                    f"{self.name}: class(es) {', '.join(empty[:5])} have no training images; "
                    f"check the dataset folder"
                )
            self._class_index = list(torch.split(order, counts))
        return self._class_index

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 ``(N, C, H, W)`` -> float32 normalised (then ZCA-whitened if fitted)."""
        x = images.float().div_(255.0)
        key = str(x.device)
        if key not in self._stats:
            self._stats[key] = (
                torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1),
                torch.tensor(self.std, device=x.device).view(1, -1, 1, 1),
            )
        mean, std = self._stats[key]
        x = x.sub_(mean).div_(std)
        if self.zca is not None:
            x = self.zca(x)
        return x

    def prepared(self, device: torch.device | str, *, zca_eps: float | None = None) -> RealData:
        """A copy for one run: training images on ``device``, ZCA fitted when ``zca_eps`` is given
        and none is fitted yet. ``self`` is left unchanged (the copy shares the CPU tensors)."""
        copy = dataclasses.replace(self, _stats={}, _test=self._test,
                                   _class_index=self.class_index())
        if zca_eps is not None and copy.zca is None:
            copy.fit_zca(zca_eps)
        images = self.train.images
        if images.device != torch.device(device):
            copy.train = dataclasses.replace(self.train, images=images.to(device))
        return copy

    def fit_zca(self, eps: float = 0.1, chunk: int = 10000) -> ZCA:
        """Fit ZCA on the whole normalised training set and use it from now on.

        The official DataDAM and MTT scripts fit kornia's ``ZCAWhitening`` on the same data; see
        docs/methods.md (difference 7).
        """
        self.zca = None
        images = self.train.images
        parts = [self.normalize(images[i : i + chunk]) for i in range(0, len(images), chunk)]
        self.zca = ZCA.fit(torch.cat(parts), eps)
        return self.zca


def check_split(
    name: str, source: DatasetSource, split: RawSplit, which: str, *, train: RawSplit | None = None
) -> None:
    """One clear DatasetError if a loaded split is not what the dataset promises."""
    images, labels = split.images, split.labels
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise DatasetError(f"{name} {which}: images must be uint8 (N, C, H, W), got "
                           f"{images.dtype} {tuple(images.shape)}")
    if images.shape[1] != source.channels:
        kind = {1: "greyscale (1 channel)", 3: "RGB (3 channels)"}
        raise DatasetError(
            f"{name} {which}: images have {images.shape[1]} channel(s) but the dataset is "
            f"{kind.get(source.channels, f'{source.channels}-channel')}; "
            f"wrong files for this dataset?"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetError(f"{name} {which}: {images.shape[0]} images but labels of shape "
                           f"{tuple(labels.shape)}")
    k = len(split.class_names)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise DatasetError(f"{name} {which}: labels outside 0..{k - 1}")
    if len(source.mean) != source.channels or len(source.std) != source.channels:
        raise DatasetError(f"{name}: mean/std have {len(source.mean)}/{len(source.std)} values "
                           f"for {source.channels} channel(s)")
    if train is not None:
        if tuple(split.class_names) != tuple(train.class_names):
            raise DatasetError(f"{name}: the test split's classes differ from the training "
                               f"split's ({len(split.class_names)} vs {len(train.class_names)})")
        if tuple(images.shape[1:]) != tuple(train.images.shape[1:]):
            raise DatasetError(f"{name}: test images are {tuple(images.shape[1:])} but training "
                               f"images are {tuple(train.images.shape[1:])}")
