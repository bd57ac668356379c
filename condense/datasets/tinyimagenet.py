"""TinyImageNet (200 classes, 64×64) from any of the layouts the field uses.

Accepted, in this order (``source=auto``):

1. the raw ``tiny-imagenet-200`` folder as unzipped: ``train/<wnid>/images/*.JPEG``, a flat
   ``val/images/`` labelled by ``val/val_annotations.txt``; ``test/`` has no labels and is never
   used (the validation split is the test split, as in every DD paper);
2. the same folder with ``val`` already re-organised as ``val/<wnid>/[images/]*.JPEG`` or
   ``val/images/<wnid>/*.JPEG`` (the MTT / DD-Ranking layouts);
3. the pre-packed ``tinyimagenet.pt`` of the DM / DataDAM repos (keys ``classes``,
   ``images_train``, ``labels_train``, ``images_val``, ``labels_val``; uint8), read with
   ``torch.load(weights_only=True)`` so no code is unpickled.

Class order is always the sorted wnids (recorded as ``class_names`` in every artifact).
JPEG folders are decoded once and cached (see :mod:`condense.datasets.cache`).
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from ..config import Config
from ..errors import DatasetError
from ..interfaces import DatasetSource, RawSplit
from . import images as img
from .locate import candidates, missing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_FOLDERS = (
    "tiny-imagenet-200",
    "",
    "tinyimagenet/tiny-imagenet-200",
    "tinyimagenet",
    "TinyImageNet",
    "tiny-imagenet",
)
_PACKED = "tinyimagenet.pt"
_HOWTO = (
    "Unzip tiny-imagenet-200.zip (the CS231n / Kaggle download) into --data-dir, or put the "
    "DM/DataDAM tinyimagenet.pt there; there is no torchvision downloader for TinyImageNet"
)


def _is_wnid(name: str) -> bool:
    return len(name) == 9 and name[0] == "n" and name[1:].isdigit()


class TinyImageNet(DatasetSource):
    """TinyImageNet: 64×64 colour images, 200 ImageNet classes (500 train / 50 val each)."""

    name = "tinyimagenet"
    aliases = ("TinyImageNet", "tiny", "Tiny", "tiny-imagenet", "tiny-imagenet-200")
    channels = 3
    image_size = (64, 64)
    num_classes = 200
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        source: Literal["auto", "folder", "tensor"] = (
            "auto"  # raw/re-organised tree or tinyimagenet.pt
        )

    def search_dirs(self, root: str | None) -> list[Path]:
        return candidates(root, _FOLDERS)

    # -- locating -------------------------------------------------------------------------
    def _tree(self, root: str | None) -> Path | None:
        for d in self.search_dirs(root):
            if (d / "train").is_dir() and ((d / "wnids.txt").is_file() or (d / "val").is_dir()):
                return d
        return None

    def _packed(self, root: str | None) -> Path | None:
        for d in self.search_dirs(root):
            if (d / _PACKED).is_file():
                return d / _PACKED
        return None

    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        if split not in ("train", "test"):
            raise DatasetError(f"{self.name}: unknown split {split!r}; use train or test")
        mode = self.config.source  # type: ignore[attr-defined]
        tree = self._tree(root) if mode in ("auto", "folder") else None
        if tree is not None:
            return self._load_tree(tree, split, root)
        packed = self._packed(root) if mode in ("auto", "tensor") else None
        if packed is not None:
            return self._load_packed(packed, split)
        expected = {
            "auto": ["tiny-imagenet-200/train/<wnid>/images/", _PACKED],
            "folder": ["tiny-imagenet-200/train/<wnid>/images/"],
            "tensor": [_PACKED],
        }[mode]
        raise missing(
            self.name, split, expected, self.search_dirs(root), _HOWTO, downloadable=False
        )

    # -- the JPEG tree ---------------------------------------------------------------------
    def _classes(self, tree: Path) -> tuple[str, ...]:
        folders = img.class_folders(tree / "train")
        wnids_file = tree / "wnids.txt"
        if wnids_file.is_file():
            listed = sorted({w.strip() for w in wnids_file.read_text().split() if w.strip()})
            absent = [w for w in listed if w not in folders]
            if absent:
                raise DatasetError(
                    f"{self.name}: {len(absent)} class(es) of wnids.txt have no folder in "
                    f"{tree / 'train'} (first: {absent[0]}); the archive is incomplete"
                )
            return tuple(listed)
        if not folders:
            raise DatasetError(f"{self.name}: no class folders in {tree / 'train'}")
        return tuple(folders)

    def _load_tree(self, tree: Path, split: str, root: str | None) -> RawSplit:
        classes = self._classes(tree)
        extra: list[Path] = []
        if split == "train":
            sub = "images" if all((tree / "train" / c / "images").is_dir() for c in classes) else ""
            files = img.scan_class_tree(tree / "train", classes, sub=sub, dataset=self.name)
        else:
            files, extra = self._val_files(tree, classes)
        images, labels = img.load_cached(
            files,
            classes,
            root=root,
            tag=f"{self.name}-{split}",
            channels=3,
            size=64,
            dataset=self.name,
            extra_files=extra,
        )
        return RawSplit(images, labels, classes, source=str(tree))

    def _val_files(
        self, tree: Path, classes: tuple[str, ...]
    ) -> tuple[list[tuple[Path, int]], list[Path]]:
        val = tree / "val"
        annotations = val / "val_annotations.txt"
        index = {c: i for i, c in enumerate(classes)}
        if (
            annotations.is_file()
            and (val / "images").is_dir()
            and not any((val / "images" / c).is_dir() for c in classes[:5])
        ):
            files: list[tuple[Path, int]] = []
            for n, line in enumerate(annotations.read_text().splitlines(), 1):
                parts = line.split("\t") if "\t" in line else line.split()
                if not parts or not parts[0].strip():
                    continue
                if len(parts) < 2 or parts[1] not in index:
                    raise DatasetError(
                        f"{annotations}:{n}: expected '<file>\\t<wnid>\\t...' with a wnid of "
                        f"train/, got {line.strip()[:60]!r}"
                    )
                path = val / "images" / parts[0]
                if not path.is_file():
                    raise DatasetError(f"{annotations}:{n}: {path} is listed but missing")
                files.append((path, index[parts[1]]))
            if not files:
                raise DatasetError(f"{annotations} lists no images")
            return files, [annotations]
        for base in (val, val / "images"):
            if any((base / c).is_dir() for c in classes):
                sub = (
                    "images"
                    if all((base / c / "images").is_dir() for c in classes if (base / c).is_dir())
                    else ""
                )
                return img.scan_class_tree(
                    base, classes, sub=sub, dataset=self.name, allow_missing=True
                ), []
        raise missing(
            self.name,
            "test (validation)",
            ["val/val_annotations.txt + val/images/", "val/<wnid>/"],
            [val],
            _HOWTO,
            downloadable=False,
        )

    # -- the pre-packed tensor file -----------------------------------------------------------
    def _load_packed(self, path: Path, split: str) -> RawSplit:
        try:
            blob: Any = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatasetError(
                f"{path}: refusing to unpickle code from this file ({first})"
            ) from None
        except Exception as exc:
            raise DatasetError(
                f"{path}: cannot read ({type(exc).__name__}); the file is corrupt or truncated"
            ) from None
        key = "train" if split == "train" else "val"
        if not isinstance(blob, dict) or f"images_{key}" not in blob or f"labels_{key}" not in blob:
            found = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
            raise DatasetError(
                f"{path}: expected a dict with classes, images_{key}, labels_{key}; found {found}"
            )
        images, labels = blob[f"images_{key}"], blob[f"labels_{key}"]
        if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
            raise DatasetError(f"{path}: images_{key} and labels_{key} must be tensors")
        images = self._channels_first(images, path)
        if images.dtype != torch.uint8:
            if images.is_floating_point() and float(images.max()) <= 1.0 + 1e-6:
                images = (images * 255).round().clamp(0, 255)
            images = images.to(torch.uint8)
        labels = labels.reshape(-1).long()
        if labels.shape[0] != images.shape[0]:
            raise DatasetError(
                f"{path}: {images.shape[0]} images_{key} but {labels.shape[0]} labels_{key}"
            )
        classes = [str(c) for c in blob.get("classes", [])] or [str(i) for i in range(200)]
        if labels.numel() and int(labels.max()) >= len(classes):
            raise DatasetError(
                f"{path}: labels_{key} go up to {int(labels.max())} but there are "
                f"{len(classes)} classes"
            )
        if all(_is_wnid(c) for c in classes) and classes != sorted(classes):
            order = sorted(range(len(classes)), key=classes.__getitem__)
            remap = torch.empty(len(classes), dtype=torch.long)
            remap[torch.tensor(order)] = torch.arange(len(classes))
            labels, classes = remap[labels], [classes[i] for i in order]
        return RawSplit(images.contiguous(), labels, tuple(classes), source=str(path))

    def _channels_first(self, images: Tensor, path: Path) -> Tensor:
        if images.ndim != 4:
            raise DatasetError(
                f"{path}: images have shape {tuple(images.shape)}, expected (N, 3, 64, 64)"
            )
        if images.shape[1] != 3 and images.shape[-1] == 3:
            images = images.permute(0, 3, 1, 2)
        if images.shape[1] != 3:
            raise DatasetError(
                f"{path}: images have {images.shape[1]} channel(s) but {self.name} is RGB "
                f"(expected (N, 3, 64, 64), got {tuple(images.shape)})"
            )
        if tuple(images.shape[2:]) != (64, 64):
            raise DatasetError(f"{path}: images are {tuple(images.shape[2:])}, expected 64x64")
        return images


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TinyImageNet"]
