"""``hf://`` paths and repository ids, read the way huggingface_hub reads them.

condense sets live in **dataset** repositories, so the spelling is huggingface_hub's
``hf://datasets/ORG/REPO[@REVISION][/PATH]``. Parsing is huggingface_hub's own
``parse_hf_uri`` (pure string work, no request; ``HfFileSystem.resolve_path`` is not used because
it asks the Hub whether the repository and revision exist) and ids are checked with its
``validate_repo_id``.

Also accepted:

* ``ORG/REPO[@REVISION][/PATH]`` with no scheme (a repository id, as ``hf download`` takes one;
  ``condense pull`` and ``condense push`` use it): read as a dataset repository;
* ``hf://ORG/REPO/PATH``, the spelling condense printed before: huggingface_hub reads it as a
  *model* repository, condense still reads it as a dataset repository but warns
  (:class:`HubPathWarning`) and names the new spelling; it will be refused in a later release.

``hf://models/…``, ``hf://spaces/…``, ``hf://kernels/…`` and ``hf://buckets/…`` are refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import warnings
from urllib.parse import unquote

from ..errors import HubError

SCHEME = "hf://"
PREFIX = "hf://datasets/"
#: the revision condense leaves out of printed paths
DEFAULT_REVISION = "main"
#: huggingface_hub's special refs, which hold a '/' (``refs/pr/3``, ``refs/convert/parquet``)
_SPECIAL_REF = re.compile(r"^refs/(?:convert/[\w.-]+|pr/\d+)")
_OTHER_TYPES = ("models", "spaces", "kernels", "buckets", "model", "dataset", "space", "kernel",
                "bucket")


class HubPathWarning(FutureWarning):
    """An ``hf://`` path in a spelling that huggingface_hub reads differently."""


@dataclasses.dataclass(frozen=True)
class HubPath:
    """A dataset repository, an optional file or folder inside it, an optional revision."""

    repo_id: str
    path: str | None = None
    revision: str | None = None

    def uri(self) -> str:
        """huggingface_hub's spelling: ``hf://datasets/ORG/REPO[@REV][/PATH]``."""
        rev = ""
        if self.revision and self.revision != DEFAULT_REVISION:
            special = _SPECIAL_REF.fullmatch(self.revision)
            rev = "@" + (self.revision if special else self.revision.replace("/", "%2F"))
        tail = f"/{self.path}" if self.path else ""
        return f"{PREFIX}{self.repo_id}{rev}{tail}"

    @property
    def is_file(self) -> bool:
        """A path whose last part has a suffix is a file; anything else a folder (or the repo)."""
        return bool(self.path) and "." in self.path.rsplit("/", 1)[-1]

    def local_stem(self) -> str:
        """A file-name stem naming this set in a local folder, different for different sets.

        ``ORG--REPO[@REV]--PART--PART--NAME`` (the path's parts joined by ``--``, the file's
        suffix dropped): repository ids cannot hold ``--``; where a part of the path does, a
        short hash of the whole path is added so two sets still never share a name.
        """
        org, name = self.repo_id.split("/")
        head = name + (f"@{_safe(self.revision)}" if self.revision
                       and self.revision != DEFAULT_REVISION else "")
        parts = (self.path or "").split("/") if self.path else []
        if parts and self.is_file:
            parts[-1] = parts[-1].rsplit(".", 1)[0]
        stem = "--".join([org, head, *(_safe(p) for p in parts)])
        if any("--" in p or _safe(p) != p for p in parts) or (
                self.revision and _safe(self.revision) != self.revision):
            stem += "-" + hashlib.sha1(self.uri().encode()).hexdigest()[:8]
        return stem


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "-" for c in part)


