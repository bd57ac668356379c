"""Atomic checkpoints of a running distillation (safetensors + JSON metadata, no pickle).

A checkpoint holds named tensors (``syn``, ``momentum_buffer``), the iteration to continue from,
the plan it was made with, and the method's state (:meth:`condense.Method.state_dict`): its
tensors are stored as ``method/<path>`` entries and everything else as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..errors import CheckpointError
from ..fileio import atomic_write
from ..registry import get_method, get_sampler
from .settings import LoopConfig

_METHOD = "method/"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint restores: the iteration, the loop's tensors and the method's state."""

    iteration: int
    tensors: dict[str, Tensor]
    method_state: dict[str, Any]


def save_checkpoint(path: Path, plan: Mapping[str, Any], iteration: int,
                    tensors: Mapping[str, Tensor], method_state: Mapping[str, Any]) -> None:
    """Write ``tensors``, the method's state and the iteration; never a half-written file."""
    out = {k: _cpu(t) for k, t in tensors.items()}
    found: dict[str, Tensor] = {}
    state = _encode(dict(method_state), "", found)
    out.update({_METHOD + k: _cpu(t) for k, t in found.items()})
    meta = {"condense_format": "checkpoint", "iteration": str(iteration),
            "plan": json.dumps(dict(plan), sort_keys=True),
            "method_state": json.dumps(state, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(out, tmp, metadata=meta))


def load_checkpoint(path: Path, plan: Mapping[str, Any]) -> Checkpoint:
    """Read a checkpoint made with ``plan`` (settings that may change on resume aside)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    if meta.get("condense_format") != "checkpoint":
        raise CheckpointError(f"{path}: not a condense checkpoint")
    saved_plan, iteration = _entries(path, meta, tensors)
    saved, now = comparable(saved_plan), comparable(dict(plan))
    if saved != now:
        raise CheckpointError(
            f"{path}: checkpoint was made with different settings ({_diff(saved, now)}); resume "
            f"with the same command, or remove the checkpoint to start afresh"
        )
    method_tensors = {k[len(_METHOD):]: t for k, t in tensors.items() if k.startswith(_METHOD)}
    try:
        state = _decode(json.loads(meta.get("method_state", "{}")), method_tensors)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise _damaged(path, "its method state is unreadable") from None
    loop = {k: t for k, t in tensors.items() if not k.startswith(_METHOD)}
    return Checkpoint(iteration, loop, state)


def _damaged(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: damaged checkpoint ({what}); remove it to start afresh, "
                           f"or resume from a copy made before it was damaged")


def _entries(path: Path, meta: Mapping[str, str],
             tensors: Mapping[str, Tensor]) -> tuple[dict[str, Any], int]:
    """The plan and iteration of a checkpoint, after checking that every entry a resume needs
    (``plan``, ``iteration``, the ``syn`` tensor) is there."""
    missing = [k for k in ("plan", "iteration") if k not in meta]
    if "syn" not in tensors:
        missing.append("syn")
    if missing:
        raise _damaged(path, f"no {', '.join(repr(k) for k in missing)} entry")
    try:
        saved_plan = json.loads(meta["plan"])
        iteration = int(meta["iteration"])
    except (json.JSONDecodeError, ValueError):
        raise _damaged(path, "its 'plan' or 'iteration' entry is unreadable") from None
    needed = {"loop", "method", "method_config", "sampler", "sampler_config"}
    if not isinstance(saved_plan, dict) or not needed <= set(saved_plan):
        raise _damaged(path, "its 'plan' entry is not a run's plan")
    if iteration < 0:
        raise _damaged(path, f"iteration {iteration}")
    return saved_plan, iteration


def checkpoint_iteration(path: Path) -> int:
    """The iteration a checkpoint continues from, read from its header (no tensors loaded)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
        return int(meta["iteration"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None


def check_resume_point(path: Path | str | None, iteration: int, iterations: int) -> None:
    """Refuse a checkpoint past the run's end: its images are ``iteration`` updates in, and an
    artifact that said ``iterations`` would be false."""
    if iteration > iterations:
        raise CheckpointError(
            f"{path}: the checkpoint is at iteration {iteration}, past --iterations "
            f"{iterations}; resume with --iterations {iteration} or more, or remove the "
            f"checkpoint to start afresh")


def comparable(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The plan without the settings that may change on resume (``setting(resumable=True)``);
    settings a checkpoint lacks (made before they existed) count as their defaults."""
    out = dict(plan)
    out["loop"] = _fixed(LoopConfig, plan["loop"])
    for kind, lookup in (("method", get_method), ("sampler", get_sampler)):
        try:
            cls = lookup(plan[kind])
        except Exception:  # an uninstalled component: compare its settings as they are
            continue
        out[f"{kind}_config"] = _fixed(cls.Config, plan[f"{kind}_config"])
    return out


def _fixed(config_cls: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        full = {**config_cls().to_dict(), **values}
    except Exception:  # a config without defaults for every field
        full = dict(values)
    return {k: v for k, v in full.items() if k not in config_cls.resumable_fields()}


def _diff(a: dict, b: dict, prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            d = _diff(va, vb, f"{prefix}{key}.")
            if d:
                return d
        elif va != vb:
            return f"{prefix}{key}: {va!r} then, {vb!r} now"
    return ""


def _cpu(t: Tensor) -> Tensor:
    return t.detach().to("cpu").contiguous().clone()


# method state: tensors out to safetensors, the rest as JSON with typed placeholders

def _encode(value: Any, path: str, found: dict[str, Tensor]) -> Any:
    if isinstance(value, Tensor):
        found[path] = value
        return {"__tensor__": path}
    if isinstance(value, Mapping):
        items = [[_encode(k, "", {}) if not isinstance(k, str) else k,
                  _encode(v, f"{path}.{k}" if path else str(k), found)] for k, v in value.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k, _ in items):
            return {k: v for k, v in items}
        return {"__items__": items}
    if isinstance(value, (list, tuple)):
        enc = [_encode(v, f"{path}.{i}", found) for i, v in enumerate(value)]
        return {"__tuple__": enc} if isinstance(value, tuple) else enc
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"method state {path or '(root)'}: {type(value).__name__} is neither a "
                          f"tensor nor JSON-able; return tensors, numbers, strings, lists, dicts")


def _decode(value: Any, tensors: Mapping[str, Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        if "__items__" in value:
            return {_decode(k, tensors) if isinstance(k, dict) else k: _decode(v, tensors)
                    for k, v in value["__items__"]}
        return {k: _decode(v, tensors) for k, v in value.items()}
    return value


def momentum_of(optimizer: torch.optim.Optimizer, param: Tensor) -> Tensor | None:
    """The SGD momentum buffer of ``param`` (``None`` before the first step)."""
    return optimizer.state.get(param, {}).get("momentum_buffer")
