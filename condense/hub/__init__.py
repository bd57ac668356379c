"""Publishing distilled sets on the Hugging Face Hub and fetching them back.

* :func:`push` uploads an artifact, its ``<stem>.eval-<evaluator>.json`` records, the
  repository index and a generated dataset card in one commit (docs/hub.md has the layout);
* :func:`pull` downloads ``hf://ORG/REPO/PATH`` through huggingface_hub's cache and honours
  ``HF_HUB_OFFLINE``; ``condense.load("hf://…")`` uses it.

Failures raise :class:`condense.HubError` with one line naming the fix.
"""

from __future__ import annotations

from ._card import INDEX_FILE, PAPERS
from ._paths import SCHEME, HubPath, parse, validate_repo_id
from ._pull import pull
from ._push import PushResult, default_path_in_repo, eval_files, push

__all__ = ["INDEX_FILE", "PAPERS", "SCHEME", "HubPath", "PushResult", "default_path_in_repo",
           "eval_files", "parse", "pull", "push", "validate_repo_id"]
