"""``condense import``: convert the field's legacy distilled sets into condense artifacts.

Each format is one small reader module; all of them load through
:func:`condense.importers._safe_load.safe_torch_load` (``torch.load(weights_only=True)``, never a
full unpickle) and end in :func:`condense.importers._common.finish`, which records the space the
images are in (dataset mean/std, ZCA) so the imported set evaluates correctly.

>>> from condense.importers import import_legacy
>>> result = import_legacy("res_DM_CIFAR10_ConvNet_10ipc.pt", format="vico", dataset="cifar10")
>>> condense.save(result.synset, "dm-cifar10-ipc10.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, CondenseError, ConfigError
from ..hub import parse
from . import datadam, idc, mtt, tensors, vico
from ._common import Extracted, ImportOptions, ImportResult, finish
from ._remote import fetch, is_remote
from ._safe_load import safe_torch_load


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    reader: Callable[[Path, ImportOptions], Extracted]
    files: str
    summary: str
    aliases: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("vico", vico.read, "res_<M>_<DS>_<MODEL>_<N>ipc.pt",
           "VICO-UoE DC/DSA/DM (and DataDAM's own runs); normalised images", ("dc", "dsa", "dm")),
    Format("mtt", mtt.read, "images_best.pt + labels_best.pt [+ lr_best.pt], or the run folder",
           "MTT / DATM / FTD; normalised, ZCA'd with --zca; learned lr; soft labels",
           ("datm", "ftd")),
    Format("idc", idc.read, "data.pt = (data, target)",
           "IDC; unnormalised [0,1] multi-formation images, decoded with --factor"),
    Format("datadam", datadam.read, "syn_data_<ds>_ipc_<n>.pt (Hub: uoft-dsp-lab/DataDAM)",
           "DataDAM's Hugging Face release; normalised images, ZCA'd with --zca"),
    Format("tensors", tensors.read,
           "<x>images<y>.pt + <x>labels<y>.pt, or one (images, labels) file",
           "plain tensor pairs; --space says how they are normalised"),
)}


def resolve_format(name: str) -> Format:
    key = name.lower()
    for fmt in FORMATS.values():
        if key == fmt.name or key in fmt.aliases:
            return fmt
    known = "; ".join(f"{f.name} (also {', '.join(f.aliases)})" if f.aliases else f.name
                      for f in FORMATS.values())
    raise ConfigError(f"unknown legacy format {name!r}; known: {known}")


def format_names() -> list[str]:
    return [n for f in FORMATS.values() for n in (f.name, *f.aliases)]


def describe_formats() -> list[dict[str, Any]]:
    return [{"name": f.name, "aliases": list(f.aliases), "files": f.files, "summary": f.summary}
            for f in FORMATS.values()]


def import_legacy(path: str | os.PathLike[str], *, format: str, dataset: str,
                  **options: Any) -> ImportResult:
    """Read a legacy distilled set; return the SynSet (not saved) and notes for the user.

    ``path`` may be ``hf://datasets/ORG/REPO/PATH`` (pulled through the Hugging Face cache
    first; recorded as ``meta["imported"]["source"]``), and so may the ``labels``/``lr``
    options. ``options`` are the fields of :class:`ImportOptions` (``experiment``, ``zca``,
    ``factor`` …).
    """
    fmt = resolve_format(format)
    source = None
    if is_remote(path):  # pulled into the Hugging Face cache first (companion files too)
        source = parse(str(path), warn=False).uri()
        path = fetch(str(path))
    for key in ("labels", "lr"):
        value = options.get(key)
        if is_remote(value):
            options[key] = fetch(value)
        elif isinstance(value, str):
            options[key] = Path(value).expanduser()
    opts = ImportOptions(dataset=dataset, **options)
    path = Path(path).expanduser()
    try:
        found = fmt.reader(path, opts)
    except ArtifactError as exc:
        other = sniff(path)
        if other is None or other[0] == fmt.name:
            raise
        raise ArtifactError(f"{path}: this looks like a {other[0]} file ({other[1]}), not "
                            f"{fmt.name}; import it with format {other[0]!r} (-f {other[0]})"
                            ) from exc
    result = finish(found, path if path.is_file() else _first_file(path), fmt.name, opts)
    if source:
        result.synset.meta["imported"]["source"] = source
    return result


def sniff(path: Path) -> tuple[str, str] | None:
    """``(format, why)`` when ``path`` has the name or the content of a known format; None when
    it cannot be told (only asked after a reader refused the file, to name the right format)."""
    if not path.is_file():
        return None
    name = path.name.lower()
    if name.startswith("images_best"):
        return "mtt", f"named {path.name}"
    try:
        obj = safe_torch_load(path)
    except CondenseError:
        return None
    if isinstance(obj, dict) and "net_parameters" in obj:
        return "datadam", "a DataDAM model_params file"
    if isinstance(obj, dict) and "data" in obj:
        if name.startswith("syn_data"):
            return "datadam", "a dict with 'data' = (images, labels), named syn_data_*"
        return "vico", "a dict with 'data' = [images, labels] pairs"
    if isinstance(obj, dict) and {"images", "labels"} <= set(obj):
        return "tensors", "a dict with 'images' and 'labels'"
    return None


def _first_file(folder: Path) -> Path:
    """The file whose hash and name stand for a folder import (its images file)."""
    for name in ("images_best.pt", "images_best_0.pt"):
        if (folder / name).exists():
            return folder / name
    raise ConfigError(f"{folder}: is a folder; give the file to import")


__all__ = ["FORMATS", "Format", "ImportOptions", "ImportResult", "describe_formats",
           "format_names", "import_legacy", "resolve_format", "safe_torch_load", "sniff"]
