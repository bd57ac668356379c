"""The teacher behind soft labels: a network trained on the real training set once, or loaded.

DD-Ranking (arXiv 2505.13300) evaluates soft-label methods with labels from a network trained on
the real data. ``teacher="train"`` trains one here (the evaluation SGD schedule, no augmentation,
``teacher_epochs`` epochs over the real training set or a class-balanced ``teacher_images``
subset) and caches its weights and test accuracy by everything they depend on; a path loads a
state dict (``.safetensors``, or a ``.pt`` read with ``weights_only=True``) for
``teacher_model``. The teacher sees images in the evaluated set's own space (its normalisation
and ZCA), so it labels the set and the random baseline alike.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import condense

from .cache import cache_root, entry_key, read_json, write_atomic, write_json
from .protocol import model_builder
from .training import TrainProtocol, evaluate_models, init_models, train_models


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A trained network in ``eval()`` mode and its accuracy (percent) on the test split."""

    model: nn.Module
    name: str  # architecture
    accuracy: float
    key: str  # what the soft labels depend on (cache keys of results built on them use it)
    source: str  # "trained", "cache" or the path it was loaded from
    seconds: float

    @torch.no_grad()
    def probabilities(self, images: Tensor, temperature: float = 1.0,
                      batch_size: int = 256) -> Tensor:
        """``softmax(teacher(x) / T)`` for normalised ``images`` (CPU float tensor out)."""
        device = next(self.model.parameters()).device
        parts = [self.model(images[i : i + batch_size].to(device)).float()
                 for i in range(0, images.shape[0], batch_size)]
        return F.softmax(torch.cat(parts) / temperature, 1).cpu()


def tempered(probabilities: Tensor, temperature: float) -> Tensor:
    """Stored soft labels (probabilities) at temperature T: ``softmax(log p / T)`` (unchanged at
    T = 1)."""
    if temperature == 1.0:
        return probabilities
    return F.softmax(probabilities.clamp_min(1e-12).log() / temperature, 1)


def balanced_subset(labels: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """Indices of about ``count`` images, as many per class as possible (drawn at random)."""
    classes = int(labels.max()) + 1
    per_class = max(1, count // classes)
    picks = []
    for c in range(classes):
        idx = (labels == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(picks)


def _load_state(path: Path) -> Mapping[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise condense.ConfigError(f"{path} holds no state dict; save model.state_dict()")
    return state


def get_teacher(
    setting: str,
    *,
    model_name: str,
    data: condense.RealData,
    spec: condense.DataSpec,
    transform: Callable[[Tensor], Tensor],
    space: Mapping[str, Any],
    test_images: Tensor,
    test_labels: Tensor,
    epochs: int,
    images: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
    cache_dir: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Teacher, str]:
    """The teacher for ``setting`` (``"train"`` or a path) and ``"hit"``/``"miss"``/``"loaded"``."""
    t0 = time.perf_counter()
    build = model_builder(model_name, spec)
    test_fields = {"test_images": int(test_images.shape[0])}
    if setting != "train":
        path = Path(setting).expanduser()
        if not path.is_file():
            raise condense.ConfigError(
                f"teacher {setting!r} is neither 'train' nor a file; give teacher=train or the "
                f"path of a saved state dict")
        net = build()
        try:
            net.load_state_dict(_load_state(path))
        except RuntimeError as exc:
            raise condense.ConfigError(
                f"{path} does not fit model {model_name!r} (set teacher_model=NAME): "
                f"{str(exc).splitlines()[0]}") from None
        net = net.to(device).eval()
        st = path.stat()
        key = entry_key({"kind": "teacher-file", "path": os.fspath(path.resolve()),
                         "size": st.st_size, "mtime": st.st_mtime_ns, "model": model_name,
                         "space": dict(space)})
        acc = 100.0 * evaluate_models([net], test_images, test_labels, transform)[0]
        return Teacher(net, model_name, acc, key, os.fspath(path),
                       time.perf_counter() - t0), "loaded"
    fields = {"kind": "teacher", "dataset": data.name, "model": model_name, "epochs": epochs,
              "images": images, "batch_size": batch_size, "lr": lr, "seed": seed,
              "space": dict(space), "device": device.type, **test_fields}
    key = entry_key(fields)
    root = cache_root(cache_dir)
    weights, info_path = root / f"teacher-{key}.pt", root / f"teacher-{key}.json"
    info = read_json(info_path)
    if info is not None and weights.is_file():
        try:
            net = build()
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            return Teacher(net.to(device).eval(), model_name, float(info["accuracy"]), key,
                           "cache", time.perf_counter() - t0), "hit"
        except (OSError, RuntimeError, KeyError, ValueError):
            pass  # an unreadable entry is a miss
    generator = condense.keyed_generator(seed, "teacher")
    labels = data.train.labels
    index = (balanced_subset(labels, images, generator) if images > 0
             else torch.arange(len(labels)))
    raw = data.train.images[index]
    x = torch.cat([transform(raw[i : i + 4096]) for i in range(0, len(raw), 4096)])
    y = labels[index].long()
    [net] = init_models(build, [generator], device)
    protocol = TrainProtocol(max(epochs - 1, 0), batch_size, lr, 0.9, 5e-4, 0.1, "none")

    def tick(done: int) -> None:
        if progress is not None:
            progress(done, epochs)

    train_models([net], x.to(device), y.to(device), protocol, [generator],
                 engine="sequential", on_epoch=tick)
    net.eval()
    acc = 100.0 * evaluate_models([net], test_images, test_labels, transform)[0]
    if condense.distributed.is_main():
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
        if write_atomic(weights, buffer.getvalue()):
            write_json(info_path, {"accuracy": acc, "fields": fields})
    return Teacher(net, model_name, acc, key, "trained", time.perf_counter() - t0), "miss"


__all__ = ["Teacher", "balanced_subset", "get_teacher", "tempered"]
