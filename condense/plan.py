"""Resolving a run: method, sampler and loop configs from defaults, presets and ``--set``.

Precedence, lowest first: the loop's own defaults, the method's ``loop_defaults`` and
``sampler_defaults``, the method's ``auto_overrides(spec, ipc)`` (data-dependent, e.g. a larger
image learning rate above IPC 50), the chosen preset, then the user's ``--set key=value``.
Keys route to the method config, then the loop config, then the sampler config
(``sampler.KEY`` forces the sampler).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch

from .config import Config
from .errors import ConfigError
from .interfaces import DataSpec, EncoderSampler, Method
from .registry import get_method, get_sampler
from .rng import keyed_generator

if TYPE_CHECKING:
    from .data import RealData


@dataclasses.dataclass(frozen=True)
class LoopConfig(Config):
    """Settings of the shared distillation loop (spec §1.1, §2.2)."""

    iterations: int = 20000  # image updates (the official scripts do iterations + 1)
    lr_img: float = 1.0  # SGD learning rate of the synthetic images
    momentum: float = 0.5  # SGD momentum of the synthetic images
    batch_real: int = 64  # real images per class per iteration
    init: Literal["real", "noise"] = "real"  # synthetic initialisation
    dsa_strategy: str = "auto"  # DSA ops joined by '_', 'none', or 'auto' (the dataset's default)
    class_chunk: int = 0  # classes per forward pass; 0 = auto: all unless they exceed memory
    microbatch: int = 0  # real images per no-grad encoder call (no-BatchNorm encoders); 0 = auto
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
        if self.microbatch < 0:
            raise ValueError("microbatch must be >= 0")


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


# ---------------------------------------------------------------------------------------------
# class_chunk 0 = auto: the rule (documented in docs/distributed.md)

#: fraction of the free device memory (CUDA) or available RAM (CPU) the activations may use
AUTO_CHUNK_FRACTION = 0.7
#: bytes of activation memory per float of one image's encoder features (all block outputs and
#: the embedding): the real pass keeps the fp32 block outputs (no grad); the synthetic pass also
#: keeps what backward needs (norm inputs and outputs, the loss's intermediates) and gradients.
#: Checked against benchmarks/distill.py --what memory (TinyImageNet IPC50, ConvNet-4 BN,
#: DataDAM, CPU): ~450 MB measured per class, 597 MB estimated.
REAL_BYTES_PER_FEATURE = 4.0
SYN_BYTES_PER_FEATURE = 12.0


def auto_class_chunk(n_classes: int, class_bytes: float, free_bytes: float,
                     fraction: float = AUTO_CHUNK_FRACTION) -> int:
    """The auto rule: 0 (all ``n_classes`` in one pass) if they fit in ``fraction·free_bytes``,
    else the largest chunk that fits (at least 1). Unknown sizes (≤ 0) mean all classes."""
    if n_classes <= 1 or class_bytes <= 0 or free_bytes <= 0:
        return 0
    budget = fraction * free_bytes
    if n_classes * class_bytes <= budget:
        return 0
    return max(1, int(budget // class_bytes))


def estimate_class_bytes(plan: Plan, data: RealData, device: torch.device | str) -> int:
    """Activation bytes one class adds to a forward/backward pass of ``plan``'s encoder.

    Measured from the encoder's output sizes on two blank images (no data, no gradients):
    ``features_per_image · (4·batch_real + 12·ipc)`` bytes.
    """
    spec = data.spec
    encoder = plan.sampler.sample(spec, generator=keyed_generator(plan.seed, "probe"),
                                  device=device)
    with torch.no_grad():
        feats = encoder(torch.zeros(2, spec.channels, *spec.image_size, device=device))
    per_image = (feats.embedding.numel() + sum(m.numel() for m in feats.maps)) / 2
    batch_real = min(plan.loop.batch_real, min(len(ix) for ix in data.class_index()))
    return int(per_image * (REAL_BYTES_PER_FEATURE * batch_real + SYN_BYTES_PER_FEATURE * plan.ipc))


def available_bytes(device: torch.device | str) -> int:
    """Memory this process may fill: free CUDA memory (plus what torch's cache holds unused),
    or on the CPU ``MemAvailable`` shared by the ``LOCAL_WORLD_SIZE`` processes of this machine;
    0 when unknown."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))
    if dev.type != "cpu":
        return 0
    try:
        with open("/proc/meminfo") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0
    return kib * 1024 // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or "1"))


def resolve_class_chunk(plan: Plan, data: RealData, device: torch.device | str,
                        n_classes: int) -> int:
    """The class chunk to run ``n_classes`` with: ``loop.class_chunk`` when set, else the auto
    rule (:func:`auto_class_chunk`); 0 means all classes in one pass."""
    chunk = plan.loop.class_chunk
    if chunk or n_classes <= 1 or not plan.method.needs_encoder:
        return chunk
    return auto_class_chunk(n_classes, estimate_class_bytes(plan, data, device),
                            available_bytes(device))
