"""What every importer shares: options, the target dataset's constants, and building the SynSet.

A reader (one module per legacy format) only extracts tensors and says which space the images are
in; :func:`finish` records that space in the artifact's metadata (normalising ``[0, 1]`` pixels
with the dataset's mean/std on the way), validates shapes and labels, and optionally fits and
stores the ZCA transform.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from ..datasets import load_dataset
from ..errors import ArtifactError, ConfigError
from ..loop.provenance import versions
from ..registry import get_dataset
from ..synset import SynSet
from ..validation import check_finite, datasets_shaped, validate_synset

Space = Literal["normalized", "pixels"]

ZCA_FIT = ("ZCA (eps {eps}) fitted on the whole {dataset} training set after normalising it with "
           "the recorded mean/std, as MTT and DataDAM do with kornia's ZCAWhitening; condense "
           "reproduces it with condense.load_dataset('{dataset}').fit_zca(eps={eps})")


#: datasets whose sets the original code normalised with another dataset's statistics
PIPELINES = {
    "fashion-mnist": (
        "recorded Fashion-MNIST's own mean/std (0.2861/0.3530). DM's and DataDAM's official "
        "scripts have no Fashion-MNIST branch: a set made by running it through their MNIST "
        "branch is normalised with MNIST's values; if so, re-import with --mean 0.1307 --std "
        "0.3081, or it is evaluated in the wrong space (lower accuracy, no error)"),
}


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    """Everything ``condense import`` can be told about a legacy file."""

    dataset: str
    experiment: int = -1
    labels: Path | None = None
    lr: Path | None = None
    syn_lr: float | None = None
    zca: bool = False
    zca_eps: float = 0.1
    fit_zca: bool = False
    data_dir: str | None = None
    download: bool = False
    factor: int | None = None
    method: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    space: Literal["auto", "normalized", "pixels"] = "auto"
    class_major_labels: bool = False


@dataclasses.dataclass
class Extracted:
    """What a reader found in a legacy file."""

    images: Tensor
    labels: Tensor  # (N,) integer class ids, or (N, K) soft / one-hot labels
    space: Space
    method: str
    syn_lr: Tensor | None = None
    ipc: int | None = None  # storage budget when it differs from images per class (IDC)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ImportResult:
    synset: SynSet
    notes: list[str]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    class_names: tuple[str, ...]
    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    notes: tuple[str, ...] = ()


def dataset_info(opts: ImportOptions) -> DatasetInfo:
    """The registered dataset's constants (``--mean``/``--std`` override the normalisation)."""
    cls = get_dataset(opts.dataset)
    missing = [a for a in ("channels", "image_size", "num_classes")
               if getattr(cls, a, None) is None]
    if missing:
        raise ConfigError(f"dataset {cls.name!r} has no fixed {', '.join(missing)}; legacy sets "
                          f"can only be imported for datasets with fixed constants")
    notes: list[str] = []
    names = tuple(getattr(cls, "class_names", ()) or ())
    if len(names) != cls.num_classes:
        names = tuple(str(i) for i in range(cls.num_classes))
        notes.append(f"dataset {cls.name!r} declares no class names; "
                     f"recorded as '0'..'{cls.num_classes - 1}'")
    mean = tuple(opts.mean) if opts.mean else tuple(getattr(cls, "mean", ()) or ())
    std = tuple(opts.std) if opts.std else tuple(getattr(cls, "std", ()) or ())
    for label, values in (("mean", mean), ("std", std)):
        if len(values) != cls.channels:
            raise ConfigError(f"--{label} needs {cls.channels} value(s) for {cls.name}, "
                              f"got {len(values)}")
    if any(s <= 0 for s in std):
        raise ConfigError("--std values must be positive")
    return DatasetInfo(cls.name, names, int(cls.channels), tuple(cls.image_size), mean, std,
                       tuple(notes))


def as_tensor(value: Any, what: str, where: Path) -> Tensor:
    if not isinstance(value, Tensor):
        raise ArtifactError(f"{where}: expected {what} to be a tensor, "
                            f"found {type(value).__name__}")
    return value.detach().cpu()


