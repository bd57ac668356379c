"""The 10-class ImageNet subsets of the literature (MTT, DataDAM, DD-Ranking), 128×128.

Each subset is a list of ImageNet wnids over an ImageNet-style ``train/<wnid>/`` and
``val/<wnid>/`` tree: the full ImageNet (train and an organised val, as torchvision's
``ImageNet`` leaves it) or a folder holding just the subset (fastai's ``imagenette2``,
``imagewoof2``, or ``<data-dir>/<subset>/``). Class ``i`` is the ``i``-th wnid of the list, in
the order of MTT's ``utils.Config`` (so labels agree with MTT-distilled sets); the wnids are the
class names recorded in artifacts. Images are resized on the shorter side and centre-cropped
to 128×128 (``Resize(128) + CenterCrop(128)``), once, then cached; ImageNet mean/std.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

from ..config import Config
from ..errors import DatasetError
from ..interfaces import DatasetSource, RawSplit
from . import images as img
from .locate import candidates, download_failed, missing
from .tinyimagenet import IMAGENET_MEAN, IMAGENET_STD

#: ImageNet-1k roots tried under --data-dir (after the subset's own folders)
IMAGENET_FOLDERS = (
    "imagenet",
    "ImageNet",
    "ILSVRC2012",
    "imagenet/ILSVRC/Data/CLS-LOC",
    "ILSVRC/Data/CLS-LOC",
    "",
)

# (wnid, readable name); order = MTT's class order.
SUBSETS: dict[str, tuple[tuple[str, str], ...]] = {
    "imagenette": (
        ("n01440764", "tench"),
        ("n02102040", "English springer"),
        ("n02979186", "cassette player"),
        ("n03000684", "chain saw"),
        ("n03028079", "church"),
        ("n03394916", "French horn"),
        ("n03417042", "garbage truck"),
        ("n03425413", "gas pump"),
        ("n03445777", "golf ball"),
        ("n03888257", "parachute"),
    ),
    "imagewoof": (
        ("n02096294", "Australian terrier"),
        ("n02093754", "Border terrier"),
        ("n02111889", "Samoyed"),
        ("n02088364", "beagle"),
        ("n02086240", "Shih-Tzu"),
        ("n02089973", "English foxhound"),
        ("n02087394", "Rhodesian ridgeback"),
        ("n02115641", "dingo"),
        ("n02099601", "golden retriever"),
        ("n02105641", "Old English sheepdog"),
    ),
    "imagemeow": (
        ("n02123045", "tabby cat"),
        ("n02123159", "tiger cat"),
        ("n02123394", "Persian cat"),
        ("n02123597", "Siamese cat"),
        ("n02124075", "Egyptian cat"),
        ("n02129165", "lion"),
        ("n02129604", "tiger"),
        ("n02128925", "jaguar"),
        ("n02128757", "snow leopard"),
        ("n02127052", "lynx"),
    ),
    "imagesquawk": (
        ("n01806143", "peacock"),
        ("n02007558", "flamingo"),
        ("n01818515", "macaw"),
        ("n02051845", "pelican"),
        ("n02056570", "king penguin"),
        ("n01614925", "bald eagle"),
        ("n01843383", "toucan"),
        ("n01518878", "ostrich"),
        ("n01860187", "black swan"),
        ("n01819313", "sulphur-crested cockatoo"),
    ),
    "imagefruit": (
        ("n07753275", "pineapple"),
        ("n07753592", "banana"),
        ("n07745940", "strawberry"),
        ("n07747607", "orange"),
        ("n07749582", "lemon"),
        ("n07768694", "pomegranate"),
        ("n07753113", "fig"),
        ("n07720875", "bell pepper"),
        ("n07718472", "cucumber"),
        ("n07742313", "Granny Smith"),
    ),
    "imageyellow": (
        ("n02206856", "bee"),
        ("n12057211", "yellow lady's slipper"),
        ("n07753592", "banana"),
        ("n07749582", "lemon"),
        ("n12144580", "corn"),
        ("n04146614", "school bus"),
        ("n03530642", "honeycomb"),
        ("n02129165", "lion"),
        ("n01773157", "black and gold garden spider"),
        ("n01531178", "goldfinch"),
    ),
}


class ImageNetSubset(DatasetSource):
    """Base of the 10-class ImageNet subsets (one subclass per subset)."""

    channels = 3
    image_size = (128, 128)
    num_classes = 10
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    #: fastai-style folder names that hold just this subset
    own_folders: ClassVar[tuple[str, ...]] = ()

    @dataclasses.dataclass(frozen=True)
    class Config(Config):
        image_size: int = 128  # Resize(N) + CenterCrop(N)

        def __post_init__(self) -> None:
            if self.image_size < 8:
                raise ValueError("image_size must be >= 8")

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        size = self.config.image_size  # type: ignore[attr-defined]
        self.image_size = (size, size)

    @property
    def wnids(self) -> tuple[str, ...]:
        return tuple(w for w, _ in SUBSETS[self.name])

    def search_dirs(self, root: str | None) -> list[Path]:
        return candidates(root, (self.name, *self.own_folders, *IMAGENET_FOLDERS))

    def _tree(self, root: str | None) -> Path | None:
        for d in self.search_dirs(root):
            train = d / "train"
            if train.is_dir() and all((train / w).is_dir() for w in self.wnids):
                return d
        return None

    def load(self, split: str, root: str | None, *, download: bool = False) -> RawSplit:
        if split not in ("train", "test"):
            raise DatasetError(f"{self.name}: unknown split {split!r}; use train or test")
        tree = self._tree(root)
        if tree is None and download:
            self._download(root)
            tree = self._tree(root)
        if tree is None:
            raise missing(
                self.name,
                split,
                [
                    f"train/<wnid>/ for the 10 wnids {self.wnids[0]} ... {self.wnids[-1]}",
                    "val/<wnid>/",
                ],
                self.search_dirs(root),
                "Point --data-dir at an ImageNet train/ + val/<wnid>/ tree (torchvision's "
                "ImageNet layout) or at a folder with just this subset",
                downloadable=self.name == "imagenette",
            )
        folder = tree / ("train" if split == "train" else "val")
        wnids = self.wnids
        if split == "test":
            if not folder.is_dir() or not any((folder / w).is_dir() for w in wnids):
                raise DatasetError(
                    f"{self.name}: {folder} has no <wnid>/ class folders; the validation "
                    f"images must be sorted into val/<wnid>/ (torchvision's ImageNet class "
                    f"does this once from the devkit)"
                )
        files = img.scan_class_tree(folder, wnids, dataset=self.name, allow_missing=split == "test")
        size = self.image_size[0]
        images, labels = img.load_cached(
            files,
            wnids,
            root=root,
            tag=f"{self.name}{size}-{split}",
            channels=3,
            size=size,
            dataset=self.name,
        )
        return RawSplit(images, labels, wnids, source=str(tree))

    def _download(self, root: str | None) -> None:
        if self.name != "imagenette":
            return
        import torchvision.datasets as tvd

        target = Path(root or ".").expanduser()
        target.mkdir(parents=True, exist_ok=True)
        try:
            for split in ("train", "val"):
                tvd.Imagenette(os.fspath(target), split=split, size="320px", download=True)
        except Exception as exc:  # network errors come in many types
            raise download_failed(self.name, exc) from None


def _subset(
    name: str, doc: str, own: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> type[ImageNetSubset]:
    aliases = ("Image" + name[5:].capitalize(), *extra)
    return type(
        name.capitalize(),
        (ImageNetSubset,),
        {
            "__doc__": doc,
            "name": name,
            "aliases": aliases,
            "own_folders": own,
            "__module__": __name__,
        },
    )


Imagenette = _subset(
    "imagenette",
    "ImageNette: 10 easy ImageNet classes (tench ... parachute), 128×128.",
    ("imagenette2", "imagenette2-320", "imagenette2-160"),
)
Imagewoof = _subset(
    "imagewoof",
    "ImageWoof: 10 ImageNet dog breeds, 128×128.",
    ("imagewoof2", "imagewoof2-320", "imagewoof2-160"),
)
Imagemeow = _subset("imagemeow", "ImageMeow: 10 ImageNet cats and big cats, 128×128.")
Imagesquawk = _subset(
    "imagesquawk", "ImageSquawk: 10 ImageNet birds, 128×128.", extra=("ImageSquack",)
)  # DataDAM's spelling
Imagefruit = _subset("imagefruit", "ImageFruit: 10 ImageNet fruits and vegetables, 128×128.")
Imageyellow = _subset("imageyellow", "ImageYellow: 10 yellowish ImageNet classes, 128×128.")

SUBSET_CLASSES: tuple[type[ImageNetSubset], ...] = (
    Imagenette,
    Imagewoof,
    Imagemeow,
    Imagesquawk,
    Imagefruit,
    Imageyellow,
)
