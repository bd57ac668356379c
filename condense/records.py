"""Evaluation records beside an artifact (``<stem>.eval-<evaluator>.json``) and which set they
belong to.

``condense eval`` stamps each record with the artifact's :func:`condense.store.content_digest`
(key :data:`DIGEST_KEY`). A record whose stamp differs from the artifact beside it was made for
another set (the file was replaced since) and is stale: ``push`` and ``show`` ignore it and say so.
Records from before the stamp existed carry none and are kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .store import content_digest

DIGEST_KEY = "artifact_sha256"


def record_paths(artifact: str | os.PathLike[str]) -> list[Path]:
    """The ``<stem>.eval-*.json`` files beside a local artifact, sorted."""
    p = Path(artifact)
    return sorted(p.parent.glob(f"{p.stem}.eval-*.json"))


def is_stale(record: Mapping[str, Any], digest: str) -> bool:
    """Whether ``record`` names another set than the one whose digest is ``digest``."""
    stamp = record.get(DIGEST_KEY)
    return stamp is not None and stamp != digest


def stale_note(path: Path) -> str:
    """The one line that says why a record is ignored."""
    return (f"ignoring {path}: it was made for an earlier set at that path (its {DIGEST_KEY} "
            f"differs); rerun `condense eval` or remove it")


def current_records(artifact: str | os.PathLike[str]
                    ) -> tuple[list[tuple[Path, dict[str, Any]]], list[Path]]:
    """The readable records beside ``artifact`` that belong to it, and the stale ones (records
    that cannot be read or are not ``condense eval`` records are left out of both)."""
    paths = record_paths(artifact)
    if not paths:
        return [], []
    digest = content_digest(artifact)
    kept, stale = [], []
    for p in paths:
        try:
            record = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
            continue
        if is_stale(record, digest):
            stale.append(p)
        else:
            kept.append((p, record))
    return kept, stale


__all__ = ["DIGEST_KEY", "content_digest", "current_records", "is_stale", "record_paths",
           "stale_note"]
