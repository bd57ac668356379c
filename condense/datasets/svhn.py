"""SVHN (cropped digits) read straight from ``train_32x32.mat`` / ``test_32x32.mat``.

The ``.mat`` files hold ``X`` as ``(32, 32, 3, N)`` uint8 and ``y`` as ``(N, 1)`` with the digit
0 stored as label 10; both are fixed up here (torchvision does the same). Needs scipy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from ..interfaces import DatasetSource, RawSplit
from .locate import candidates, download_failed, missing

_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(X (N, 3, 32, 32) uint8, y (N,) int64)`` from one SVHN ``.mat`` file."""
    try:
        import scipy.io
    except ImportError:
        raise DatasetError(
            "svhn needs scipy to read its .mat files: pip install scipy "
            "(or the `svhn` extra of condense)"
        ) from None
    try:
        mat = scipy.io.loadmat(os.fspath(path), variable_names=("X", "y"))
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError ... on bad files
        raise DatasetError(
            f"{path}: cannot read ({type(exc).__name__}: {exc}); the file is corrupt or truncated"
        ) from None
    if "X" not in mat or "y" not in mat:
        raise DatasetError(f"{path}: not an SVHN file (no X and y variables)")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.shape[0]:
        raise DatasetError(
            f"{path}: X {x.shape} and y {y.shape} are not SVHN's (32, 32, 3, N) and (N, 1)"
        )
    labels = y.astype(np.int64) % 10  # digit 0 is stored as 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False), labels


class SVHN(DatasetSource):
    """SVHN: 32×32 colour house-number digits (73k train, 26k test), 10 classes."""

    name = "svhn"
    aliases = ("SVHN",)
    channels = 3
    image_size = (32, 32)
    num_classes = 10
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)
    dsa_strategy = "color_crop_cutout_scale_rotate"  # DM README: no flip for digits
    class_names = tuple(str(i) for i in range(10))

    def search_dirs(self, root: str | None) -> list[Path]:
        return candidates(root, ("", "svhn", "SVHN"))

    def _find(self, split: str, root: str | None) -> Path | None:
        for d in self.search_dirs(root):
            if (d / _FILES[split]).is_file():
                return d / _FILES[split]
        return None

    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        if split not in _FILES:
            raise DatasetError(f"{self.name}: unknown split {split!r}; use train or test")
        found = self._find(split, root)
        if found is None and download:
            self._download(root, split)
            found = self._find(split, root)
        if found is None:
            raise missing(
                self.name,
                split,
                [_FILES[split]],
                self.search_dirs(root),
                "Put the cropped-digits files (format 2) from the SVHN site in --data-dir",
                downloadable=True,
            )
        x, y = read_mat(found)
        return RawSplit(
            torch.from_numpy(x), torch.from_numpy(y), self.class_names, source=str(found)
        )

    def _download(self, root: str | None, split: str) -> None:
        import torchvision.datasets as tvd

        target = Path(root or ".").expanduser()
        target.mkdir(parents=True, exist_ok=True)
        try:
            tvd.SVHN(os.fspath(target), split=split, download=True)
        except Exception as exc:  # network errors come in many types
            raise download_failed(self.name, exc) from None
