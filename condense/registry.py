"""Name -> component maps, built on demand from the registration hooks.

Two plugins registering one name is an error naming both: silently picking one would change
which algorithm runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import DuplicateComponentError, UnknownComponentError
from .interfaces import DatasetSource, EncoderSampler, Evaluator, Method
from .plugins import load_plugins, pm

T = TypeVar("T")

KINDS: dict[str, tuple[str, type]] = {
    "methods": ("register_methods", Method),
    "samplers": ("register_encoder_samplers", EncoderSampler),
    "evaluators": ("register_evaluators", Evaluator),
    "datasets": ("register_datasets", DatasetSource),
}


def components(kind: str) -> dict[str, tuple[type, str]]:
    """``{name: (class, plugin_name)}`` for one kind ("methods", "samplers", ...)."""
    load_plugins()
    hook_name, base = KINDS[kind]
    found: dict[str, tuple[type, str]] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin_name = impl.plugin_name

        def register(cls: type, _plugin: str = plugin_name) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"plugin {_plugin} registered {cls!r}, not a {base.__name__}")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"plugin {_plugin}: {cls.__name__} has no `name` attribute")
            key = name.lower()
            if key in found and found[key][0] is not cls:
                raise DuplicateComponentError(
                    f"{kind[:-1]} {name!r} is registered twice: by plugin {found[key][1]!r} "
                    f"({found[key][0].__module__}.{found[key][0].__qualname__}) and by plugin "
                    f"{_plugin!r} ({cls.__module__}.{cls.__qualname__}); uninstall or block one "
                    f"with CONDENSE_DISABLED_PLUGINS"
                )
            found[key] = (cls, _plugin)

        impl.function(register=register)
    return dict(sorted(found.items()))


def _aliases(kind: str) -> dict[str, str]:
    table = {}
    for name, (cls, _) in components(kind).items():
        for alias in getattr(cls, "aliases", ()) or ():
            table[_norm(alias)] = name
        table[_norm(name)] = name
    return table


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def resolve(kind: str, name: str) -> type:
    """The class registered as ``name`` (case-insensitive, aliases allowed) or a clear error."""
    comps = components(kind)
    key = name.lower()
    if key not in comps:
        key = _aliases(kind).get(_norm(name), "")
        if not key:
            key = _aliases(kind).get(_norm(name).replace("-", ""), "")
    if key in comps:
        return comps[key][0]
    installed = ", ".join(comps) or "(none)"
    close = difflib.get_close_matches(name.lower(), list(comps), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownComponentError(
        f"unknown {kind[:-1]} {name!r}; installed {kind}: {installed}.{hint}"
    )


def get_method(name: str) -> type[Method]:
    return resolve("methods", name)  # type: ignore[return-value]


def get_sampler(name: str) -> type[EncoderSampler]:
    return resolve("samplers", name)  # type: ignore[return-value]


def get_evaluator(name: str) -> type[Evaluator]:
    return resolve("evaluators", name)  # type: ignore[return-value]


def get_dataset(name: str) -> type[DatasetSource]:
    return resolve("datasets", name)  # type: ignore[return-value]


def describe(kind: str) -> list[dict[str, Any]]:
    """A JSON-able listing of one kind: name, plugin, summary, presets, config fields."""
    out = []
    for name, (cls, plugin) in components(kind).items():
        doc = (cls.__doc__ or "").strip().splitlines()
        entry: dict[str, Any] = {
            "name": name,
            "plugin": plugin,
            "summary": doc[0] if doc else "",
            "config": cls.Config().to_dict() if _constructible(cls.Config) else {},
            "presets": sorted(getattr(cls, "presets", {}) or {}),
        }
        if kind == "datasets":
            entry.update(_dataset_entry(cls))
        out.append(entry)
    return out


def _constructible(factory: Callable[[], Any]) -> bool:
    try:
        factory()
    except Exception:
        return False
    return True


def _dataset_entry(cls: type) -> dict[str, Any]:
    attrs = ("aliases", "channels", "image_size", "num_classes", "mean", "std", "dsa_strategy",
             "class_names")
    out = {a: getattr(cls, a, None) for a in attrs}
    out["aliases"] = list(out["aliases"] or ())
    for a in ("image_size", "mean", "std", "class_names"):
        if out[a] is not None:
            out[a] = list(out[a])
    return out
