"""Publishing distilled sets on the Hugging Face Hub and fetching them back.

* :func:`push` uploads an artifact, its ``<stem>.eval-<evaluator>.json`` records, an image
  preview that ``datasets.load_dataset`` reads, the repository index and a generated dataset card
  in one commit (docs/hub.md has the layout);
* :func:`pull` downloads ``hf://datasets/ORG/REPO/PATH`` through huggingface_hub's cache and
  honours ``HF_HUB_OFFLINE``; ``condense.load("hf://datasets/…")`` uses it.

Paths are huggingface_hub's ``hf://datasets/ORG/REPO[@REV][/PATH]``; the old condense spelling
``hf://ORG/REPO/PATH`` still works with a :class:`HubPathWarning`. Failures raise
:class:`condense.HubError` with one line naming the fix.
"""

from __future__ import annotations

from ._card import INDEX_FILE, default_license
from ._citations import DATASETS, PAPERS
from ._paths import PREFIX, SCHEME, HubPath, HubPathWarning, local_stem, parse, validate_repo_id
from ._pull import pull, try_pull
from ._push import PushResult, default_path_in_repo, eval_files, push

__all__ = ["DATASETS", "INDEX_FILE", "PAPERS", "PREFIX", "SCHEME", "HubPath", "HubPathWarning",
           "PushResult", "default_license", "default_path_in_repo", "eval_files", "local_stem",
           "parse", "pull", "push", "try_pull", "validate_repo_id"]
