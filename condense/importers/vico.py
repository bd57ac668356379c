"""VICO-UoE DC / DSA / DM (and DataDAM's own runs): ``res_<M>_<DS>_<MODEL>_<ipc>ipc.pt``.

A dict whose ``data`` is a list over experiments of ``[images, labels]``; the images are already
normalised with the dataset's mean/std. ``accs_all_exps`` (numpy scalars in the official DM output)
is kept as the accuracies the original run reported. The last experiment is taken by default, as
DC-BENCH does (``--experiment`` picks another).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor

from ..errors import ArtifactError
from ._common import Extracted, ImportOptions, as_tensor
from ._safe_load import safe_torch_load

_NAME = re.compile(r"res_([A-Za-z0-9]+)_([A-Za-z0-9]+)_([A-Za-z0-9]+)_(\d+)ipc", re.IGNORECASE)


def experiments(data: Any, where: Path) -> list[tuple[Tensor, Tensor]]:
    """The ``[images, labels]`` pairs of a ``data`` entry (one pair or a list of pairs)."""
    if (isinstance(data, (list, tuple)) and len(data) == 2
            and all(isinstance(x, Tensor) for x in data)):
        return [(as_tensor(data[0], "images", where), as_tensor(data[1], "labels", where))]
    if isinstance(data, (list, tuple)) and data:
        pairs = []
        for i, exp in enumerate(data):
            if not (isinstance(exp, (list, tuple)) and len(exp) == 2):
                raise ArtifactError(f"{where}: data[{i}] is not an [images, labels] pair")
            pairs.append((as_tensor(exp[0], "images", where), as_tensor(exp[1], "labels", where)))
        return pairs
    raise ArtifactError(f"{where}: 'data' holds no [images, labels] pair")


def pick(pairs: list[tuple[Tensor, Tensor]], index: int, where: Path) -> tuple[int, Tensor, Tensor]:
    n = len(pairs)
    if not -n <= index < n:
        raise ArtifactError(f"{where}: --experiment {index} is out of range; the file holds {n} "
                            f"experiment(s) (0..{n - 1}, or -1 for the last)")
    i = index % n
    return i, pairs[i][0], pairs[i][1]


def reported_accuracies(value: Any) -> dict[str, list[float]] | None:
    """``accs_all_exps`` as plain floats (numpy scalars and tensors converted)."""
    if not isinstance(value, dict):
        return None
    out: dict[str, list[float]] = {}
    for key, accs in value.items():
        items = accs if isinstance(accs, (list, tuple)) else [accs]
        try:
            out[str(key)] = [float(a) for a in items]
        except (TypeError, ValueError):
            continue
    return out


def read(path: Path, opts: ImportOptions) -> Extracted:
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or "data" not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ArtifactError(f"{path}: not a res_*.pt file (expected a dict with a 'data' list of "
                            f"[images, labels]; found {keys})")
    pairs = experiments(obj["data"], path)
    index, images, labels = pick(pairs, opts.experiment, path)
    details: dict[str, Any] = {"experiment": index, "experiments": len(pairs)}
    accs = reported_accuracies(obj.get("accs_all_exps"))
    if accs:
        details["reported_accuracy"] = accs
    notes: list[str] = []
    method = "dc"
    m = _NAME.search(path.name)
    if m:
        method = m.group(1).lower()
        details.update({"original_method": m.group(1), "original_dataset": m.group(2),
                        "original_model": m.group(3)})
        if _norm(m.group(2)) != _norm(opts.dataset):
            notes.append(f"the file name says dataset {m.group(2)!r}, "
                         f"importing as {opts.dataset!r}")
    elif not opts.method:
        notes.append("file name is not res_<METHOD>_<DATASET>_<MODEL>_<N>ipc.pt; method recorded "
                     "as 'dc' (pass --method to name it)")
    if len(pairs) > 1:
        notes.append(f"took experiment {index} of {len(pairs)} (--experiment picks another)")
    return Extracted(images, labels, "normalized", method, details=details, notes=notes)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())
