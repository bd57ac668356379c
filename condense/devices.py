"""Device names: ``"auto"`` resolves to ``"cuda"`` where CUDA is available, else ``"cpu"``; any
other name is checked against the devices this machine has (:func:`available_devices`).

Shared by the Python API (:func:`condense.distill`, :func:`condense.evaluate`,
:func:`condense.load`) and the command line (``--device``, default ``auto``).
"""

from __future__ import annotations

import torch

from .errors import ConfigError

AUTO = "auto"


def available_devices() -> list[str]:
    """``cpu``, then ``cuda:0`` … ``cuda:N-1`` and ``mps`` where present."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def _unavailable(device: object, why: str) -> ConfigError:
    return ConfigError(f"device {str(device)!r} {why}; this machine has: "
                       f"{', '.join(available_devices())} (or auto: cuda where available, else "
                       f"cpu)")


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it; else one ConfigError naming the
    devices that exist."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise _unavailable(device, "is not a torch device name") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise _unavailable(device, "is not available (no usable CUDA GPU)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise _unavailable(device, f"does not exist ({torch.cuda.device_count()} CUDA "
                                       f"device(s))")
        return dev
    backend = getattr(torch.backends, dev.type, None) or getattr(torch, dev.type, None)
    is_available = getattr(backend, "is_available", None)
    if not (callable(is_available) and is_available()):
        raise _unavailable(device, "is not available")
    return dev


def resolve_device(device: str | torch.device) -> str | torch.device:
    """``"auto"`` (any case) -> ``"cuda"`` if available else ``"cpu"``; any other device as
    given, once :func:`check_device` has found it on this machine."""
    if isinstance(device, str) and device.strip().lower() == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    return device


__all__ = ["AUTO", "available_devices", "check_device", "resolve_device"]
