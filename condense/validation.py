"""What makes a distilled set usable, beyond what the file format can express.

:func:`validate_synset` checks a set on its own (shapes, finite values, the recorded mean/std,
labels within ``class_names``); :func:`check_against_data` checks it against the real data it is
about to be evaluated on (image shape, classes). :func:`condense.load`, ``condense eval`` and
``condense import`` all go through these, so each problem is one line, found before any work.
See docs/reference/artifact-format.md ("Validation").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .errors import ArtifactError, DatasetError
from .realdata import RealData
from .registry import components
from .synset import SynSet

#: names of channel counts in messages
CHANNELS = {1: "1-channel (greyscale)", 3: "3-channel (RGB)"}


def nonfinite_rows(tensor: Tensor) -> Tensor:
    """Indices of the rows (images) of ``tensor`` that hold a NaN or an infinity."""
    if tensor.numel() == 0 or tensor.ndim == 0:
        return torch.nonzero(~torch.isfinite(tensor.reshape(1))).flatten()
    return torch.nonzero(~torch.isfinite(tensor.reshape(tensor.shape[0], -1)).all(1)).flatten()


def check_finite(tensor: Tensor, what: str, where: str, *,
                 class_names: Sequence[str] | None = None, labels: Tensor | None = None) -> None:
    """Raise ArtifactError if ``tensor`` holds NaN or infinite values (the one finiteness check
    of ``load``, ``eval`` and ``import``); the message counts the rows and names the first."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        rows = nonfinite_rows(tensor)
        first = int(rows[0]) if len(rows) else 0
        which = f"first: {what[:-1] if what.endswith('s') else what} {first}"
        if labels is not None and first < len(labels):
            c = int(labels[first])
            name = class_names[c] if class_names and 0 <= c < len(class_names) else str(c)
            which += f", class {name!r}"
        count = f"{len(rows)} of {tensor.shape[0]}" if tensor.ndim else "the value"
        raise ArtifactError(
            f"{where}: {what} contain NaN or infinite values ({count}; {which}); the set is "
            f"unusable (a diverged run or a damaged export): distil or export it again")


def _numbers(value: Any, key: str, channels: int, where: str, *, positive: bool) -> None:
    ok = (isinstance(value, (list, tuple)) and len(value) == channels
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                  and (v > 0 or not positive) for v in value))
    if not ok:
        need = "positive number" if positive else "number"
        raise ArtifactError(
            f"{where}: metadata {key!r} must be a list of {channels} {need}(s), one per image "
            f"channel, got {value!r}; repair it (docs/reference/artifact-format.md, "
            f"\"Validation\")")


