"""Resolving a run: method, sampler and loop configs from defaults, presets and ``--set``.

Precedence, lowest first: the loop's own defaults, the method's ``loop_defaults`` and
``sampler_defaults``, the method's ``auto_overrides(spec, ipc)`` (data-dependent, e.g. a larger
image learning rate above IPC 50), the chosen preset, then the user's ``--set key=value``.
Keys route to the method config, then the loop config, then the sampler config
(``sampler.KEY`` forces the sampler).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from .config import Config
from .errors import ConfigError
from .interfaces import DataSpec, EncoderSampler, Method
from .registry import get_method, get_sampler


@dataclasses.dataclass(frozen=True)
class LoopConfig(Config):
    """Settings of the shared distillation loop (spec §1.1, §2.2)."""

    iterations: int = 20000  # image updates (the official scripts do iterations + 1)
    lr_img: float = 1.0  # SGD learning rate of the synthetic images
    momentum: float = 0.5  # SGD momentum of the synthetic images
    batch_real: int = 64  # real images per class per iteration
    init: Literal["real", "noise"] = "real"  # synthetic initialisation
    dsa_strategy: str = "auto"  # DSA ops joined by '_', 'none', or 'auto' (the dataset's default)
    class_chunk: int = 0  # classes per forward pass; 0 = all classes
    checkpoint_every: int = 500  # iterations between atomic checkpoints (0 = only at the end)
    eval_every: int = 0  # iterations between evaluations (0 = never during the run)
    log_every: int = 10  # iterations between loss read-outs (each costs a device sync)
    zca: bool = False  # ZCA-whiten real data (fitted on the whole training set)
    zca_eps: float = 0.1  # ZCA regulariser, as kornia/MTT/DataDAM
    channels_last: bool = True  # channels_last (NHWC) memory format for the encoder pass
    autocast: Literal["none", "bf16"] = "none"  # bf16 autocast of the encoder pass (GPU)

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError("iterations must be >= 0")
        if self.batch_real < 1:
            raise ValueError("batch_real must be >= 1")
        if self.class_chunk < 0:
            raise ValueError("class_chunk must be >= 0")


@dataclasses.dataclass(frozen=True)
class Plan:
    """A fully resolved run (stored in checkpoints and artifacts)."""

    method: Method
    sampler: EncoderSampler
    loop: LoopConfig
    dataset: str
    ipc: int
    seed: int
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": type(self.method).name,
            "method_config": self.method.config.to_dict(),
            "sampler": type(self.sampler).name,
            "sampler_config": self.sampler.config.to_dict(),
            "loop": self.loop.to_dict(),
            "dataset": self.dataset,
            "ipc": self.ipc,
            "seed": self.seed,
            "preset": self.preset,
        }


def resolve_plan(
    method: str | type[Method],
    *,
    dataset: str,
    spec: DataSpec,
    ipc: int,
    seed: int = 0,
    sampler: str = "convnet",
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Plan:
    """Build the :class:`Plan` for one run; invalid keys or values raise ConfigError."""
    if ipc < 1:
        raise ConfigError(f"--ipc must be at least 1, got {ipc}")
    method_cls = get_method(method) if isinstance(method, str) else method
    sampler_name = str((overrides or {}).get("sampler", sampler))
    sampler_cls = get_sampler(sampler_name)
    layers: list[Mapping[str, Any]] = [
        dict(method_cls.loop_defaults),
        {f"sampler.{k}": v for k, v in method_cls.sampler_defaults.items()},
    ]
    layers.append(method_cls(None).auto_overrides(spec, ipc))
    if preset:
        presets = dict(method_cls.presets)
        if preset not in presets:
            raise ConfigError(
                f"unknown preset {preset!r} for {method_cls.name}; available: "
                f"{', '.join(sorted(presets)) or '(none)'}"
            )
        layers.append(presets[preset])
    layers.append({k: v for k, v in (overrides or {}).items() if k != "sampler"})

    buckets: dict[str, dict[str, Any]] = {"method": {}, "loop": {}, "sampler": {}}
    for layer in layers:
        for key, value in layer.items():
            bucket, field = _route(key, method_cls, sampler_cls)
            buckets[bucket][field] = value
    return Plan(
        method=method_cls(method_cls.Config.from_dict(buckets["method"], owner=method_cls.name)),
        sampler=sampler_cls(sampler_cls.Config.from_dict(buckets["sampler"], owner=sampler_cls.name)),
        loop=LoopConfig.from_dict(buckets["loop"], owner="the distillation loop"),
        dataset=dataset,
        ipc=ipc,
        seed=seed,
        preset=preset,
    )


def _route(key: str, method_cls: type[Method], sampler_cls: type[EncoderSampler]) -> tuple[str, str]:
    method_keys = method_cls.Config.field_names()
    loop_keys = LoopConfig.field_names()
    sampler_keys = sampler_cls.Config.field_names()
    if key.startswith("sampler."):
        field = key.removeprefix("sampler.")
        if field in sampler_keys:
            return "sampler", field
    elif key in method_keys:
        return "method", key
    elif key in loop_keys:
        return "loop", key
    elif key in sampler_keys:
        return "sampler", key
    raise ConfigError(
        f"unknown setting {key!r}; valid for {method_cls.name}: "
        f"{', '.join(method_keys) or '(none)'}; loop: {', '.join(loop_keys)}; "
        f"sampler ({sampler_cls.name}): {', '.join('sampler.' + k for k in sampler_keys)}"
    )
