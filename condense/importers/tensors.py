"""Plain image/label tensor pairs: ``<x>images<y>.pt`` + ``<x>labels<y>.pt`` (or one file holding
``(images, labels)``).

Covers DataDAM's ``synthetic_initializations/*_{images,labels}.pt``, DC-BENCH's k-means/random
``<DS>_IPC<n>_images.pt``/``_labels.pt``, and class-ordered single tensors such as the ECCV'24
challenge files (``--class-major-labels``: labels 0,0,…,1,1,… implied by the order). The image
space is ``--space``: ``normalized`` (mean/std applied), ``pixels`` (``[0, 1]`` floats, or uint8
``0..255``), or ``auto``: uint8 is pixels, floats with negative values are normalised, anything
else is ambiguous and must be stated.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..errors import ArtifactError, ConfigError
from ._common import Extracted, ImportOptions, Space, as_tensor, dataset_info, sibling
from ._safe_load import safe_torch_load


def _space(images: Tensor, opts: ImportOptions, where: Path) -> tuple[Tensor, Space, str]:
    if images.dtype == torch.uint8:
        if opts.space == "normalized":
            raise ConfigError(f"{where}: uint8 images cannot be normalised values")
        return images.float() / 255.0, "pixels", "uint8 0..255"
    images = images.float()
    if opts.space != "auto":
        return images, opts.space, opts.space
    if float(images.min()) < -0.05:
        return images, "normalized", "auto: negative values, so normalised"
    raise ConfigError(f"{where}: cannot tell whether these float images are [0, 1] pixels or "
                      f"normalised values; pass --space pixels or --space normalized")


def read(path: Path, opts: ImportOptions) -> Extracted:
    obj = safe_torch_load(path)
    labels: Tensor | None = None
    notes: list[str] = []
    if isinstance(obj, (list, tuple)) and len(obj) == 2:
        images, labels = as_tensor(obj[0], "images", path), as_tensor(obj[1], "labels", path)
    elif isinstance(obj, dict) and {"images", "labels"} <= set(obj):
        images = as_tensor(obj["images"], "images", path)
        labels = as_tensor(obj["labels"], "labels", path)
    else:
        images = as_tensor(obj, "the file's content", path)
        label_file = opts.labels or sibling(path, "images", "labels")
        if label_file is not None:
            labels = as_tensor(safe_torch_load(label_file), "labels", label_file)
            notes.append(f"labels from {label_file.name}")
    if labels is None:
        if not opts.class_major_labels:
            raise ArtifactError(f"{path}: no labels (no '…labels…' file next to it); pass "
                                f"--labels FILE, or --class-major-labels if the images are in "
                                f"class order with the same count per class")
        k = len(dataset_info(opts).class_names)
        if images.shape[0] % k:
            raise ArtifactError(f"{path}: {images.shape[0]} images do not split evenly into {k} "
                                f"classes")
        labels = torch.arange(k).repeat_interleave(images.shape[0] // k)
        notes.append("labels implied by class order (--class-major-labels)")
    images, space, how = _space(images, opts, path)
    return Extracted(images, labels, space, "imported", details={"space": how}, notes=notes)
