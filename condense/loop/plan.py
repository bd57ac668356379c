"""Resolving a run: method, sampler and loop configs from defaults, presets and ``--set``.

Precedence, lowest first (docs/design.md, "Configuration"):

1. each config's own defaults (``LoopConfig``, the method's and the sampler's ``Config``);
2. the method's ``loop_defaults``, and its ``sampler_defaults`` for the fields the chosen
   sampler declares (others are skipped: they were written for another sampler);
3. the method's ``auto_overrides(spec, ipc)`` (data-dependent, e.g. a larger image learning rate
   above IPC 50);
4. the chosen preset;
5. the user's ``--set key=value``.

Keys: ``loop.KEY``, ``sampler.KEY`` and ``method.KEY`` (or ``<method name>.KEY``) address one
config; a bare ``KEY`` works where exactly one config has it, and is refused as ambiguous where
several do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..interfaces import DataSpec, EncoderSampler, Method
from ..registry import get_method, get_sampler
from .settings import LoopConfig

BUCKETS = ("method", "loop", "sampler")


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

    def with_loop(self, **changes: Any) -> Plan:
        """A copy with loop settings changed (already validated values)."""
        return dataclasses.replace(self, loop=dataclasses.replace(self.loop, **changes))


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
    overrides = dict(overrides or {})
    sampler_cls = get_sampler(str(overrides.pop("sampler", sampler)))
    router = _Router(method_cls, sampler_cls)

    buckets: dict[str, dict[str, Any]] = {b: {} for b in BUCKETS}
    buckets["loop"].update(method_cls.loop_defaults)
    sampler_fields = set(sampler_cls.Config.field_names())
    buckets["sampler"].update({k: v for k, v in method_cls.sampler_defaults.items()
                               if k in sampler_fields})
    layers: list[Mapping[str, Any]] = [method_cls(None).auto_overrides(spec, ipc)]
    if preset:
        presets = dict(method_cls.presets)
        if preset not in presets:
            raise ConfigError(
                f"unknown preset {preset!r} for {method_cls.name}; available: "
                f"{', '.join(sorted(presets)) or '(none)'}"
            )
        layers.append(presets[preset])
    layers.append(overrides)
    for layer in layers:
        for key, value in layer.items():
            bucket, field = router.route(key)
            buckets[bucket][field] = value
    plan = Plan(
        method=method_cls(method_cls.Config.from_dict(buckets["method"], owner=method_cls.name)),
        sampler=sampler_cls(sampler_cls.Config.from_dict(buckets["sampler"],
                                                         owner=f"sampler {sampler_cls.name}")),
        loop=LoopConfig.from_dict(buckets["loop"], owner="the distillation loop"),
        dataset=dataset,
        ipc=ipc,
        seed=seed,
        preset=preset,
    )
    plan.method.check(spec, ipc)
    return plan


class _Router:
    """Maps a ``--set`` key to ``(config, field)``; prefixes win, bare keys must be unique."""

    def __init__(self, method_cls: type[Method], sampler_cls: type[EncoderSampler]) -> None:
        self.method_cls, self.sampler_cls = method_cls, sampler_cls
        self.fields = {
            "method": method_cls.Config.field_names(),
            "loop": LoopConfig.field_names(),
            "sampler": sampler_cls.Config.field_names(),
        }
        self.prefixes = {"method.": "method", f"{method_cls.name}.": "method", "loop.": "loop",
                         "sampler.": "sampler"}

    def route(self, key: str) -> tuple[str, str]:
        for prefix, bucket in self.prefixes.items():
            if key.startswith(prefix):
                field = key.removeprefix(prefix)
                if field in self.fields[bucket]:
                    return bucket, field
                raise self._unknown(key)
        owners = [b for b in BUCKETS if key in self.fields[b]]
        if len(owners) == 1:
            return owners[0], key
        if owners:
            options = " or ".join(f"{b}.{key}" for b in owners)
            raise ConfigError(f"setting {key!r} is ambiguous: both the {' and the '.join(owners)} "
                              f"have it; write {options}")
        raise self._unknown(key)

    def _unknown(self, key: str) -> ConfigError:
        f = self.fields
        return ConfigError(
            f"unknown setting {key!r}; valid for {self.method_cls.name}: "
            f"{', '.join(f['method']) or '(none)'}; loop: {', '.join(f['loop'])}; "
            f"sampler ({self.sampler_cls.name}): "
            f"{', '.join('sampler.' + k for k in f['sampler']) or '(none)'}"
        )
