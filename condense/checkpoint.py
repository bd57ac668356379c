"""Atomic checkpoints of a running distillation (safetensors + JSON metadata, no pickle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from .errors import CheckpointError
from .store import atomic_write

if TYPE_CHECKING:
    from .plan import Plan

_IGNORED_ON_RESUME = {"iterations", "checkpoint_every", "eval_every", "log_every", "class_chunk",
                      "microbatch"}


def _comparable(plan_dict: dict) -> dict:
    from .plan import LoopConfig

    # a checkpoint from an older condense lacks newer loop settings: they had their defaults
    full = {**LoopConfig().to_dict(), **plan_dict["loop"]}
    loop = {k: v for k, v in full.items() if k not in _IGNORED_ON_RESUME}
    return {**plan_dict, "loop": loop}


def save_checkpoint(path: Path, plan: Plan, syn: Tensor, optimizer: torch.optim.Optimizer,
                    iteration: int) -> None:
    """Write syn, the optimiser's momentum buffer and the iteration; never a half-written file."""
    tensors = {"syn": syn.detach().to("cpu").contiguous().clone()}
    state = optimizer.state.get(syn, {})
    if "momentum_buffer" in state and state["momentum_buffer"] is not None:
        tensors["momentum_buffer"] = state["momentum_buffer"].detach().to("cpu").contiguous().clone()
    meta = {"condense_format": "checkpoint", "iteration": str(iteration),
            "plan": json.dumps(plan.to_dict(), sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_checkpoint(path: Path, plan: Plan, syn: Tensor, optimizer: torch.optim.Optimizer) -> int:
    """Restore ``syn`` and the optimiser in place; return the iteration to continue from."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    if meta.get("condense_format") != "checkpoint":
        raise CheckpointError(f"{path}: not a condense checkpoint")
    saved = json.loads(meta["plan"])
    if _comparable(saved) != _comparable(plan.to_dict()):
        diff = _diff(_comparable(saved), _comparable(plan.to_dict()))
        raise CheckpointError(
            f"{path}: checkpoint was made with different settings ({diff}); resume with the same "
            f"command, or remove the checkpoint to start afresh"
        )
    if tensors["syn"].shape != syn.shape:
        raise CheckpointError(f"{path}: synthetic set shape {tuple(tensors['syn'].shape)} differs")
    with torch.no_grad():
        syn.copy_(tensors["syn"])
    if "momentum_buffer" in tensors:
        optimizer.state[syn]["momentum_buffer"] = tensors["momentum_buffer"].to(syn.device).clone()
    return int(meta["iteration"])


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
