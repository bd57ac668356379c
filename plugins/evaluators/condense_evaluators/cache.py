"""The evaluation cache: random-baseline results and teacher networks, computed once.

Where: ``$CONDENSE_CACHE_DIR/eval`` if set, else ``$XDG_CACHE_HOME/condense/eval`` (``~/.cache/
condense/eval``), or the evaluator's ``cache_dir`` setting. An entry is named by a hash of
everything its numbers depend on (see :func:`entry_key`), so a changed protocol, model, seed,
label regime or condense version is a miss, never a stale hit. Entries are written to a temporary
file and renamed into place; an unreadable entry is a miss, an unwritable folder is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import condense


def cache_root(setting: str = "") -> Path:
    """The folder of the evaluation cache (not created here)."""
    if setting:
        return Path(setting).expanduser()
    env = os.environ.get("CONDENSE_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "eval"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "condense" / "eval"


def entry_key(fields: Mapping[str, Any]) -> str:
    """A 32-hex-digit key over ``fields`` (JSON, sorted keys) and the condense version."""
    text = json.dumps({"condense": condense.__version__, **dict(fields)}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def read_json(path: Path) -> dict[str, Any] | None:
    """The entry at ``path``, or None when absent or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file; False (nothing written) on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return False
    return True


def write_json(path: Path, value: Mapping[str, Any]) -> bool:
    return write_atomic(path, (json.dumps(dict(value), indent=1, sort_keys=True) + "\n").encode())


__all__ = ["cache_root", "entry_key", "read_json", "write_atomic", "write_json"]
