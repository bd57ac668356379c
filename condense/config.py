"""Typed, frozen configuration dataclasses that reject unknown keys.

Every component owns a nested ``Config`` subclass of :class:`Config`. Values arrive from Python
(already typed), from JSON (artifact metadata, checkpoints) or from the command line as strings
(``--set key=value``); :meth:`Config.from_dict` coerces all three to the declared field types.

A field declared with :func:`setting` ``(..., resumable=True)`` may differ between a checkpoint and
the run that resumes it (how often to log or checkpoint, memory-only settings); every other field
must be the same. One rule for the loop's, the methods' and the samplers' settings.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from abc import ABC
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError

C = TypeVar("C", bound="Config")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


#: field metadata key: the setting may change when a run is resumed
RESUMABLE = "condense_resumable"


def setting(default: Any, *, resumable: bool = False) -> Any:
    """A config field with a default; ``resumable=True``: it may change on ``--resume``."""
    return dataclasses.field(default=default, metadata={RESUMABLE: resumable})


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of every component config: frozen, typed, strict about keys."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def resumable_fields(cls) -> frozenset[str]:
        """Fields that may differ between a checkpoint and the run resuming it."""
        return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get(RESUMABLE))

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any] | None = None, *, owner: str = "") -> C:
        """Build a config, coercing strings to the field types; unknown keys raise ConfigError."""
        values = dict(values or {})
        valid = cls.field_names()
        unknown = sorted(set(values) - set(valid))
        if unknown:
            where = f" for {owner}" if owner else ""
            raise ConfigError(
                f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}{where}; "
                f"valid keys: {', '.join(valid) or '(none)'}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {k: coerce(v, hints[k], k) for k, v in values.items()}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid config{' for ' + owner if owner else ''}: {exc}") from exc

    def replace(self: C, **changes: Any) -> C:
        """Return a copy with ``changes`` applied (validated like :meth:`from_dict`)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class Component(ABC):
    """Base of every plugin component: ``name``, nested ``Config``, built from a config or dict."""

    name: ClassVar[str]
    Config: ClassVar[type[Config]] = Config
    #: named bundles of settings, e.g. ``{"paper": {"attention_power": 4}}`` (keys as ``--set``)
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, config: Config | Mapping[str, Any] | None = None) -> None:
        cls = type(self).Config
        if config is None:
            config = cls()
        elif not isinstance(config, Config):
            config = cls.from_dict(config, owner=type(self).name)
        elif not isinstance(config, cls):
            raise TypeError(f"{type(self).__name__} needs a {cls.__qualname__}, got {type(config)}")
        self.config = config


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Coerce ``value`` (possibly a command-line string) to the type ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: cannot use {value!r}")
    if origin is typing.Literal:
        if isinstance(value, str):
            for a in args:
                if str(a) == value:
                    return a
        if value in args:
            return value
        raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}; got {value!r}")
    if origin is tuple:
        items = _split(value)
        inner = args[0] if args else Any
        return tuple(coerce(v, inner, key) for v in items)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key} must be true or false; got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer; got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer; got {value!r}") from None
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number; got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string; got {value!r}")
        return value
    return value


def _split(value: Any) -> Iterable[Any]:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return json.loads(value)
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return value
    return [value]


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Parse ``key=value`` strings from ``--set``; a malformed item raises ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out
