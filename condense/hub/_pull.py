"""Download through huggingface_hub into its cache (offline mode honoured).

Returns the local path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import HubError
from ._errors import hub_errors, offline, translate
from ._paths import HubPath, parse

REPO_TYPE = "dataset"
#: what pulling a whole repository (or a folder) fetches (fnmatch: ``*`` crosses ``/``); the
#: image previews (``*.preview.zip``) are for the Dataset Viewer and ``datasets`` and stay behind
SNAPSHOT_PATTERNS = ("*.safetensors", "*.json", "*.md")


def _target(target: str | HubPath, revision: str | None) -> HubPath:
    hp = parse(target, revision=revision) if isinstance(target, str) else target
    if revision and hp.revision != revision:
        if hp.revision and hp.revision != revision:
            raise HubError(f"{hp.uri()}: names revision {hp.revision!r} but --revision is "
                           f"{revision!r}")
        hp = HubPath(hp.repo_id, hp.path, revision)
    return hp


def pull(target: str | HubPath, *, revision: str | None = None,
         cache_dir: str | Path | None = None,
         patterns: Sequence[str] = SNAPSHOT_PATTERNS) -> Path:
    """Fetch ``hf://datasets/ORG/REPO[/PATH]`` (or ``ORG/REPO[/PATH]``) into the Hugging Face
    cache; return the local path.

    A PATH with a suffix is one file (returned as the cached file); a folder or the whole
    repository is fetched as a snapshot of the files matching ``patterns`` (by default its
    artifacts, eval JSONs and card; the snapshot folder, or the folder inside it, is returned).
    With ``HF_HUB_OFFLINE=1`` only the cache is read. The returned files belong to the cache:
    copy them before modifying anything.
    """
    hp = _target(target, revision)
    from huggingface_hub import hf_hub_download, snapshot_download

    local_only = offline()
    try:
        if hp.is_file:
            assert hp.path is not None
            return Path(hf_hub_download(hp.repo_id, hp.path, repo_type=REPO_TYPE,
                                        revision=hp.revision, cache_dir=cache_dir,
                                        local_files_only=local_only))
        prefix = f"{hp.path}/" if hp.path else ""
        folder = Path(snapshot_download(hp.repo_id, repo_type=REPO_TYPE, revision=hp.revision,
                                        cache_dir=cache_dir, local_files_only=local_only,
                                        allow_patterns=[prefix + p for p in patterns]))
    except hub_errors() as exc:
        raise translate(exc, repo_id=hp.repo_id, path=hp.path, revision=hp.revision) from None
    local = folder / hp.path if hp.path else folder
    if not local.exists():
        raise translate(_missing(), repo_id=hp.repo_id, path=hp.path, revision=hp.revision)
    return local


def try_pull(target: str | HubPath, *, revision: str | None = None,
             cache_dir: str | Path | None = None) -> Path | None:
    """:func:`pull` of one file, or ``None`` when the repository has no such file (offline: when
    the cache has no copy of it); any other failure still raises HubError."""
    hp = _target(target, revision)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    assert hp.path is not None
    local_only = offline()
    try:
        return Path(hf_hub_download(hp.repo_id, hp.path, repo_type=REPO_TYPE,
                                    revision=hp.revision, cache_dir=cache_dir,
                                    local_files_only=local_only))
    except EntryNotFoundError as exc:  # LocalEntryNotFoundError too: not cached while offline
        if local_only or not _is_local_miss(exc):
            return None
        raise translate(exc, repo_id=hp.repo_id, path=hp.path, revision=hp.revision) from None
    except hub_errors() as exc:
        raise translate(exc, repo_id=hp.repo_id, path=hp.path, revision=hp.revision) from None


def _is_local_miss(exc: BaseException) -> bool:
    """Online, a LocalEntryNotFoundError means the Hub could not be reached (no cached copy)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(exc, LocalEntryNotFoundError)


def _missing() -> BaseException:
    from huggingface_hub.errors import EntryNotFoundError

    return EntryNotFoundError("not found")
