"""Legacy files on the Hugging Face Hub: ``condense import hf://datasets/ORG/REPO/PATH``.

The file (or folder) is pulled into the Hugging Face cache first and read from there. A file's
companions that the readers look for beside it (``labels``/``lr`` files named like the images
file, e.g. MTT's ``labels_best.pt`` and ``lr_best.pt`` beside ``images_best.pt``) are pulled too
when the repository has them; a folder brings its ``*.pt``/``*.pth`` files.
"""

from __future__ import annotations

from pathlib import Path

from ..hub import HubPath, parse, pull, try_pull

#: what pulling a folder of a legacy run fetches
LEGACY_PATTERNS = ("*.pt", "*.pth")
_COMPANIONS = ("labels", "lr")


def is_remote(path: object) -> bool:
    return isinstance(path, str) and path.startswith("hf://")


def fetch(uri: str, *, revision: str | None = None) -> Path:
    """The local (cached) path of ``uri``, with its companion files beside it."""
    hp = parse(uri, revision=revision)
    if not hp.is_file:
        return pull(hp, patterns=LEGACY_PATTERNS)
    local = pull(hp)
    assert hp.path is not None
    folder, _, name = hp.path.rpartition("/")
    i = name.rfind("images")
    if i >= 0:
        for new in _COMPANIONS:
            sibling = name[:i] + new + name[i + len("images"):]
            try_pull(HubPath(hp.repo_id, f"{folder}/{sibling}" if folder else sibling,
                             hp.revision))
    return local
