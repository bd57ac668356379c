"""Device names: ``"auto"`` resolves to ``"cuda"`` where CUDA is available, else ``"cpu"``.

Shared by the Python API (:func:`condense.distill`, :func:`condense.evaluate`,
:func:`condense.load`) and the command line (``--device``, default ``auto``).
"""

from __future__ import annotations

import torch

AUTO = "auto"


def resolve_device(device: str | torch.device) -> str | torch.device:
    """``"auto"`` (any case) -> ``"cuda"`` if available else ``"cpu"``; anything else as given."""
    if isinstance(device, str) and device.strip().lower() == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


__all__ = ["AUTO", "resolve_device"]
