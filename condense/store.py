"""The artifact format: one ``.safetensors`` file per distilled set.

Tensors: ``images`` (N,C,H,W) float32, ``labels`` (N,) int64, optional ``soft_labels`` (N,K),
``syn_lr`` (scalar), ``zca_mean`` (D,) and ``zca_transform`` (D,D). Header metadata
(string -> string): ``condense_format`` = "synset", ``format_version``, and every key of
``SynSet.meta`` as a JSON string. See docs/reference/artifact-format.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import ArtifactError
from .fileio import atomic_write
from .synset import SynSet
from .validation import validate_synset

FORMAT_MARKER = "synset"
FORMAT_VERSION = 1
_OPTIONAL = ("soft_labels", "syn_lr", "zca_mean", "zca_transform")
REQUIRED_META = ("method", "dataset", "ipc", "class_names", "mean", "std", "image_size")


def save(synset: SynSet, path: str | os.PathLike[str]) -> Path:
    """Write ``synset`` atomically to ``path`` (a temp file renamed into place).

    Refuses (:class:`ArtifactError`) a set that :func:`load` would refuse: metadata lacking a
    key of :data:`REQUIRED_META`, or values :func:`condense.validation.validate_synset` rejects
    (NaN images, std <= 0, labels outside ``class_names`` ...), so that what ``save`` writes,
    ``load`` reads."""
    path = Path(path)
    validate_synset(synset, f"{path}: cannot save")
    missing = [k for k in REQUIRED_META if k not in synset.meta]
    if missing:
        raise ArtifactError(
            f"{path}: cannot save: the SynSet's metadata lacks {', '.join(missing)} (required "
            f"by condense.load: {', '.join(REQUIRED_META)}); sets from condense.distill carry "
            f"them, for others set synset.meta[...] first")
    tensors = {
        "images": synset.images.detach().to("cpu", torch.float32).contiguous().clone(),
        "labels": synset.labels.detach().to("cpu", torch.int64).contiguous().clone(),
    }
    for key in _OPTIONAL:
        value = getattr(synset, key)
        if value is not None:
            tensors[key] = value.detach().to("cpu").float().contiguous().clone()
    metadata = {"format": "pt", "condense_format": FORMAT_MARKER,
                "format_version": str(FORMAT_VERSION)}
    for key, value in synset.meta.items():
        if key in metadata:
            continue
        metadata[key] = json.dumps(value, sort_keys=True)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The decoded metadata of an artifact (validated, without loading the tensors)."""
    return _open(Path(path))[1]


def load(path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
         validate: bool = True) -> SynSet:
    """Read and validate a local artifact; raise ArtifactError for a truncated, foreign or newer
    file, and for an invalid set (:func:`condense.validation.validate_synset`: NaN images,
    unusable mean/std, labels outside ``class_names`` ...). ``validate=False`` skips the value
    checks (shapes are still checked), to inspect or repair such a set.
    (:func:`condense.load` also takes ``hf://`` paths.)"""
    path = Path(path)
    handle, meta = _open(path)
    with handle as f:
        keys = set(f.keys())
        tensors = {k: f.get_tensor(k).to(device) for k in keys}
    synset = SynSet(
        images=tensors["images"],
        labels=tensors["labels"],
        meta=meta,
        **{k: tensors.get(k) for k in _OPTIONAL},
    )
    if validate:
        validate_synset(synset, str(path))
    else:
        _check_shapes(synset, str(path))
    return synset


def content_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of an artifact's tensors: their names, dtypes, shapes and bytes, the metadata
    left out (so ``eval --into-metadata`` does not change it). Evaluation records carry it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
            header.pop("__metadata__", None)
            digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({_short(exc)})") from None
    return digest.hexdigest()


def _open(path: Path) -> tuple[Any, dict[str, Any]]:
    if not path.exists():
        raise ArtifactError(f"{path}: no such file")
    if path.is_dir():
        raise ArtifactError(f"{path}: is a folder; give the .safetensors file")
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
        raw = handle.metadata() or {}
        keys = set(handle.keys())
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ArtifactError(
            f"{path}: not a readable safetensors file ({_short(exc)}); it may be truncated or "
            f"not a condense artifact"
        ) from None
    if raw.get("condense_format") != FORMAT_MARKER:
        raise ArtifactError(
            f"{path}: a safetensors file but not a condense distilled set (no condense metadata); "
            f"convert legacy sets with `condense import`"
        )
    try:
        version = int(raw.get("format_version", "0"))
    except ValueError:
        raise ArtifactError(
            f"{path}: unreadable format_version {raw.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: written by a newer condense (format {version}; this one reads up to "
            f"{FORMAT_VERSION}); upgrade with `pip install -U condense-toolbox`"
        )
    if not {"images", "labels"} <= keys:
        raise ArtifactError(f"{path}: missing tensor(s) {sorted({'images', 'labels'} - keys)}")
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("format", "condense_format", "format_version"):
            continue
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ArtifactError(f"{path}: metadata {key!r} is not valid JSON") from None
    meta["format_version"] = version
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ArtifactError(f"{path}: metadata lacks {', '.join(missing)}")
    return handle, meta


def _check_shapes(s: SynSet, where: str) -> None:
    if s.images.ndim != 4:
        raise ArtifactError(f"{where}: images must be (N, C, H, W), got {tuple(s.images.shape)}")
    if s.labels.ndim != 1 or s.labels.shape[0] != s.images.shape[0]:
        raise ArtifactError(
            f"{where}: labels must be (N,) with N={s.images.shape[0]}, got {tuple(s.labels.shape)}"
        )
    if s.soft_labels is not None and s.soft_labels.shape[0] != s.images.shape[0]:
        raise ArtifactError(f"{where}: soft_labels must have one row per image")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