def validate_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` by huggingface_hub's rules (``validate_repo_id``), or HubError saying why."""
    from huggingface_hub.utils import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hf_validate

    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"malformed repository id {repo_id!r}: expected ORG/NAME, e.g. "
                       f"my-lab/datadam-cifar10")
    try:
        hf_validate(repo_id)
    except HFValidationError as exc:
        raise HubError(f"malformed repository id {repo_id!r}: {_first_line(exc)}") from None
    return repo_id


def parse(text: str, *, revision: str | None = None, warn: bool = True) -> HubPath:
    """``hf://datasets/ORG/REPO[@REV][/PATH]`` (or a spelling the module docstring lists) as a
    :class:`HubPath`; ``revision`` fills in a revision the text does not name.

    ``warn=False`` skips the :class:`HubPathWarning` for the old ``hf://ORG/REPO/PATH`` spelling
    (for code that parses a path the user was already warned about).
    """
    raw = text.strip()
    legacy = False
    if raw.startswith(SCHEME):
        body = raw[len(SCHEME):]
        first = body.split("/", 1)[0]
        if first in _OTHER_TYPES:
            raise HubError(f"{text}: condense sets live in dataset repositories; use "
                           f"{PREFIX}ORG/REPO/PATH")
        legacy = first != "datasets"
        if legacy:
            body = "datasets/" + body
    else:
        body = raw.strip("/")
        if not body.startswith("datasets/"):
            if body.split("/", 1)[0] in _OTHER_TYPES:
                raise HubError(f"{text}: condense sets live in dataset repositories; use "
                               f"{PREFIX}ORG/REPO/PATH")
            body = "datasets/" + body
    repo_id, rev, path = _split(body, text)
    if rev and revision and rev != revision:
        raise HubError(f"{text}: names revision {rev!r} but --revision is {revision!r}")
    validate_repo_id(repo_id)
    parts = path.split("/") if path else []
    if any(p in (".", "..") for p in parts):
        raise HubError(f"malformed Hub path {text!r}: '.' and '..' are not allowed")
    hp = HubPath(repo_id, path or None, rev or revision or None)
    if legacy and warn:
        warnings.warn(f"{text} is huggingface_hub's spelling of a model repository; condense "
                      f"still reads it as a dataset repository, but write "
                      f"{HubPath(repo_id, hp.path, rev).uri()} (the old spelling will be refused "
                      f"in a later release)", HubPathWarning, stacklevel=_outside_condense())
    return hp


#: the condense package's folder: a warning names the first caller outside it
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _outside_condense() -> int:
    """The ``stacklevel`` of the innermost caller of :func:`parse` outside condense."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def _split(body: str, text: str) -> tuple[str, str | None, str]:
    """``datasets/ORG/REPO[@REV][/PATH]`` -> (repo id, revision, path), by huggingface_hub."""
    body = body.rstrip("/")
    if body.count("/") < 2 or not all(body.split("/")[1:3]):
        raise HubError(f"malformed Hub path {text!r}: expected {PREFIX}ORG/REPO[/PATH]")
    try:
        from huggingface_hub.errors import HfUriError
        from huggingface_hub.utils import parse_hf_uri
    except ImportError:  # huggingface_hub before parse_hf_uri: the same grammar, by hand
        return _split_fallback(body, text)
    try:
        uri = parse_hf_uri(SCHEME + body)
    except HfUriError as exc:
        what = "repository id in" if isinstance(exc.__cause__, ValueError) else "Hub path"
        raise HubError(f"malformed {what} {text!r}: {_uri_reason(exc)}") from None
    return uri.id, uri.revision, uri.path_in_repo


def _split_fallback(body: str, text: str) -> tuple[str, str | None, str]:
    """``parse_hf_uri``'s repository grammar for huggingface_hub versions without it."""
    location = body.split("/", 1)[1]
    at = location.find("@")
    if at == -1 or location[:at].count("/") > 1:
        org, name, *rest = location.split("/", 2)
        return f"{org}/{name}", None, rest[0] if rest else ""
    repo_id, after = location[:at], location[at + 1:]
    special = _SPECIAL_REF.match(after)
    if special:
        rev, path = special.group(), after[special.end():].removeprefix("/")
    else:
        rev, _, path = after.partition("/")
    if not rev:
        raise HubError(f"malformed Hub path {text!r}: empty revision after '@'")
    if "//" in path:
        raise HubError(f"malformed Hub path {text!r}: empty path segment")
    return repo_id, unquote(rev), path


def _uri_reason(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None)
    return _first_line(msg if isinstance(msg, str) else exc)


def _first_line(exc: object) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def local_stem(text: str) -> str:
    """:meth:`HubPath.local_stem` of an ``hf://`` path (no warning: the caller parsed it)."""
    return parse(text, warn=False).local_stem()
