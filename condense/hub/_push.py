"""``push``: publish an artifact (+ its eval JSONs, an image preview, the index and the card) in
one commit.

Nothing local is written or modified: the card, index and preview are built in memory and the
artifact is streamed from its file, so a failed push leaves everything as it was. The token is
the user's usual one (``HF_TOKEN`` or ``hf auth login``), read by huggingface_hub and never
stored or printed.

Concurrent pushes to one repository (two seeds at once) cannot drop each other's index entry:
the index and card are read at the branch's head commit and the commit is made with
``parent_commit=`` that commit; when another push landed in between, the Hub answers 412 and
the push re-reads and retries (:data:`ATTEMPTS` times in all).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, HubError
from ..records import content_digest, is_stale
from ..store import load
from . import _card, _preview
from ._errors import hub_errors, offline, translate
from ._paths import DEFAULT_REVISION, HubPath, validate_repo_id

REPO_TYPE = "dataset"
ENDPOINT_WEB = "https://huggingface.co"
#: commits tried when other pushes keep landing first (HTTP 412/409 on ``parent_commit``)
ATTEMPTS = 5
#: seconds before retry n (times 1–2, at random, so racing pushes spread out)
BACKOFF = (0.5, 1.0, 2.0, 4.0)
_sleep = time.sleep


@dataclasses.dataclass(frozen=True)
class PushResult:
    repo_id: str
    revision: str
    path_in_repo: str
    files: tuple[str, ...]
    url: str
    uri: str
    commit_url: str
    license: str
    attempts: int = 1
    #: evaluation records beside the artifact that were not uploaded: made for an earlier set at
    #: that path (their ``artifact_sha256`` differs, :mod:`condense.records`)
    ignored: tuple[str, ...] = ()


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


def uploaded_record(result: dict[str, Any], uri: str) -> dict[str, Any]:
    """An eval record as uploaded: ``artifact`` is the set's ``hf://`` path and no value holds a
    local absolute path."""
    record = _card.scrub(result)
    if "artifact" in record:
        record["artifact"] = uri
    return record


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError("no Hugging Face token: log in with `hf auth login` (or set HF_TOKEN) using "
                       "a token with write access, then push again")
    return token


def _read(api: Any, repo_id: str, name: str, revision: str) -> str | None:
    """A text file of the repository at ``revision`` (a commit), or None if it has none."""
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        local = api.hf_hub_download(repo_id, name, repo_type=REPO_TYPE, revision=revision)
    except LocalEntryNotFoundError:
        raise
    except EntryNotFoundError:
        return None
    try:
        return Path(local).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _read_index(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        index = json.loads(text)
    except json.JSONDecodeError:
        return None
    return index if isinstance(index, dict) else None


def _conflict(exc: BaseException) -> bool:
    """The Hub refused ``parent_commit`` (412) or another commit was in progress (409)."""
    from huggingface_hub.errors import HfHubHTTPError

    for err in (exc, exc.__context__, exc.__cause__):
        if isinstance(err, HfHubHTTPError):
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status in (409, 412):
                return True
    return False


def push(artifact: str | os.PathLike[str], repo_id: str, *, private: bool = False,
         revision: str | None = None, message: str | None = None,
         path_in_repo: str | None = None, license: str | None = None,
         preview: bool = True) -> PushResult:
    """Upload ``artifact`` to the dataset repository ``repo_id`` (created if needed).

    ``license`` (a Hub licence id such as ``mit`` or ``cc-by-4.0``) is recorded for this set and
    written to the card; by default the source dataset's licence (``unknown`` where condense
    knows none). ``preview=False`` leaves out the image preview ``datasets`` reads.
    """
    path = Path(artifact)
    synset = load(path)  # validates the file before anything touches the network
    meta = synset.meta
    validate_repo_id(repo_id)
    target = (path_in_repo or default_path_in_repo(meta)).strip("/")
    if not target.endswith(".safetensors"):
        raise HubError(f"--path-in-repo {target!r} must end in .safetensors")
    chosen = (license or _card.default_license(meta.get("dataset"))).strip().lower()
    if not chosen or any(c.isspace() for c in chosen):
        raise HubError(f"--license {license!r}: give a Hub licence id such as mit, cc-by-4.0, "
                       f"other (https://huggingface.co/docs/hub/repositories-licenses)")
    evals = eval_files(path)
    digest = content_digest(path) if evals else ""
    ignored = tuple(str(p) for _, p, record in evals if is_stale(record, digest))
    evals = [e for e in evals if not is_stale(e[2], digest)]
    if offline():
        raise HubError("offline mode is on (HF_HUB_OFFLINE); unset it to push")
    token = _token()
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    rev = revision or DEFAULT_REVISION
    uri = HubPath(repo_id, target, rev).uri()
    stem = target[: -len(".safetensors")]
    ops = [CommitOperationAdd(path_in_repo=target, path_or_fileobj=str(path))]
    eval_entries = []
    for evaluator, _, result in evals:
        name = f"{stem}.eval-{evaluator}.json"
        record = uploaded_record(result, uri)
        ops.append(CommitOperationAdd(path_in_repo=name,
                                      path_or_fileobj=(json.dumps(record, indent=2) + "\n")
                                      .encode()))
        eval_entries.append((name, record))
    preview_path = None
    if preview and _preview.previewable(synset):
        preview_path = _preview.path_for(target)
        ops.append(CommitOperationAdd(path_in_repo=preview_path,
                                      path_or_fileobj=_preview.build(synset)))
    new_entry = _card.entry(meta, target, len(synset), eval_entries, license=chosen,
                            preview=preview_path)
    attempt = 0
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=True if private else None,
                        exist_ok=True)
        if rev != DEFAULT_REVISION:
            api.create_branch(repo_id, branch=rev, repo_type=REPO_TYPE, exist_ok=True)
        while True:
            attempt += 1
            head = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=rev).sha
            index_text = _read(api, repo_id, _card.INDEX_FILE, head)
            old_index = _read_index(index_text)
            index = _card.merge(old_index, new_entry)
            readme, generated = _card.render(
                index, repo_id, _read(api, repo_id, "README.md", head), revision=rev,
                generated_before=index_text is not None,
                override=("license", "license_name", "license_link") if license else ())
            index["generated_front_matter"] = generated
            card_ops = [CommitOperationAdd(path_in_repo=_card.INDEX_FILE,
                                           path_or_fileobj=_card.dumps(index)),
                        CommitOperationAdd(path_in_repo="README.md",
                                           path_or_fileobj=readme.encode())]
            try:
                info = api.create_commit(repo_id, [*ops, *card_ops], repo_type=REPO_TYPE,
                                         revision=rev, parent_commit=head,
                                         commit_message=message or f"Upload {target} with condense")
            except hub_errors() as exc:
                if not _conflict(exc):
                    raise
                if attempt >= ATTEMPTS:
                    raise HubError(f"{repo_id}: other commits kept landing on {rev} while pushing "
                                   f"{target} ({attempt} attempts); nothing was changed locally, "
                                   f"push again") from None
                _sleep(BACKOFF[min(attempt, len(BACKOFF)) - 1] * (1 + random.random()))
                continue
            break
    except HubError:
        raise
    except hub_errors() as exc:
        raise translate(exc, repo_id=repo_id, revision=revision, pushing=True) from None
    return PushResult(
        repo_id=repo_id, revision=rev, path_in_repo=target,
        files=tuple(op.path_in_repo for op in [*ops, *card_ops]),
        url=f"{ENDPOINT_WEB}/datasets/{repo_id}/blob/{rev}/{target}",
        uri=uri,
        commit_url=str(getattr(info, "commit_url", info)),
        license=chosen,
        attempts=attempt,
        ignored=ignored,
    )
