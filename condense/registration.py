"""Running the registration hooks and checking every class they register.

A class is refused (and recorded) when it is abstract, has no non-empty string ``name``, or its
``Config`` is not a ``condense.Config`` dataclass; a name registered by several plugins is kept
apart so that only that name fails. docs/plugins.md ("When a plugin is wrong") describes what users
see; :mod:`condense.registry` is the public face.
"""

from __future__ import annotations

import dataclasses
import inspect
import traceback
from typing import Any

from .config import Config
from .interfaces import DatasetSource, EncoderSampler, Evaluator, Method
from .plugins import PluginFailure, distribution, load_plugins, pm

KINDS: dict[str, tuple[str, type]] = {
    "methods": ("register_methods", Method),
    "samplers": ("register_encoder_samplers", EncoderSampler),
    "evaluators": ("register_evaluators", Evaluator),
    "datasets": ("register_datasets", DatasetSource),
}


@dataclasses.dataclass
class Scan:
    """One pass over a kind's registration hooks."""

    kind: str
    found: dict[str, tuple[type, str]] = dataclasses.field(default_factory=dict)
    clashes: dict[str, list[tuple[type, str]]] = dataclasses.field(default_factory=dict)
    refused: dict[str, PluginFailure] = dataclasses.field(default_factory=dict)
    problems: list[PluginFailure] = dataclasses.field(default_factory=list)

    def clash_message(self, key: str) -> str:
        owners = " and ".join(f"by plugin {plugin!r} ({cls.__module__}.{cls.__qualname__})"
                              for cls, plugin in self.clashes[key])
        many = "twice" if len(self.clashes[key]) == 2 else f"{len(self.clashes[key])} times"
        return (f"{self.kind[:-1]} {self.clashes[key][0][0].name!r} is registered {many}: "
                f"{owners}; uninstall or block one with CONDENSE_DISABLED_PLUGINS")


def _defect(cls: Any, kind: str) -> str | None:
    """Why ``cls`` cannot be registered as a ``kind[:-1]``, or None."""
    base = KINDS[kind][1]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"registered {cls!r}, which is not a condense.{base.__name__} subclass"
    label = f"{kind[:-1]} {cls.__name__}"
    if inspect.isabstract(cls):
        return f"{label} is abstract: implement {', '.join(sorted(cls.__abstractmethods__))}"
    name = getattr(cls, "name", None)
    if name is None:
        return f"{label} has no 'name' attribute"
    if not isinstance(name, str) or not name:
        return f"{label} has an invalid 'name' {name!r}: give it a non-empty string"
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, Config)
            and "__dataclass_fields__" in vars(config)):
        return (f"{label}'s Config is not a dataclass subclassing condense.Config: decorate it "
                f"with @dataclasses.dataclass(frozen=True)")
    return None


def scan(kind: str) -> Scan:
    """Call every plugin's registration hook for ``kind`` and sort what it registers."""
    load_plugins()
    hook_name = KINDS[kind][0]
    result = Scan(kind)
    registered: dict[str, list[tuple[type, str]]] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin = impl.plugin_name
        accepted: list[type] = []

        def register(cls: type, _plugin: str = plugin, _accepted: list[type] = accepted) -> None:
            why = _defect(cls, kind)
            if why is None:
                _accepted.append(cls)
                return
            failure = PluginFailure(_plugin, distribution(_plugin), why, "refused")
            result.problems.append(failure)
            name = getattr(cls, "name", None)
            if isinstance(name, str) and name:
                result.refused.setdefault(norm(name), failure)

        try:
            impl.function(register=register)
        except Exception as exc:  # one broken plugin must not break every listing
            result.problems.append(PluginFailure(
                plugin, distribution(plugin), f"{hook_name} raised {type(exc).__name__}: {exc}; "
                f"none of the {kind} it registered are available", "register",
                traceback.format_exc()))
            continue
        for cls in accepted:
            entries = registered.setdefault(cls.name.lower(), [])
            if all(c is not cls for c, _ in entries):
                entries.append((cls, plugin))
    for key, entries in sorted(registered.items()):
        if len(entries) == 1:
            result.found[key] = entries[0]
        else:
            result.clashes[key] = entries
            result.problems.append(PluginFailure(entries[-1][1], distribution(entries[-1][1]),
                                                 result.clash_message(key), "duplicate"))
    return result


def norm(name: str) -> str:
    """A name as looked up: lower case, ``_`` read as ``-``."""
    return name.lower().replace("_", "-")
