"""Download through huggingface_hub into its cache (offline mode honoured).

Returns the local path."""

from __future__ import annotations

from pathlib import Path

from ._errors import hub_errors, offline, translate
from ._paths import HubPath, parse

REPO_TYPE = "dataset"
#: what pulling a whole repository (or a folder) fetches (fnmatch: ``*`` crosses ``/``)
SNAPSHOT_PATTERNS = ("*.safetensors", "*.json", "*.md")


def pull(target: str | HubPath, *, revision: str | None = None,
         cache_dir: str | Path | None = None) -> Path:
    """Fetch ``[hf://]ORG/REPO[/PATH]`` into the Hugging Face cache; return the local path.

    A PATH with a suffix is one file (returned as the cached file); a folder or the whole
    repository is fetched as a snapshot of its artifacts, eval JSONs and card (the snapshot
    folder, or the folder inside it, is returned). With ``HF_HUB_OFFLINE=1`` only the cache is
    read. The returned files belong to the cache: copy them before modifying anything.
    """
    hp = parse(target, revision=revision) if isinstance(target, str) else target
    if revision and hp.revision and hp.revision != revision:
        hp = HubPath(hp.repo_id, hp.path, revision)
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
                                        allow_patterns=[prefix + p for p in SNAPSHOT_PATTERNS]))
    except hub_errors() as exc:
        raise translate(exc, repo_id=hp.repo_id, path=hp.path, revision=hp.revision) from None
    local = folder / hp.path if hp.path else folder
    if not local.exists():
        raise translate(_missing(), repo_id=hp.repo_id, path=hp.path, revision=hp.revision)
    return local


def _missing() -> BaseException:
    from huggingface_hub.errors import EntryNotFoundError

    return EntryNotFoundError("not found")
