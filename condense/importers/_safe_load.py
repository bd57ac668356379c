"""Loading legacy ``torch.save`` pickles without ever running pickled code.

Every file goes through ``torch.load(weights_only=True)``: only tensors and plain containers are
rebuilt. The one extension is numpy's scalar reconstruction and dtype classes (the official DM
``res_*.pt`` keeps numpy floats in ``accs_all_exps``); a file that needs anything else is refused
with a message naming the global it asked for.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy import dtypes

from ..errors import ArtifactError

_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def numpy_safe_globals() -> list[Any]:
    """numpy's scalar reconstruction (under its numpy 1 and 2 names) and its dtype classes."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    scalar = multiarray.scalar
    allowed: list[Any] = [scalar, np.dtype]
    allowed += [(scalar, name) for name in ("numpy.core.multiarray.scalar",
                                            "numpy._core.multiarray.scalar")]
    allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` a legacy file on the CPU; raise ArtifactError instead of running code."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file")
    if path.is_dir():
        raise ArtifactError(f"{path}: is a folder; give the .pt file")
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()), warnings.catch_warnings():
            # torch warns about plain pickles (protocol > 2) before refusing or reading them;
            # the outcome is reported as one line, so the warning is noise
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported operand" in text or "load key" in text:  # not a pickle at all
            raise _unreadable(path, ValueError("no torch.save data in it")) from None
        found = _GLOBAL.search(text)
        what = f"the global {found.group(1)}" if found else "objects other than tensors"
        raise ArtifactError(
            f"{path}: refused: unpickling it would need {what}, i.e. running code stored in the "
            f"file (condense only loads with torch.load(weights_only=True)). If you trust the "
            f"file, re-save just its tensors (torch.save((images, labels), 'plain.pt')) and "
            f"import that with --format tensors"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _unreadable(path, exc) from None
    except (KeyError, IndexError, TypeError, AttributeError, struct.error,
            UnicodeDecodeError) as exc:  # the unpickler choking on bytes that are no pickle
        raise _unreadable(path, ValueError(f"malformed pickle data: {type(exc).__name__}")) \
            from None


def _unreadable(path: Path, exc: BaseException) -> ArtifactError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return ArtifactError(
        f"{path}: not a readable torch file ({first}); it may be truncated or in another format"
    )
