"""DataDAM's Hugging Face release (``uoft-dsp-lab/DataDAM``): ``syn_data_<ds>_ipc_<n>.pt``.

A dict whose ``data`` is a tuple ``(images, labels)`` (a list of such pairs is accepted too), the
images normalised with the dataset's mean/std, and ZCA-whitened when the run used ``--zca`` (the
release does not say; pass ``--zca`` if so). ``model_params_<ds>_ipc_<n>.pt`` files are the frozen
evaluation networks, not distilled sets, and are refused with a pointer to the right file.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ArtifactError
from ._common import Extracted, ImportOptions
from ._safe_load import safe_torch_load
from .vico import experiments, pick

_NAME = re.compile(r"syn_data_([A-Za-z0-9]+)_ipc_(\d+)", re.IGNORECASE)


def read(path: Path, opts: ImportOptions) -> Extracted:
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and "net_parameters" in obj:
        raise ArtifactError(f"{path}: this is a frozen DataDAM evaluation network "
                            f"(model_params_*.pt), not a distilled set; import the matching "
                            f"syn_data_<dataset>_ipc_<n>.pt")
    if not isinstance(obj, dict) or "data" not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ArtifactError(f"{path}: not a DataDAM syn_data file (expected a dict with 'data' = "
                            f"(images, labels); found {keys})")
    pairs = experiments(obj["data"], path)
    index, images, labels = pick(pairs, opts.experiment, path)
    details: dict[str, object] = {"experiment": index, "experiments": len(pairs)}
    notes: list[str] = []
    m = _NAME.search(path.name)
    if m:
        details["original_dataset"] = m.group(1)
        details["original_ipc"] = int(m.group(2))
    if not opts.zca:
        notes.append("recorded as not ZCA-whitened; if the set was distilled with --zca, "
                     "re-import with --zca")
    return Extracted(images, labels, "normalized", "datadam", details=details, notes=notes)