def validate_synset(synset: SynSet, where: str = "the set", *, finite: bool = True) -> None:
    """Raise ArtifactError (one line) for the first thing that makes ``synset`` unusable.

    Shapes: images ``(N, C, H, W)``, labels ``(N,)`` integer, soft labels ``(N, K)``. Metadata
    present in ``meta``: ``mean``/``std`` one finite number per channel (std > 0), ``class_names``
    a non-empty list of strings covering every label, ``ipc`` a positive integer. ``finite``:
    images, soft labels, the learned lr and ZCA tensors hold no NaN or infinity.
    """
    images, labels, meta = synset.images, synset.labels, synset.meta
    if images.ndim != 4:
        raise ArtifactError(f"{where}: images must be (N, C, H, W), got {tuple(images.shape)}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ArtifactError(
            f"{where}: labels must be (N,) with N={images.shape[0]}, got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ArtifactError(f"{where}: labels must be integer class ids, got {labels.dtype}")
    soft = synset.soft_labels
    if soft is not None and (soft.ndim != 2 or soft.shape[0] != images.shape[0]):
        raise ArtifactError(f"{where}: soft_labels must be (N, K) with one row per image, got "
                            f"{tuple(soft.shape)}")
    channels = int(images.shape[1])
    for key in ("mean", "std"):
        if key in meta:
            _numbers(meta[key], key, channels, where, positive=key == "std")
    names = meta.get("class_names")
    if "class_names" in meta and not (isinstance(names, (list, tuple)) and names
                                      and all(isinstance(n, str) for n in names)):
        raise ArtifactError(f"{where}: metadata 'class_names' must be a non-empty list of "
                            f"strings, got {names!r}")
    if "ipc" in meta and not (isinstance(meta["ipc"], int) and not isinstance(meta["ipc"], bool)
                              and meta["ipc"] >= 1):
        raise ArtifactError(f"{where}: metadata 'ipc' must be a positive integer, "
                            f"got {meta['ipc']!r}")
    if labels.numel():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0:
            raise ArtifactError(f"{where}: labels run {lo}..{hi}; class ids start at 0")
        if names and hi >= len(names):
            raise ArtifactError(
                f"{where}: labels run {lo}..{hi} but metadata 'class_names' has {len(names)} "
                f"name(s) (classes 0..{len(names) - 1}); the labels or the class names are wrong")
    if names and soft is not None and soft.shape[1] != len(names):
        raise ArtifactError(f"{where}: soft_labels have {soft.shape[1]} columns but metadata "
                            f"'class_names' has {len(names)} classes")
    if finite:
        check_finite(images, "images", where, class_names=names, labels=labels)
        for key in ("soft_labels", "syn_lr", "zca_mean", "zca_transform"):
            value = getattr(synset, key)
            if value is not None:
                check_finite(value, key, where)


def _shape(c: int, h: int, w: int) -> str:
    return f"{CHANNELS.get(c, f'{c}-channel')} {h}×{w}"


def datasets_shaped(c: int, h: int, w: int) -> list[str]:
    """Registered datasets whose fixed image shape is ``c×h×w``."""
    found = []
    for name, (cls, _) in components("datasets").items():
        size = tuple(getattr(cls, "image_size", ()) or ())
        if getattr(cls, "channels", None) == c and size == (h, w):
            found.append(name)
    return sorted(found)


def check_against_data(synset: SynSet, data: RealData, where: str | None = None) -> None:
    """Raise DatasetError if ``synset`` cannot be evaluated on ``data``: another image shape,
    another number of classes, or other class names. The message says what the set has, what
    the data has, and which change fits (a dataset setting, another folder, another dataset)."""
    _, c, h, w = (int(v) for v in synset.images.shape)
    at = f"{where}: " if where else ""
    real = data.spec
    rc, (rh, rw) = real.channels, real.image_size
    recorded = synset.meta.get("dataset", "?")
    settings = set(data.source.config.to_dict()) if data.source.config is not None else set()
    if (c, h, w) != (rc, rh, rw):
        head = (f"{at}the set holds {_shape(c, h, w)} images but {data.name} gives "
                f"{_shape(rc, rh, rw)} images")
        if c != rc and "channels" in settings:
            fix = f"load the data with --data-set channels={c}"
            if (h, w) != (rh, rw) and h == w and "image_size" in settings:
                fix += f" --image-size {h}"
        elif c == rc and h == w and "image_size" in settings:
            fix = f"load the data at the set's size: --image-size {h}"
        else:
            others = [n for n in datasets_shaped(c, h, w) if n != data.name]
            hint = f"; {', '.join(others[:4])} have {c}×{h}×{w} images" if others else ""
            if recorded == data.name:
                fix = (f"the set was not made from {data.name}: its metadata names the wrong "
                       f"dataset (re-import it with the right --dataset{hint})")
            else:
                fix = f"evaluate it against the data it was made from ({recorded!r}{hint})"
        raise DatasetError(f"{head}; {fix}")
    names = list(synset.meta.get("class_names") or [])
    k = len(names) if names else (int(synset.labels.max()) + 1 if synset.labels.numel() else 0)
    real_names = list(data.class_names)
    source = f" in {data.train.source}" if data.train.source not in ("", "memory") else ""
    if k != len(real_names):
        listed = f" ({', '.join(names[:5])}{', …' if len(names) > 5 else ''})" if names else ""
        raise DatasetError(
            f"{at}the set has {k} classes{listed} but the {data.name} data{source} has "
            f"{len(real_names)} ({', '.join(real_names[:5])}"
            f"{', …' if len(real_names) > 5 else ''}); evaluate it against the data it was "
            f"distilled from (--data-dir)")
    placeholder = names == [str(i) for i in range(k)]  # imported without class names
    if names and not placeholder and names != real_names:
        diff = next(i for i, (a, b) in enumerate(zip(names, real_names, strict=True)) if a != b)
        raise DatasetError(
            f"{at}the set's classes differ from the {data.name} data{source} (class {diff} "
            f"is {names[diff]!r} in the set, {real_names[diff]!r} in the data); evaluate it "
            f"against the data it was distilled from (--data-dir)")


__all__ = ["CHANNELS", "check_against_data", "check_finite", "datasets_shaped", "nonfinite_rows",
           "validate_synset"]
