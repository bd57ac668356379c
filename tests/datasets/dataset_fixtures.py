"""Writers of tiny copies of every on-disk dataset format, laid out as the originals are.

Each class gets a recognisable flat colour (``colour(label)``) so tests can check that labels
follow the pixels after decoding, whatever the format.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import torch

from condense.datasets.imagenet_subsets import SUBSETS

WNIDS = ("n01629819", "n01443537", "n01641577")  # wnids.txt order: not sorted on purpose
SORTED_WNIDS = tuple(sorted(WNIDS))


def colour(label: int) -> int:
    """The grey level used for class ``label`` (distinct after JPEG round-off)."""
    return 20 + 23 * (label % 10)


def _flat(n_per_class: int, classes: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(classes), n_per_class)
    images = np.stack([np.full(shape, colour(int(y)), dtype=np.uint8) for y in labels])
    return images, labels


# -- IDX (MNIST / Fashion-MNIST) ------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def make_idx(root: Path, folder: str = "MNIST") -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 3), ("t10k", 1)):
        x, y = _flat(n, 10, (28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", y)
    return raw


# -- CIFAR python batches ---------------------------------------------------------
def _py2_pickle(obj: object) -> bytes:
    """Protocol 2 with numpy's pre-2.0 module path, like the files on the CIFAR site."""
    return pickle.dumps(obj, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )


def _cifar_batch(x: np.ndarray, y: np.ndarray, label_key: str) -> bytes:
    return _py2_pickle(
        {
            "batch_label": "fixture",
            label_key: [int(v) for v in y],
            "data": x.reshape(len(x), -1),
            "filenames": [f"{i}.png" for i in range(len(y))],
        }
    )


def make_cifar10(root: Path) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i in range(1, 6):
        x, y = _flat(1, 10, (3, 32, 32))
        x[:, 0, 0, 0] = i  # make the batches distinguishable
        (d / f"data_batch_{i}").write_bytes(_cifar_batch(x, y, "labels"))
    x, y = _flat(1, 10, (3, 32, 32))
    (d / "test_batch").write_bytes(_cifar_batch(x, y, "labels"))
    names = [
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
    ]
    (d / "batches.meta").write_bytes(_py2_pickle({"label_names": names, "num_vis": 3072}))
    return d


def make_cifar100(root: Path) -> Path:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for split, n in (("train", 2), ("test", 1)):
        x, y = _flat(n, 100, (3, 32, 32))
        batch = {
            "fine_labels": [int(v) for v in y],
            "coarse_labels": [int(v) // 5 for v in y],
            "data": x.reshape(len(x), -1),
        }
        (d / split).write_bytes(_py2_pickle(batch))
    names = [f"fine{i:03d}" for i in range(100)]
    (d / "meta").write_bytes(_py2_pickle({"fine_label_names": names, "coarse_label_names": []}))
    return d


# -- SVHN .mat ----------------------------------------------------------------------------------
def make_svhn(root: Path) -> Path:
    import scipy.io

    d = root / "svhn"
    d.mkdir(parents=True)
    for split, n in (("train", 2), ("test", 1)):
        x, y = _flat(n, 10, (32, 32, 3))  # (N, H, W, C)
        stored = np.where(y == 0, 10, y).reshape(-1, 1)  # digit 0 is stored as 10
        scipy.io.savemat(d / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": stored})
    return d


# -- image files --------------------------------------------------------------------------------
def save_image(path: Path, value: int, size: tuple[int, int], mode: str = "RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fill: object = value if mode in ("L", "P") else tuple([value] * len(mode))
    if mode == "RGBA":
        fill = (value, value, value, 255)
    im = Image.new(mode, size, fill)
    if mode == "P":
        im.putpalette([v for v in range(256) for _ in range(3)])  # a grey palette
    if path.suffix.lower() in (".jpeg", ".jpg"):
        im.save(path, quality=95)
    else:
        im.save(path)


def make_tiny_imagenet(root: Path, *, reorganised: bool = False, per_class: int = 3) -> Path:
    t = root / "tiny-imagenet-200"
    (t / "train").mkdir(parents=True)
    (t / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (t / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in WNIDS))
    for w in WNIDS:
        label = SORTED_WNIDS.index(w)
        for k in range(per_class):
            mode = "L" if k == 0 else "RGB"  # a few TinyImageNet JPEGs are greyscale
            save_image(t / "train" / w / "images" / f"{w}_{k}.JPEG", colour(label), (64, 64), mode)
        (t / "train" / w / f"{w}_boxes.txt").write_text("")
    lines = []
    for k, w in enumerate(WNIDS * 2):
        label = SORTED_WNIDS.index(w)
        name = f"val_{k}.JPEG"
        if reorganised:
            save_image(t / "val" / w / "images" / name, colour(label), (64, 64))
        else:
            save_image(t / "val" / "images" / name, colour(label), (64, 64))
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    if not reorganised:
        (t / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    for k in range(2):  # unlabelled: must never be read
        save_image(t / "test" / "images" / f"test_{k}.JPEG", 250, (64, 64))
    return t


def make_packed_tiny(root: Path, *, channels: int = 3, classes: tuple[str, ...] = WNIDS) -> Path:
    """The DM/DataDAM ``tinyimagenet.pt``: uint8 (N, 3, 64, 64) + labels + class list."""
    out = {"classes": list(classes)}
    for split, n in (("train", 2), ("val", 1)):
        labels = torch.arange(len(classes)).repeat_interleave(n)
        images = torch.stack(
            [torch.full((channels, 64, 64), colour(int(c)), dtype=torch.uint8) for c in labels]
        )
        out[f"images_{split}"], out[f"labels_{split}"] = images, labels
    path = root / "tinyimagenet.pt"
    root.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return path


IMAGEFOLDER_CLASSES = ("bird", "cat", "dog")


def make_imagefolder(
    root: Path, size: tuple[int, int] = (20, 16), modes: tuple[str, ...] = ("RGB", "L", "RGBA", "P")
) -> Path:
    for split, n in (("train", 4), ("val", 1)):
        for label, cls in enumerate(IMAGEFOLDER_CLASSES):
            for k in range(n):
                mode = modes[k % len(modes)]
                ext = ".jpg" if mode in ("RGB", "L") else ".png"
                save_image(root / split / cls / f"{k}{ext}", colour(label), size, mode)
    return root


def make_imagenet(root: Path, subsets: tuple[str, ...] = tuple(SUBSETS)) -> Path:
    """An ImageNet-style train/ + val/<wnid>/ tree holding the wnids of ``subsets``."""
    base = root / "imagenet"
    wnids = sorted({w for s in subsets for w, _ in SUBSETS[s]})
    for i, w in enumerate(wnids):
        for k in range(2):
            save_image(base / "train" / w / f"{w}_{k}.JPEG", colour(i), (40, 30))
        save_image(base / "val" / w / f"ILSVRC2012_val_{i:08d}.JPEG", colour(i), (30, 40))
    return base
