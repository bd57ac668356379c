"""Image files -> one uint8 ``(N, C, H, W)`` tensor: listing class folders, decoding, caching.

Files are decoded with torchvision's libjpeg/libpng decoders (Pillow for other formats, and for
any file those refuse, so a damaged file always gets Pillow's clear error). Every image is
converted to the dataset's channel count (greyscale, palette and RGBA files to RGB, or to one
channel), then, if a target size is given, resized so its shorter side equals the size
(bilinear, antialiased) and centre-cropped: torchvision's ``Resize(s) + CenterCrop(s)`` of the
reference scripts, done once on uint8 pixels instead of on every run. The result is cached (see
:mod:`condense.datasets.cache`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DatasetError
from . import cache

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_COLOUR_MODES = {"RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"}


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, like torchvision's ImageFolder), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if is_image(f)]
    return out


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` (hidden ones skipped)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def scan_class_tree(
    folder: Path,
    classes: Sequence[str],
    *,
    sub: str = "",
    dataset: str,
    allow_missing: bool = False,
) -> list[tuple[Path, int]]:
    """``(file, label)`` for every image in ``folder/<class>/<sub>``; an empty class is an error."""
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        d = folder / name / sub if sub else folder / name
        if not d.is_dir():
            if allow_missing:
                continue
            raise DatasetError(f"{dataset}: class folder {d} is missing")
        found = list_images(d)
        if not found and not allow_missing:
            raise DatasetError(
                f"{dataset}: class {name!r} has no images in {d} "
                f"(expected files ending in {', '.join(IMAGE_EXTENSIONS[:3])} ...)"
            )
        files += [(p, label) for p in found]
    return files


def decode(
    files: Sequence[tuple[Path, int]],
    *,
    channels: int,
    size: int | None,
    dataset: str,
    strict_mode: bool = False,
) -> tuple[Tensor, Tensor]:
    """Decode ``files`` into ``(images uint8 (N, C, s, s), labels int64 (N,))``.

    ``size=None`` keeps the native size, which must then be the same for every image.
    ``strict_mode``: asking for 1 channel from a colour file raises instead of converting.
    """
    if not files:
        raise DatasetError(f"{dataset}: no image files found")
    paths = [p for p, _ in files]

    def one(path: Path) -> Tensor:
        return _decode_one(path, channels, size, dataset, strict_mode)

    first = one(paths[0])
    out = torch.empty((len(paths), *first.shape), dtype=torch.uint8)  # filled in place
    out[0] = first
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, image in enumerate(pool.map(one, paths[1:], chunksize=256), 1):
            if image.shape != first.shape:
                raise DatasetError(
                    f"{dataset}: images have different sizes ({first.shape[2]}x{first.shape[1]} "
                    f"in {paths[0].name}, {image.shape[2]}x{image.shape[1]} in {paths[i].name}); "
                    f"pass --image-size N to resize and centre-crop them to N x N"
                )
            out[i] = image
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return out, labels


def _decode_one(path: Path, channels: int, size: int | None, dataset: str, strict: bool) -> Tensor:
    """One file -> uint8 ``(C, H, W)``: torchvision's decoders first, Pillow for the rest."""
    image = None if strict else _decode_fast(path, channels)
    if image is None:
        image = _decode_pil(path, channels, dataset, strict)
    if size is not None:
        image = resize_center_crop(image, size)
    return image


def _decode_fast(path: Path, channels: int) -> Tensor | None:
    """torchvision's libjpeg/libpng decode (2-4x faster than Pillow); None = let Pillow try."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if path.suffix.lower() in (".jpg", ".jpeg") and not raw.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None  # no end-of-image marker: truncated; Pillow gives the clear error
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    try:
        image = decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=mode)
    except (RuntimeError, ValueError):
        return None
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != channels:
        return None
    return image


def _decode_pil(path: Path, channels: int, dataset: str, strict: bool) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    mode = "RGB" if channels == 3 else "L"
    try:
        with Image.open(path) as im:
            if strict and mode == "L" and im.mode in _COLOUR_MODES:
                raise DatasetError(
                    f"{dataset}: {path} is a colour ({im.mode}) image but the dataset was asked "
                    f"for 1 channel; use channels=3 (the default) or convert the files to greyscale"
                )
            array = np.array(im.convert(mode), dtype=np.uint8)
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise DatasetError(
            f"{dataset}: cannot decode {path} ({exc}); the file is corrupt or truncated"
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def resize_center_crop(image: Tensor, size: int) -> Tensor:
    """torchvision's ``Resize(size)`` (shorter side, bilinear, antialias) + ``CenterCrop``."""
    from torchvision.transforms.v2 import functional as F

    h, w = image.shape[-2:]
    if (h, w) == (size, size):
        return image
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)
    new_h, new_w = (size, new_long) if h <= w else (new_long, size)
    if (new_h, new_w) != (h, w):
        image = F.resize(image, [new_h, new_w], antialias=True)
    return F.center_crop(image, [size, size]).contiguous()


def load_cached(
    files: Sequence[tuple[Path, int]],
    class_names: tuple[str, ...],
    *,
    root: str | None,
    tag: str,
    channels: int,
    size: int | None,
    dataset: str,
    strict_mode: bool = False,
    extra_files: Sequence[Path] = (),
) -> tuple[Tensor, Tensor]:
    """:func:`decode` through the cache: the first call decodes and stores, later ones read."""
    params = {
        "channels": channels,
        "size": size,
        "classes": list(class_names),
        "strict": strict_mode,
    }
    key = cache.file_key(tag, files, params, extra_files=extra_files)
    path = cache.entry_path(root, tag, key)
    hit = cache.read(path)
    if hit is not None and hit[2] == class_names:
        return hit[0], hit[1]
    images, labels = decode(
        files, channels=channels, size=size, dataset=dataset, strict_mode=strict_mode
    )
    cache.write(path, images, labels, class_names)
    return images, labels
