"""Where dataset files are looked for, and the error that says so when they are not there."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import DatasetError


def candidates(
    root: str | None, subdirs: Iterable[str], system_dirs: Iterable[str] = ()
) -> list[Path]:
    """``root/<sub>`` for each sub-folder name (``""`` is ``root`` itself), then system folders.

    Duplicates are dropped; order is the search order.
    """
    out: list[Path] = []
    if root:
        r = Path(root).expanduser()
        out += [r / s if s else r for s in subdirs]
    out += [Path(d) for d in system_dirs]
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def missing(
    dataset: str,
    split: str,
    expected: Sequence[str],
    searched: Sequence[Path],
    howto: str,
    *,
    downloadable: bool,
) -> DatasetError:
    """The "not found" error: what was expected, every folder searched, how to get the files."""
    where = "\n  ".join(str(d) for d in searched) or "(no folder: pass --data-dir)"
    fetch = (
        " or pass --download to fetch it with torchvision into --data-dir" if downloadable else ""
    )
    return DatasetError(
        f"{dataset} {split} split not found. Looked for {', '.join(expected)} in:\n  {where}\n"
        f"{howto}{fetch}."
    )


def download_failed(dataset: str, exc: BaseException) -> DatasetError:
    return DatasetError(
        f"{dataset}: download failed ({type(exc).__name__}: {exc}); "
        f"check the network, or place the files by hand (see `condense list datasets`)"
    )


def download_torchvision(dataset: str, torchvision_class: str, root: str | None) -> None:
    """Fetch both splits of a ``train=``-style torchvision dataset into ``root``.

    Only called when a download was asked for."""
    import torchvision.datasets as tvd

    target = Path(root or ".").expanduser()
    target.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            getattr(tvd, torchvision_class)(os.fspath(target), train=train, download=True)
    except Exception as exc:  # network errors come in many types
        raise download_failed(dataset, exc) from None
