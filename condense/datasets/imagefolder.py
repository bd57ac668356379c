"""A generic image-folder dataset: ``<data-dir>/train/<class>/*`` and ``<data-dir>/val/<class>/*``.

Classes are the sorted sub-folder names of the training folder (torchvision's ImageFolder rule;
images are found recursively). Every image is converted to the configured channel count and,
with ``image_size`` (``--image-size``), resized on its shorter side and centre-cropped to a
square. Without ``mean``/``std`` the per-channel statistics of the training images are used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import Config
from ..errors import ConfigError, DatasetError
from ..interfaces import DatasetSource, RawSplit
from . import images as img
from .locate import missing


def channel_stats(images: Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (population) of uint8 ``(N, C, H, W)`` images, in [0, 1] units."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (squares / n - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


class ImageFolder(DatasetSource):
    """Your own images: train/ and val/ folders with one sub-folder per class."""

    name = "imagefolder"
    aliases = ("ImageFolder", "image-folder", "folder")
    # Known only from the config / the files; the instance sets them.
    channels = 3
    image_size = (0, 0)
    num_classes = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        train_dir: str = "train"  # relative to --data-dir (or absolute)
        val_dir: str = "val"  # relative to --data-dir (or absolute); "test" is tried too
        image_size: int = 0  # resize + centre-crop to N x N; 0 = keep (all images must match)
        channels: int = 3  # 3 = RGB, 1 = greyscale (colour files are then an error)
        mean: tuple[float, ...] = ()  # per channel; empty = computed from the training images
        std: tuple[float, ...] = ()

        def __post_init__(self) -> None:
            if self.channels not in (1, 3):
                raise ValueError("channels must be 1 or 3")
            if self.image_size < 0:
                raise ValueError("image_size must be >= 0")
            for key in ("mean", "std"):
                value = getattr(self, key)
                if value and len(value) != self.channels:
                    raise ValueError(f"{key} needs {self.channels} value(s), got {len(value)}")
            if bool(self.mean) != bool(self.std):
                raise ValueError("give both mean and std, or neither")
            if any(s <= 0 for s in self.std):
                raise ValueError("std values must be > 0")

    def __init__(self, config: Any = None) -> None:
        try:
            super().__init__(config)
        except ValueError as exc:  # pragma: no cover - Config.from_dict already wraps these
            raise ConfigError(f"invalid config for dataset imagefolder: {exc}") from None
        cfg = self.config
        assert isinstance(cfg, ImageFolder.Config)
        self.channels = cfg.channels
        self.image_size = (cfg.image_size, cfg.image_size)
        if cfg.mean:
            self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)
        self._classes: tuple[str, ...] | None = None

    def _dirs(self, root: str | None) -> tuple[Path, list[Path]]:
        cfg = self.config
        assert isinstance(cfg, ImageFolder.Config)
        base = Path(root).expanduser() if root else Path.cwd()
        train = base / cfg.train_dir
        vals = [base / cfg.val_dir]
        if cfg.val_dir == "val":
            vals.append(base / "test")
        return train, vals

    def classes(self, root: str | None) -> tuple[str, ...]:
        if self._classes is None:
            train, _ = self._dirs(root)
            if not train.is_dir():
                raise missing(
                    self.name,
                    "train",
                    ["<class>/<image files>"],
                    [train],
                    "Point --data-dir at a folder holding train/ and val/ with one "
                    "sub-folder per class, or pass --train-dir / --val-dir",
                    downloadable=False,
                )
            names = img.class_folders(train)
            if not names:
                raise DatasetError(
                    f"{self.name}: no class folders in {train}; images must sit in "
                    f"{train}/<class>/ (a flat folder has no labels)"
                )
            if len(names) == 1:
                raise DatasetError(
                    f"{self.name}: {train} has one class folder ({names[0]!r}); a classification "
                    f"set needs at least 2, one sub-folder per class in {train}/<class>/"
                )
            self._classes = tuple(names)
        return self._classes

    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        if split not in ("train", "test"):
            raise DatasetError(f"{self.name}: unknown split {split!r}; use train or test")
        cfg = self.config
        assert isinstance(cfg, ImageFolder.Config)
        classes = self.classes(root)
        train, vals = self._dirs(root)
        if split == "train":
            folder = train
            files = img.scan_class_tree(folder, classes, dataset=self.name)
        else:
            folder = next((v for v in vals if v.is_dir()), vals[0])
            if not folder.is_dir():
                raise missing(
                    self.name,
                    "test",
                    ["<class>/<image files>"],
                    vals,
                    "Add a val/ folder with the same class sub-folders as train/, or "
                    "pass --val-dir",
                    downloadable=False,
                )
            unknown = sorted(set(img.class_folders(folder)) - set(classes))
            if unknown:
                raise DatasetError(
                    f"{self.name}: {folder} has class folder(s) {', '.join(unknown[:3])} that "
                    f"{train} does not"
                )
            files = img.scan_class_tree(folder, classes, dataset=self.name, allow_missing=True)
            if not files:
                raise DatasetError(f"{self.name}: no images in the class folders of {folder}")
            present = {label for _, label in files}
            lacking = [c for i, c in enumerate(classes) if i not in present]
            if lacking:
                raise DatasetError(
                    f"{self.name}: {folder} has no images of class(es) "
                    f"{', '.join(map(repr, lacking[:3]))}{' …' if len(lacking) > 3 else ''} "
                    f"({len(lacking)} of the {len(classes)} in {train}); accuracy needs test "
                    f"images of every class: add {folder}/<class>/ folders, or pass --val-dir"
                )
        images, labels = img.load_cached(
            files,
            classes,
            root=root,
            tag=f"{self.name}-{split}",
            channels=cfg.channels,
            size=cfg.image_size or None,
            dataset=self.name,
            strict_mode=cfg.channels == 1,
        )
        size = (int(images.shape[2]), int(images.shape[3]))
        if split == "test" and self.image_size != (0, 0) and size != tuple(self.image_size):
            raise DatasetError(
                f"{self.name}: {folder} images are {size[1]}x{size[0]} but the training images "
                f"are {self.image_size[1]}x{self.image_size[0]}; pass --image-size N"
            )
        self.num_classes = len(classes)
        self.image_size = size
        if split == "train" and not cfg.mean:
            self.mean, self.std = channel_stats(images)
        return RawSplit(images, labels, classes, source=str(folder))