def split_labels(labels: Tensor, num_classes: int, where: Path) -> tuple[Tensor, Tensor | None]:
    """``(hard, soft)``: hard int64 ids, plus the soft rows when they are not one-hot."""
    if labels.ndim == 1:
        if labels.is_floating_point() and not torch.equal(labels, labels.round()):
            raise ArtifactError(f"{where}: 1-D labels must be class ids, found fractions")
        hard = labels.long()
        soft = None
    elif labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise ArtifactError(f"{where}: soft labels have {labels.shape[1]} columns, the dataset "
                                f"has {num_classes} classes")
        soft = labels.float()
        hard = soft.argmax(1)
        one_hot = bool(((soft == 0) | (soft == 1)).all()) and bool((soft.sum(1) == 1).all())
        if one_hot:
            soft = None
    else:
        raise ArtifactError(f"{where}: labels must be (N,) or (N, K), got {tuple(labels.shape)}")
    if hard.numel() and (int(hard.min()) < 0 or int(hard.max()) >= num_classes):
        raise ArtifactError(f"{where}: labels run {int(hard.min())}..{int(hard.max())}, "
                            f"the dataset has classes 0..{num_classes - 1}; is --dataset right?")
    return hard, soft


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def finish(found: Extracted, path: Path, fmt: str, opts: ImportOptions) -> ImportResult:
    """Turn a reader's tensors into a validated SynSet whose metadata records their space."""
    info = dataset_info(opts)
    notes = list(info.notes) + list(found.notes)
    images = found.images.float()
    if images.ndim == 3 and info.channels == 1:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ArtifactError(f"{path}: images must be (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[1] != info.channels and images.shape[-1] == info.channels:
        images = images.permute(0, 3, 1, 2)
        notes.append("images were channel-last (N, H, W, C); transposed to (N, C, H, W)")
    if images.shape[1] != info.channels or tuple(images.shape[2:]) != info.image_size:
        c, h, w = (int(v) for v in images.shape[1:])
        fits = [n for n in datasets_shaped(c, h, w) if n != info.name]
        hint = f" ({', '.join(fits[:4])} have {c}×{h}×{w} images)" if fits else ""
        raise ArtifactError(
            f"{path}: images are {c}×{h}×{w}, dataset {info.name} is "
            f"{info.channels}×{info.image_size[0]}×{info.image_size[1]}; is --dataset "
            f"right?{hint}"
        )
    check_finite(images, "images", str(path))
    hard, soft = split_labels(found.labels, len(info.class_names), path)
    if hard.shape[0] != images.shape[0]:
        raise ArtifactError(f"{path}: {images.shape[0]} images but {hard.shape[0]} labels")
    if found.space == "normalized" and not (opts.mean or opts.std) and info.name in PIPELINES:
        notes.append(PIPELINES[info.name])
    if opts.zca and found.space == "pixels":
        raise ConfigError(f"--zca: a {fmt} set is stored in pixel space, not ZCA space")
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    if found.space == "pixels":
        images = (images - mean) / std
    counts = torch.bincount(hard, minlength=len(info.class_names))
    per_class = int(counts.max()) if len(counts) else 0
    if int(counts.min()) != per_class:
        notes.append(f"classes hold {int(counts.min())}..{per_class} images (unbalanced)")
    syn_lr = found.syn_lr
    if syn_lr is None and opts.syn_lr is not None:
        syn_lr = torch.tensor(float(opts.syn_lr))
    if syn_lr is not None and syn_lr.numel() != 1:
        raise ArtifactError(f"{path}: the learned lr must be one number, got shape "
                            f"{tuple(syn_lr.shape)}")
    zca_meta = None
    zca_mean = zca_transform = None
    if opts.zca:
        zca_meta = {"eps": opts.zca_eps, "stored": False,
                    "fit": ZCA_FIT.format(eps=opts.zca_eps, dataset=info.name)}
        if opts.fit_zca:
            if opts.mean or opts.std:
                raise ConfigError("--fit-zca uses the dataset's own mean/std; drop --mean/--std "
                                  "or fit the ZCA yourself")
            data = load_dataset(info.name, opts.data_dir, download=opts.download)
            zca = data.fit_zca(opts.zca_eps)
            zca_mean, zca_transform = zca.mean, zca.transform
            zca_meta["stored"] = True
        else:
            notes.append("images are in ZCA space and the ZCA transform is not stored: evaluators "
                         "must refit it (see meta 'zca'); pass --fit-zca to store it")
    elif opts.fit_zca:
        raise ConfigError("--fit-zca needs --zca (the set must be in ZCA space)")
    stat = path.stat()
    meta: dict[str, Any] = {
        "method": (opts.method or found.method).lower(),
        "method_config": {},
        "sampler": None,
        "sampler_config": {},
        "loop": {},
        "preset": None,
        "dataset": info.name,
        "dataset_config": {},
        "class_names": list(info.class_names),
        "channels": info.channels,
        "image_size": list(info.image_size),
        "mean": list(info.mean),
        "std": list(info.std),
        "zca": zca_meta,
        "ipc": found.ipc or per_class,
        "seed": None,
        "iterations": None,
        "label_type": "soft" if soft is not None else "hard",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "reproduce": None,
        "imported": {
            "format": fmt,
            "file": path.name,
            "sha256": sha256(path),
            "bytes": stat.st_size,
            "stored_space": found.space if not opts.zca else "normalized+zca",
            **found.details,
        },
    }
    synset = SynSet(images=images.contiguous(), labels=hard, meta=meta, soft_labels=soft,
                    syn_lr=syn_lr.detach().float().reshape(()) if syn_lr is not None else None,
                    zca_mean=zca_mean, zca_transform=zca_transform)
    validate_synset(synset, str(path))  # what condense.load would refuse is refused here
    return ImportResult(synset, notes)


def sibling(path: Path, old: str, new: str) -> Path | None:
    """``path`` with the last ``old`` in its name replaced by ``new``, if that file exists."""
    name = path.name
    i = name.rfind(old)
    if i < 0:
        return None
    candidate = path.with_name(name[:i] + new + name[i + len(old):])
    return candidate if candidate.exists() else None
