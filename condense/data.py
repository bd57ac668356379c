"""RealData: a real dataset held as uint8 tensors, normalised per batch on the device."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import Tensor

from .errors import DatasetError
from .interfaces import DatasetSource, DataSpec, RawSplit
from .zca import ZCA


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
    _test: RawSplit | None = None
    _class_index: list[Tensor] | None = None

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
            self._test = self.source.load("test", self.root, download=self.download)
        return self._test

    def class_index(self) -> list[Tensor]:
        """Per-class index tensors into ``train`` (built once)."""
        if self._class_index is None:
            labels = self.train.labels
            order = torch.argsort(labels, stable=True)
            counts = torch.bincount(labels, minlength=len(self.class_names)).tolist()
            self._class_index = list(torch.split(order, counts))
            empty = [self.class_names[c] for c, n in enumerate(counts) if n == 0]
            if empty:
                raise DatasetError(
                    f"{self.name}: class(es) {', '.join(empty[:5])} have no training images; "
                    f"check the dataset folder"
                )
        return self._class_index

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 ``(N, C, H, W)`` -> float32 normalised (then ZCA-whitened if fitted)."""
        x = images.float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        if self.zca is not None:
            x = self.zca(x)
        return x

    def fit_zca(self, eps: float = 0.1, chunk: int = 10000) -> ZCA:
        """Fit ZCA on the whole normalised training set (spec §1.6) and use it from now on."""
        self.zca = None
        parts = [self.normalize(self.train.images[i : i + chunk]) for i in range(0, len(self.train.images), chunk)]
        self.zca = ZCA.fit(torch.cat(parts), eps)
        return self.zca


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    config: dict[str, object] | None = None,
) -> RealData:
    """Find ``name`` among the registered datasets and read its training split."""
    from .registry import get_dataset

    cls = get_dataset(name)
    source = cls(config or None)
    root = os.fspath(data_dir) if data_dir is not None else os.fspath(default_data_dir())
    train = source.load("train", root, download=download)
    return RealData(name=cls.name, source=source, train=train, root=root, download=download)
