"""The decoded-tensor cache: image folders are decoded once and kept as uint8 safetensors files.

A cache entry is keyed by a hash of everything its pixels depend on: the sorted list of source
files with their sizes and modification times, the labels, the target size and the channel
count. Editing, adding or removing one image therefore changes the key and the folder is decoded
again; an unchanged folder is read back in well under a second.

Where entries live: ``$CONDENSE_CACHE_DIR`` if set, else ``<data-dir>/.cache`` (the only thing
condense ever writes into a data folder), else, when the data folder is read-only (a system
location), ``default_data_dir()/.cache``. Entries are written to a temporary file and renamed
into place, so a reader never sees half a file and an interrupted decode leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..fileio import atomic_write
from ..realdata import default_data_dir

#: bump when the decoding itself changes (resampling filter, crop rule ...)
CACHE_FORMAT = 2
#: False inside :func:`no_writes` (this thread / task only)
_WRITES: contextvars.ContextVar[bool] = contextvars.ContextVar("condense_cache_writes",
                                                               default=True)


@contextlib.contextmanager
def no_writes() -> Iterator[None]:
    """Read cache entries but write none (``condense run --dry-run``: nothing is written)."""
    token = _WRITES.set(False)
    try:
        yield
    finally:
        _WRITES.reset(token)


def cache_dir(root: str | os.PathLike[str] | None) -> Path:
    """The folder cache entries for data under ``root`` go to (created on first write)."""
    env = os.environ.get("CONDENSE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if root is not None:
        r = Path(root).expanduser()
        if _writable(r):
            return r / ".cache"
    return default_data_dir() / ".cache"


def _writable(folder: Path) -> bool:
    cache = folder / ".cache"
    if cache.is_dir():
        return os.access(cache, os.W_OK)
    return folder.is_dir() and os.access(folder, os.W_OK)


def file_key(
    tag: str,
    files: Iterable[tuple[Path, int]],
    params: Mapping[str, Any],
    *,
    extra_files: Iterable[Path] = (),
) -> str:
    """A hex key over ``(path, label, size, mtime)`` of every file plus ``params``."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"format": CACHE_FORMAT, "tag": tag, "params": dict(params)}, sort_keys=True
        ).encode()
    )
    rows = sorted((os.fspath(p), int(label)) for p, label in files)
    for path, label in rows:
        st = os.stat(path)
        h.update(f"{path}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for path in extra_files:
        st = os.stat(path)
        h.update(f"extra\0{os.fspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def entry_path(root: str | os.PathLike[str] | None, tag: str, key: str) -> Path:
    return cache_dir(root) / f"{tag}-{key}.safetensors"


def read(path: Path) -> tuple[Tensor, Tensor, tuple[str, ...]] | None:
    """``(images, labels, class_names)`` of a cache entry, or ``None`` if absent or unreadable.

    A damaged entry is not an error: it is simply rebuilt from the source files.
    """
    if not path.is_file():
        return None
    try:
        with safe_open(os.fspath(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            images = fh.get_tensor("images")
            labels = fh.get_tensor("labels")
        names = tuple(json.loads(meta["class_names"]))
    except Exception:
        return None
    if images.dtype != torch.uint8 or images.ndim != 4 or labels.shape != images.shape[:1]:
        return None
    return images, labels.long(), names


def write(path: Path, images: Tensor, labels: Tensor, class_names: tuple[str, ...]) -> None:
    """Store an entry atomically; a cache that cannot be written is skipped silently (and so
    is every entry inside :func:`no_writes`)."""
    if not _WRITES.get():
        return
    tensors = {"images": images.contiguous(), "labels": labels.to(torch.int64).contiguous()}
    meta = {"class_names": json.dumps(list(class_names)), "format": str(CACHE_FORMAT)}
    try:
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    except OSError:
        pass
