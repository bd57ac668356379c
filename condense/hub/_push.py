"""``push``: publish an artifact (+ its eval JSONs, the index and a generated card) in one commit.

Nothing local is written or modified: the card and index are built in memory and the artifact is
streamed from its file, so a failed push leaves everything as it was. The token is the user's
usual one (``HF_TOKEN`` or ``hf auth login``), read by huggingface_hub and never stored or printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, HubError
from ..store import load
from . import _card
from ._errors import hub_errors, offline, translate
from ._paths import validate_repo_id

REPO_TYPE = "dataset"
ENDPOINT_WEB = "https://huggingface.co"


@dataclasses.dataclass(frozen=True)
class PushResult:
    repo_id: str
    revision: str
    path_in_repo: str
    files: tuple[str, ...]
    url: str
    uri: str
    commit_url: str


def default_path_in_repo(meta: dict[str, Any]) -> str:
    """``<dataset>/ipc<N>/seed<S>/<method>.safetensors`` (no seed level for imported sets)."""
    parts = [str(meta["dataset"]), f"ipc{meta['ipc']}"]
    if meta.get("seed") is not None:
        parts.append(f"seed{meta['seed']}")
    parts.append(f"{meta['method']}.safetensors")
    return "/".join(_safe(p) for p in parts)


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in part)


def eval_files(artifact: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """``(evaluator, path, result)`` for each ``<stem>.eval-<evaluator>.json`` beside
    ``artifact``."""
    found = []
    for p in sorted(artifact.parent.glob(f"{artifact.stem}.eval-*.json")):
        try:
            result = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{p}: unreadable evaluation record ({exc}); "
                                "fix or remove it") from None
        if not isinstance(result, dict) or "metrics" not in result:
            raise ArtifactError(f"{p}: not a `condense eval` record (no 'metrics'); remove it")
        evaluator = p.name[len(artifact.stem) + len(".eval-"):-len(".json")]
        found.append((evaluator, p, result))
    return found


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError("no Hugging Face token: log in with `hf auth login` (or set HF_TOKEN) using "
                       "a token with write access, then push again")
    return token


def _read_index(api: Any, repo_id: str, revision: str | None) -> dict[str, Any] | None:
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        local = api.hf_hub_download(repo_id, _card.INDEX_FILE, repo_type=REPO_TYPE,
                                    revision=revision)
    except LocalEntryNotFoundError:
        raise
    except EntryNotFoundError:
        return None
    try:
        index = json.loads(Path(local).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return index if isinstance(index, dict) else None


def push(artifact: str | os.PathLike[str], repo_id: str, *, private: bool = False,
         revision: str | None = None, message: str | None = None,
         path_in_repo: str | None = None) -> PushResult:
    """Upload ``artifact`` to the dataset repository ``repo_id`` (created if needed)."""
    path = Path(artifact)
    synset = load(path)  # validates the file before anything touches the network
    meta = synset.meta
    validate_repo_id(repo_id)
    target = (path_in_repo or default_path_in_repo(meta)).strip("/")
    if not target.endswith(".safetensors"):
        raise HubError(f"--path-in-repo {target!r} must end in .safetensors")
    evals = eval_files(path)
    if offline():
        raise HubError("offline mode is on (HF_HUB_OFFLINE); unset it to push")
    token = _token()
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    stem = target[: -len(".safetensors")]
    ops = [CommitOperationAdd(path_in_repo=target, path_or_fileobj=str(path))]
    eval_entries = []
    for evaluator, p, result in evals:
        name = f"{stem}.eval-{evaluator}.json"
        ops.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(p)))
        eval_entries.append((name, result))
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=True if private else None,
                        exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
        index = _card.merge(_read_index(api, repo_id, revision),
                            _card.entry(meta, target, len(synset), eval_entries))
        ops.append(CommitOperationAdd(path_in_repo=_card.INDEX_FILE,
                                      path_or_fileobj=_card.dumps(index)))
        ops.append(CommitOperationAdd(path_in_repo="README.md",
                                      path_or_fileobj=_card.render(index, repo_id).encode()))
        info = api.create_commit(repo_id, ops, repo_type=REPO_TYPE, revision=revision,
                                 commit_message=message or f"Upload {target} with condense")
    except HubError:
        raise
    except hub_errors() as exc:
        raise translate(exc, repo_id=repo_id, revision=revision, pushing=True) from None
    rev = revision or "main"
    return PushResult(
        repo_id=repo_id, revision=rev, path_in_repo=target,
        files=tuple(op.path_in_repo for op in ops),
        url=f"{ENDPOINT_WEB}/datasets/{repo_id}/blob/{rev}/{target}",
        uri=f"hf://{repo_id}{'@' + rev if rev != 'main' else ''}/{target}",
        commit_url=str(getattr(info, "commit_url", info)),
    )
