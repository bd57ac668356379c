"""The self-describing metadata every artifact carries (how it was made and how to read it)."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

import torch

from ..plugins import plugin_versions
from ..realdata import RealData
from ..version import __version__
from .plan import Plan


def versions() -> dict[str, Any]:
    """The versions of condense, torch, Python and every loaded plugin distribution."""
    return {"condense": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "plugins": plugin_versions()}


def synset_meta(plan: Plan, data: RealData, iterations_done: int) -> dict[str, Any]:
    d = plan.to_dict()
    spec = data.spec
    zca = None
    if data.zca is not None:
        zca = {"eps": data.zca.eps,
               "fit": "unbiased covariance of the whole normalised training set",
               "stored": True}
    return {
        "method": d["method"],
        "method_config": d["method_config"],
        "sampler": d["sampler"],
        "sampler_config": d["sampler_config"],
        "loop": d["loop"],
        "preset": d["preset"],
        "dataset": data.name,
        "dataset_config": dict(data.config),
        "data_root": _root(data),
        "class_names": list(data.class_names),
        "channels": spec.channels,
        "image_size": list(spec.image_size),
        "mean": list(data.mean),
        "std": list(data.std),
        "zca": zca,
        "ipc": plan.ipc,
        "seed": plan.seed,
        "iterations": iterations_done,
        "label_type": "hard",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "reproduce": reproduce_command(plan) + _dataset_flags(data),
    }


def _root(data: RealData) -> str | None:
    """The data folder the set was distilled from, absolute (``condense eval`` reads the data
    there again when it still exists and no --data-dir is given)."""
    if data.root is None:
        return None
    return str(Path(data.root).expanduser().resolve())


def _dataset_flags(data: RealData) -> str:
    """``--data-set key=value`` for each dataset setting that differs from its default."""
    try:
        defaults = type(data.source).Config().to_dict()
    except Exception:
        defaults = {}
    changed = {k: v for k, v in sorted(data.config.items()) if defaults.get(k) != v}
    return "".join(f" --data-set {k}={_fmt(v)}" for k, v in changed.items())


def reproduce_command(plan: Plan) -> str:
    d = plan.to_dict()
    parts = ["condense", "run", d["method"], "--dataset", d["dataset"], "--ipc", str(plan.ipc),
             "--seed", str(plan.seed), "--iterations", str(d["loop"]["iterations"])]
    if plan.preset:
        parts += ["--preset", plan.preset]
    for k, v in sorted(d["method_config"].items()):
        parts += ["--set", f"method.{k}={_fmt(v)}"]
    for k, v in sorted(d["loop"].items()):
        if k != "iterations":
            parts += ["--set", f"loop.{k}={_fmt(v)}"]
    parts += ["--set", f"sampler={d['sampler']}"]
    for k, v in sorted(d["sampler_config"].items()):
        parts += ["--set", f"sampler.{k}={_fmt(v)}"]
    return " ".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)
