"""CIFAR-10 and CIFAR-100 read straight from the python-version batch files.

The batches are pickles of plain dicts holding a numpy ``uint8`` array ``data`` ``(N, 3072)``
and a list of labels. They are read with a restricted unpickler that can build numpy arrays
and nothing else, so a doctored file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import DatasetError
from ..interfaces import DatasetSource, RawSplit
from .locate import candidates, download_torchvision, missing


def _reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct as fn  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles written by Python 3 store ``bytes`` as ``_codecs.encode(str, latin1)``."""
    return text.encode(encoding)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode,
}


class _Refused(pickle.UnpicklingError):
    """The file asked for a global outside the allow-list."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/strings/numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(
                f"refusing to load {module}.{name} (only numpy arrays are allowed)"
            ) from None


def read_batch(path: Path) -> dict[str, Any]:
    """One CIFAR batch file as a dict with ``str`` keys; a bad file raises DatasetError."""
    try:
        raw = path.read_bytes()
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _Refused as exc:
        raise DatasetError(f"{path}: not a CIFAR batch file ({exc})") from None
    except (
        pickle.UnpicklingError,
        OSError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
    ) as exc:
        raise DatasetError(
            f"{path}: cannot read ({type(exc).__name__}: {exc}); the file is corrupt or truncated"
        ) from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a CIFAR batch file (holds a {type(obj).__name__})")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


class _CIFARSource(DatasetSource):
    channels = 3
    image_size = (32, 32)
    folder: ClassVar[str]
    files: ClassVar[dict[str, tuple[str, ...]]]
    meta_file: ClassVar[str]
    label_key: ClassVar[str]
    names_key: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    torchvision_class: ClassVar[str]

    def search_dirs(self, root: str | None) -> list[Path]:
        return candidates(root, (self.folder, "", f"{self.name}/{self.folder}", self.name))

    def _find(self, split: str, root: str | None) -> Path | None:
        for d in self.search_dirs(root):
            if all((d / f).is_file() for f in self.files[split]):
                return d
        return None

    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        if split not in self.files:
            raise DatasetError(f"{self.name}: unknown split {split!r}; use train or test")
        found = self._find(split, root)
        if found is None and download:
            self._download(root)
            found = self._find(split, root)
        if found is None:
            raise missing(
                self.name,
                split,
                [f"{self.folder}/{f}" for f in self.files[split]],
                self.search_dirs(root),
                f"Extract the python version of {self.name} ({self.folder}/) into --data-dir",
                downloadable=True,
            )
        data, labels = [], []
        for f in self.files[split]:
            batch = read_batch(found / f)
            try:
                x = np.asarray(batch["data"], dtype=np.uint8)
                y = np.asarray(batch[self.label_key], dtype=np.int64)
            except KeyError as exc:
                raise DatasetError(
                    f"{found / f}: not a {self.name} batch (no {exc} entry)"
                ) from None
            if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or x.shape[0] != y.shape[0]:
                raise DatasetError(
                    f"{found / f}: data {x.shape} and labels {y.shape} are not "
                    f"{self.name} batches of (N, 3072) and (N,)"
                )
            data.append(x)
            labels.append(y)
        images = torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32).copy())
        targets = torch.from_numpy(np.concatenate(labels))
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= self.num_classes):
            raise DatasetError(f"{found}: labels outside 0..{self.num_classes - 1}; wrong dataset?")
        return RawSplit(images, targets, self._names(found), source=str(found))

    def _names(self, folder: Path) -> tuple[str, ...]:
        meta = folder / self.meta_file
        if meta.is_file():
            try:
                names = read_batch(meta).get(self.names_key)
            except DatasetError:
                names = None
            if isinstance(names, list) and len(names) == self.num_classes:
                return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        return self.class_names

    def _download(self, root: str | None) -> None:
        download_torchvision(self.name, self.torchvision_class, root)


class CIFAR10(_CIFARSource):
    """CIFAR-10: 60k 32×32 colour images, 10 classes (legacy DC/DM std .2023 .1994 .2010)."""

    name = "cifar10"
    aliases = ("CIFAR10", "CIFAR-10")
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2023, 0.1994, 0.2010)  # the legacy values every DD repo uses (docs/datasets.md)
    folder = "cifar-10-batches-py"
    files = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
    meta_file = "batches.meta"
    label_key = "labels"
    names_key = "label_names"
    class_names = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    torchvision_class = "CIFAR10"


class CIFAR100(_CIFARSource):
    """CIFAR-100: 60k 32×32 colour images, 100 fine classes."""

    name = "cifar100"
    aliases = ("CIFAR100", "CIFAR-100")
    num_classes = 100
    mean = (0.5071, 0.4866, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    folder = "cifar-100-python"
    files = {"train": ("train",), "test": ("test",)}
    meta_file = "meta"
    label_key = "fine_labels"
    names_key = "fine_label_names"
    class_names = tuple(
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
        "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
        "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
        "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
        "motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
        "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket "
        "rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar "
        "sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip "
        "turtle wardrobe whale willow_tree wolf woman worm".split()
    )
    torchvision_class = "CIFAR100"
