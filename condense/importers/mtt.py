"""MTT (and DATM / FTD-style) runs: ``images_best.pt`` + ``labels_best.pt`` (+ ``lr_best.pt``).

Bare tensors. The images are normalised with the dataset's mean/std and, when the run used
``--zca``, ZCA-whitened on top (pass ``--zca``). Labels are class ids or, for DATM, soft labels
``(N, K)``. The learned learning rate is ``lr_best.pt`` when the code saved it (DATM does; the
original MTT does not, so give ``--syn-lr`` from the paper's table). FILE may be
``images_best.pt`` or the run folder; a folder holding ``images_best_0.pt``, ``images_best_1.pt``,
… (MTT's split TinyImageNet IPC 50 upload) is concatenated in index order.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from ..errors import ArtifactError
from ._common import Extracted, ImportOptions, as_tensor, sibling
from ._safe_load import safe_torch_load

_PART = re.compile(r"^(images|labels)_best_(\d+)\.pt$")


def _parts(folder: Path, kind: str) -> list[Path]:
    found = [(int(m.group(2)), p) for p in folder.iterdir()
             if (m := _PART.match(p.name)) and m.group(1) == kind]
    return [p for _, p in sorted(found)]


def _load_tensor(path: Path, what: str) -> Tensor:
    return as_tensor(safe_torch_load(path), what, path)


def _files(path: Path, opts: ImportOptions) -> tuple[list[Path], list[Path], Path | None]:
    if path.is_dir():
        single = path / "images_best.pt"
        images = [single] if single.exists() else _parts(path, "images")
        if not images:
            raise ArtifactError(f"{path}: no images_best.pt (or images_best_0.pt …) in this folder")
        if opts.labels:
            labels = [opts.labels]
        elif (path / "labels_best.pt").exists():
            labels = [path / "labels_best.pt"]
        else:
            labels = _parts(path, "labels")
        lr = opts.lr or ((path / "lr_best.pt") if (path / "lr_best.pt").exists() else None)
    else:
        images = [path]
        found = opts.labels or sibling(path, "images", "labels")
        labels = [found] if found else []
        lr = opts.lr or sibling(path, "images", "lr")
    if not labels:
        raise ArtifactError(f"{path}: no labels_best.pt next to the images; pass --labels FILE")
    return images, labels, lr


def read(path: Path, opts: ImportOptions) -> Extracted:
    image_files, label_files, lr_file = _files(path, opts)
    images = torch.cat([_load_tensor(p, "images") for p in image_files])
    labels = torch.cat([_load_tensor(p, "labels") for p in label_files])
    syn_lr = None
    if lr_file is not None:
        syn_lr = _load_tensor(lr_file, "the learned lr").float()
    details: dict[str, object] = {
        "files": [p.name for p in image_files + label_files + ([lr_file] if lr_file else [])],
    }
    notes: list[str] = []
    if syn_lr is None and opts.syn_lr is None:
        notes.append("no learned lr (lr_best.pt) found; pass --syn-lr to record the one the "
                     "paper evaluates with")
    if not opts.zca:
        notes.append("recorded as not ZCA-whitened; MTT runs with --zca need --zca here")
    method = "datm" if labels.ndim == 2 else "mtt"
    return Extracted(images, labels, "normalized", method, syn_lr=syn_lr, details=details,
                     notes=notes)
