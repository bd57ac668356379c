"""Image files -> one uint8 ``(N, C, H, W)`` tensor: listing class folders, decoding, caching.

Decoding uses Pillow on a thread pool (Pillow releases the GIL while decoding). Every image is
converted to the dataset's mode ("RGB" or "L"), then, if a target size is given, resized so its
shorter side equals the size (bilinear, antialiased) and centre-cropped to a square: the
``Resize(s) + CenterCrop(s)`` of the reference scripts, done once on uint8 pixels instead of on
every run. The result is cached (see :mod:`condense.datasets.cache`).
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
    mode = "RGB" if channels == 3 else "L"

    def one(path: Path) -> np.ndarray:
        return _decode_one(path, mode, size, dataset, strict_mode)

    workers = max(1, min(8, os.cpu_count() or 1))
    if len(paths) < 64 or workers == 1:
        arrays = [one(p) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            arrays = list(pool.map(one, paths, chunksize=256))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        odd = next(i for i, a in enumerate(arrays) if a.shape != first)
        raise DatasetError(
            f"{dataset}: images have different sizes ({first[1]}x{first[0]} in {paths[0].name}, "
            f"{arrays[odd].shape[1]}x{arrays[odd].shape[0]} in {paths[odd].name}); "
            f"pass --image-size N to resize and centre-crop them to N x N"
        )
    stacked = np.stack(arrays)  # (N, H, W, C)
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return images, labels


def _decode_one(path: Path, mode: str, size: int | None, dataset: str, strict: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if strict and mode == "L" and im.mode in _COLOUR_MODES:
                raise DatasetError(
                    f"{dataset}: {path} is a colour ({im.mode}) image but the dataset was asked "
                    f"for 1 channel; use channels=3 (the default) or convert the files to greyscale"
                )
            if size is not None and im.format == "JPEG":
                im.draft(mode, (size, size))  # DCT-domain downscale, still >= size
            im = im.convert(mode)
            if size is not None:
                im = _resize_center_crop(im, size)
            array = np.asarray(im, dtype=np.uint8)
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise DatasetError(
            f"{dataset}: cannot decode {path} ({exc}); the file is corrupt or truncated"
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def _resize_center_crop(im: object, size: int) -> object:
    from PIL import Image

    assert isinstance(im, Image.Image)
    w, h = im.size
    if (w, h) != (size, size):
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        if (nw, nh) != (w, h):
            im = im.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return im


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
