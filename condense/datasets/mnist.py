"""MNIST and Fashion-MNIST from their IDX files (local first; torchvision download on request)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..interfaces import DatasetSource, RawSplit
from .idx import read_idx
from .locate import download_torchvision

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class _IDXSource(DatasetSource):
    channels = 1
    image_size = (28, 28)
    num_classes = 10
    #: torchvision folder name under --data-dir (``<root>/<folder>/raw``)
    folder: str = ""
    #: other places the files are commonly found (e.g. a Debian package)
    system_dirs: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    torchvision_class: str = ""
    howto: str = ""

    def candidates(self, root: str | None) -> list[Path]:
        dirs = []
        if root:
            r = Path(root).expanduser()
            dirs += [r / self.folder / "raw", r / self.folder, r / self.name, r]
        dirs += [Path(d) for d in self.system_dirs]
        return dirs

    def _find(self, split: str, root: str | None) -> tuple[Path, Path] | None:
        img, lab = _FILES[split]
        for d in self.candidates(root):
            for ext in ("", ".gz"):
                a, b = d / (img + ext), d / (lab + ext)
                if a.is_file() and b.is_file():
                    return a, b
        return None

    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        if split not in _FILES:
            raise DatasetError(f"{self.name}: unknown split {split!r}; use train or test")
        found = self._find(split, root)
        if found is None and download:
            self._download(root)
            found = self._find(split, root)
        if found is None:
            searched = "\n  ".join(str(d) for d in self.candidates(root))
            raise DatasetError(
                f"{self.name} {split} split not found. Looked for {_FILES[split][0]}[.gz] and "
                f"{_FILES[split][1]}[.gz] in:\n  {searched}\n{self.howto} or pass --download to "
                f"fetch it with torchvision into --data-dir."
            )
        images, labels = read_idx(found[0]), read_idx(found[1])
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{found[0].parent}: images {tuple(images.shape)} and labels "
                f"{tuple(labels.shape)} do not match"
            )
        return RawSplit(
            images=images.unsqueeze(1).contiguous(),  # (N, 28, 28) -> (N, 1, 28, 28)
            labels=labels.long(),
            class_names=self.class_names,
            source=str(found[0].parent),
        )

    def _download(self, root: str | None) -> None:
        download_torchvision(self.name, self.torchvision_class, root)


class FashionMNIST(_IDXSource):
    """Fashion-MNIST (Zalando): 70k 28×28 greyscale clothing images, 10 classes."""

    name = "fashion-mnist"
    aliases = ("fashionmnist", "fmnist", "FashionMNIST")
    mean = (0.2861,)
    std = (0.3530,)
    folder = "FashionMNIST"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
    torchvision_class = "FashionMNIST"
    howto = "On Debian/Ubuntu: `apt-get install dataset-fashion-mnist`,"


class MNIST(_IDXSource):
    """MNIST handwritten digits: 70k 28×28 greyscale images, 10 classes."""

    name = "mnist"
    aliases = ("MNIST",)
    mean = (0.1307,)
    std = (0.3081,)
    folder = "MNIST"
    dsa_strategy = "color_crop_cutout_scale_rotate"  # DM README: no flip for digits
    class_names = tuple(str(i) for i in range(10))
    torchvision_class = "MNIST"
    howto = "Put the four IDX files in <data-dir>/MNIST/raw,"


__all__ = ["FashionMNIST", "MNIST"]
