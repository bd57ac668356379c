"""IDC (snu-mllab/Efficient-Dataset-Condensation): ``data.pt`` = ``(data, target)``.

The images are **unnormalised** ``[0, 1]`` pixels; on import they are normalised with the
dataset's mean/std (recorded), so the artifact lives in the same space as every other condense
set. IDC stores a multi-formation set: each stored image holds ``factor × factor`` smaller images.
They are decoded exactly as IDC's ``test.py`` does (per class, crop the grid row by row, upsample
each crop bilinearly back to full size), so the artifact holds ``factor²`` times as many images
while ``ipc`` records the storage budget the paper reports. ``--factor`` defaults to the
``factor<F>`` in the file's folder name (IDC's result folders carry it).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ArtifactError, ConfigError
from ._common import Extracted, ImportOptions, as_tensor
from ._safe_load import safe_torch_load

_FACTOR = re.compile(r"factor(\d+)")


def decode_zoom(images: Tensor, factor: int) -> Tensor:
    """IDC's ``decode_zoom``: ``(n, C, H, W)`` -> ``(factor² · n, C, H, W)``, crop-major."""
    size = images.shape[-1]
    h = images.shape[-1]
    remained = h % factor
    if remained:
        images = F.pad(images, (0, factor - remained, 0, factor - remained), value=0.5)
    step = math.ceil(h / factor)
    crops = [images[:, :, i * step:(i + 1) * step, j * step:(j + 1) * step]
             for i in range(factor) for j in range(factor)]
    return F.interpolate(torch.cat(crops), size=size, mode="bilinear", align_corners=False)


def read(path: Path, opts: ImportOptions) -> Extracted:
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and {"data", "target"} <= set(obj):
        obj = (obj["data"], obj["target"])
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2):
        raise ArtifactError(f"{path}: not an IDC data.pt (expected (data, target), found "
                            f"{type(obj).__name__})")
    images = as_tensor(obj[0], "data", path).float()
    labels = as_tensor(obj[1], "target", path)
    factor = opts.factor
    notes: list[str] = []
    if factor is None:
        m = _FACTOR.findall(str(path.resolve()))
        if not m:
            raise ConfigError(f"{path}: IDC sets are stored multi-formation; pass --factor F (the "
                              f"-f the set was condensed with, 'factor<F>' in IDC's result folder "
                              f"names; 1 if already decoded)")
        factor = int(m[-1])
        notes.append(f"--factor {factor} taken from the path")
    if factor < 1:
        raise ConfigError("--factor must be >= 1")
    lo, hi = float(images.min()), float(images.max())
    if lo < -0.05 or hi > 1.05:
        notes.append(f"pixel values span {lo:.2f}..{hi:.2f}, outside IDC's [0, 1]; check the file")
    hard = labels if labels.ndim == 1 else labels.argmax(1)
    stored_ipc = None
    if factor > 1:
        parts, targets = [], []
        for c in torch.unique(hard, sorted=True).tolist():
            idx = (hard == c).nonzero().flatten()
            parts.append(decode_zoom(images[idx], factor))
            targets.append(labels[idx].repeat(factor * factor, *([1] * (labels.ndim - 1))))
        counts = torch.bincount(hard.long())
        stored_ipc = int(counts.max())
        images, labels = torch.cat(parts), torch.cat(targets)
    details = {"factor": factor, "normalised_on_import": True, "decode": "IDC decode_zoom"}
    return Extracted(images, labels, "pixels", "idc", ipc=stored_ipc, details=details, notes=notes)
