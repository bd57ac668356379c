"""``hf://`` paths and repository ids.

Accepted: ``ORG/REPO``, ``ORG/REPO/PATH``, the same with ``hf://`` in front, ``hf://datasets/ORG/
REPO/PATH`` (huggingface_hub's own spelling), and ``ORG/REPO@REVISION/PATH``. condense sets live in
*dataset* repositories, so ``models/`` and ``spaces/`` prefixes are refused.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import HubError

SCHEME = "hf://"
_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class HubPath:
    """A dataset repository, an optional file or folder inside it, an optional revision."""

    repo_id: str
    path: str | None = None
    revision: str | None = None

    def uri(self) -> str:
        rev = f"@{self.revision}" if self.revision and self.revision != "main" else ""
        tail = f"/{self.path}" if self.path else ""
        return f"{SCHEME}{self.repo_id}{rev}{tail}"

    @property
    def is_file(self) -> bool:
        """A path whose last part has a suffix is a file; anything else a folder (or the repo)."""
        return bool(self.path) and "." in self.path.rsplit("/", 1)[-1]


def validate_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` by the Hub's naming rules, or HubError saying what is wrong."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise HubError(f"malformed repository id {repo_id!r}: expected ORG/NAME, e.g. "
                       f"my-lab/datadam-cifar10")
    for part in parts:
        if not _PART.match(part) or "--" in part or ".." in part or len(part) > 96:
            raise HubError(f"malformed repository id {repo_id!r}: {part!r} may hold only letters, "
                           f"digits, '-', '_' and '.', must start and end with a letter or digit, "
                           f"and may not contain '--' or '..'")
    return repo_id


def parse(text: str, *, revision: str | None = None) -> HubPath:
    """Split ``[hf://][datasets/]ORG/REPO[@REV][/PATH]``; ``revision`` overrides none given."""
    raw = text.removeprefix(SCHEME).strip("/")
    parts = raw.split("/")
    if parts[0] in ("models", "spaces"):
        raise HubError(f"{text}: condense sets live in dataset repositories; use "
                       f"hf://ORG/REPO/PATH (or hf://datasets/ORG/REPO/PATH)")
    if parts[0] == "datasets":
        parts = parts[1:]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise HubError(f"malformed Hub path {text!r}: expected [hf://]ORG/REPO[/PATH]")
    name, _, rev = parts[1].partition("@")
    if rev and revision and rev != revision:
        raise HubError(f"{text}: names revision {rev!r} but --revision is {revision!r}")
    repo_id = validate_repo_id(f"{parts[0]}/{name}")
    rest = [p for p in parts[2:] if p]
    if any(p in (".", "..") for p in rest):
        raise HubError(f"malformed Hub path {text!r}: '.' and '..' are not allowed")
    return HubPath(repo_id, "/".join(rest) or None, rev or revision or None)
