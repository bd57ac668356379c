"""The protocol every evaluator shares: the artifact's input space, its targets, DSA, the model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

import condense


def synset_transform(
    synset: condense.SynSet, data: condense.RealData | None = None
) -> Callable[[Tensor], Tensor]:
    """uint8 images -> the space the artifact's images live in (its mean/std, then its ZCA).

    A downloaded set is thus tested in its own space without flags, whatever the dataset's
    defaults are. A set whose metadata says it is ZCA-whitened but that carries no ZCA tensors
    (e.g. an MTT import without ``--fit-zca``) gets the ZCA refitted on ``data``'s whole
    training set, normalised the same way (eps from the metadata), as the field does.
    """
    c = int(synset.images.shape[1])
    mean = torch.tensor(synset.meta.get("mean", [0.0] * c), dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(synset.meta.get("std", [1.0] * c), dtype=torch.float32).view(1, -1, 1, 1)
    zca = None
    if synset.zca_mean is not None and synset.zca_transform is not None:
        eps = float((synset.meta.get("zca") or {}).get("eps", 0.1))
        zca = condense.ZCA(synset.zca_mean.float(), synset.zca_transform.float(), eps)
    elif synset.meta.get("zca"):
        if data is None:
            raise condense.ConfigError(
                "the set is ZCA-whitened but stores no ZCA tensors; evaluate it with its real "
                "dataset so the ZCA can be refitted (or re-import with --fit-zca)")
        eps = float(synset.meta["zca"].get("eps", 0.1))
        train = data.train.images
        parts = [((train[i : i + 10000].float() / 255.0) - mean) / std
                 for i in range(0, len(train), 10000)]
        zca = condense.ZCA.fit(torch.cat(parts), eps)

    def transform(images: Tensor) -> Tensor:
        x = images.float().div(255.0)
        x = (x - mean.to(x.device)) / std.to(x.device)
        return zca(x) if zca is not None else x

    return transform


def data_spec(synset: condense.SynSet, data: condense.RealData) -> condense.DataSpec:
    """Input shape from the artifact, class count from the dataset (checked to agree)."""
    _, c, h, w = synset.images.shape
    real = data.spec
    if (c, (h, w)) != (real.channels, tuple(real.image_size)):
        raise condense.ConfigError(
            f"the artifact's images are {c}×{h}×{w} but {data.name} gives "
            f"{real.channels}×{real.image_size[0]}×{real.image_size[1]}; evaluate it against "
            f"the data it was distilled from (its metadata: dataset "
            f"{synset.meta.get('dataset')!r}, settings {synset.meta.get('dataset_config') or {}})"
            f"; condense.evaluate checks this first and names the fix")
    return condense.DataSpec(channels=c, image_size=(h, w), num_classes=real.num_classes)


def training_targets(synset: condense.SynSet) -> Tensor:
    """Hard labels, or soft labels as probabilities (rows not summing to 1 are softmax-ed)."""
    if synset.soft_labels is None:
        return synset.labels.long()
    soft = synset.soft_labels.float()
    if not torch.allclose(soft.sum(1), torch.ones(soft.shape[0]), atol=1e-3) or (soft < 0).any():
        soft = soft.softmax(1)
    return soft


def resolve_dsa(setting: str, data: condense.RealData) -> str:
    """``auto`` -> the dataset's default strategy (MNIST drops flip); else validated as given."""
    strategy = data.source.dsa_strategy if setting == "auto" else setting
    condense.augment.parse_strategy(strategy)
    return "none" if strategy.lower() in ("", "none") else strategy


def model_builder(name: str, spec: condense.DataSpec) -> Callable[[], nn.Module]:
    """A zero-argument builder of ``name`` for ``spec`` (validated now, not at the first call)."""
    condense.networks.build_model(name, spec)
    return lambda: condense.networks.build_model(name, spec)


def check_model(name: str) -> None:
    key = name.lower().replace("_", "-")
    if key not in condense.networks.MODELS:
        raise condense.ConfigError(
            f"unknown model {name!r}; available: {', '.join(condense.networks.model_names())}")


def protocol_name(values: dict[str, object], presets: dict[str, dict[str, object]],
                  defaults: dict[str, object], keys: tuple[str, ...]) -> str:
    """The preset whose protocol ``keys`` all match ``values``; else ``custom``.

    A preset that matches in everything but the model is reported as ``NAME+model=...`` (a
    cross-architecture run of that protocol).
    """
    for name, preset in presets.items():
        full = {**defaults, **preset}
        if all(values[k] == full[k] for k in keys):
            return name
    for name, preset in presets.items():
        full = {**defaults, **preset}
        if all(values[k] == full[k] for k in keys if k != "model"):
            return f"{name}+model={values['model']}"
    return "custom"


__all__ = ["check_model", "data_spec", "model_builder", "protocol_name", "resolve_dsa",
           "synset_transform", "training_targets"]
