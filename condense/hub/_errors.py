"""huggingface_hub / HTTP exceptions -> one-line :class:`HubError` messages naming the fix.

Messages never include request headers, so a token can never leak through them.
"""

from __future__ import annotations

import os

from ..errors import HubError


def offline() -> bool:
    """huggingface_hub's offline switch, or ``HF_HUB_OFFLINE`` set after it was imported."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _network_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        found.append(module.HTTPError)
    return tuple(found)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def translate(exc: BaseException, *, repo_id: str, path: str | None = None,
              revision: str | None = None, pushing: bool = False) -> HubError:
    """The HubError to raise for ``exc`` (raised while reading or writing ``repo_id``)."""
    from huggingface_hub import errors as e

    rev = revision or "main"
    what = f"{repo_id}/{path}" if path else repo_id
    tree = f"https://huggingface.co/datasets/{repo_id}/tree/{rev}"
    if isinstance(exc, e.OfflineModeIsEnabled):
        return HubError(f"cannot reach the Hub for {what}: offline mode is on (HF_HUB_OFFLINE); "
                        f"unset it to {'push' if pushing else 'download'}")
    if isinstance(exc, e.LocalEntryNotFoundError):
        if offline():
            return HubError(f"{what} (revision {rev}) is not in the Hugging Face cache and offline "
                            f"mode is on (HF_HUB_OFFLINE); pull it once while online, or unset "
                            f"HF_HUB_OFFLINE")
        return HubError(f"could not reach the Hub to download {what} and there is no cached copy; "
                        f"check the network (or HF_ENDPOINT) and retry")
    if isinstance(exc, e.GatedRepoError):
        return HubError(f"{repo_id} is gated: accept its conditions at "
                        f"https://huggingface.co/datasets/{repo_id} and log in (`hf auth login`)")
    if isinstance(exc, e.RepositoryNotFoundError):
        return HubError(f"no dataset repository {repo_id} on the Hub (or it is private and you "
                        f"are not logged in: `hf auth login` or set HF_TOKEN)")
    if isinstance(exc, e.RevisionNotFoundError):
        return HubError(f"{repo_id} has no revision {rev!r}; see its branches at "
                        f"https://huggingface.co/datasets/{repo_id}/tree/main")
    if isinstance(exc, e.EntryNotFoundError):
        return HubError(f"{repo_id} (revision {rev}) has no file {path!r}; "
                        f"list its files at {tree}")
    if isinstance(exc, e.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            need = "write access to" if pushing else "access to"
            return HubError(f"the Hub refused the request ({status}): your token lacks {need} "
                            f"{repo_id}; log in with a suitable token (`hf auth login`)")
        return HubError(f"the Hub answered {status or 'an error'} for {what}: {_first_line(exc)}"
                        + ("; nothing was changed locally, retry" if pushing else ""))
    if isinstance(exc, _network_errors()):
        return HubError(f"network failure talking to the Hub about {what}: {_first_line(exc)}; "
                        + ("nothing was changed locally, retry" if pushing else "retry"))
    if isinstance(exc, ValueError):
        return HubError(f"{what}: {_first_line(exc)}")
    return HubError(f"{what}: {type(exc).__name__}: {_first_line(exc)}")


def hub_errors() -> tuple[type[BaseException], ...]:
    """What :func:`translate` handles (huggingface_hub errors, network errors, bad values)."""
    from huggingface_hub import errors as e

    return (e.HfHubHTTPError, e.EntryNotFoundError, e.OfflineModeIsEnabled, ValueError,
            OSError, *_network_errors())
