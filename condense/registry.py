"""Name -> component maps, built on demand from the registration hooks.

Every registered class is checked when it is registered (:mod:`condense.registration`): a refused
class is recorded, and asking for its name says why. Two plugins registering one name make only
that name unusable: silently picking one would change which algorithm runs. docs/plugins.md ("When
a plugin is wrong") describes what users see.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import DuplicateComponentError, UnknownComponentError
from .interfaces import DatasetSource, EncoderSampler, Evaluator, Method
from .plugins import PluginFailure, failures, load_plugins
from .registration import KINDS, Scan, norm, scan

T = TypeVar("T")

__all__ = ["FIRST_PARTY", "KINDS", "components", "describe", "get_dataset", "get_evaluator",
           "get_method", "get_sampler", "plugin_problems", "resolve"]

#: The names the first-party plugins register (and method presets the CLI accepts as METHOD),
#: with the distribution that provides each: asking a core-only install for one says what to
#: ``pip install``. Keep in step with plugins/*/ (tests/test_registry.py checks it).
FIRST_PARTY: dict[str, dict[str, str]] = {
    "methods": {
        "datadam": "condense-datadam", "datadam-paper": "condense-datadam",
        "dm": "condense-dm", "dm-bn": "condense-dm",
        "dc": "condense-dc", "dsa": "condense-dc", "dsa-bn": "condense-dc",
        "mtt": "condense-mtt",
    },
    "evaluators": {
        "accuracy": "condense-evaluators", "continual": "condense-evaluators",
        "nas": "condense-evaluators",
    },
}


def components(kind: str) -> dict[str, tuple[type, str]]:
    """``{name: (class, plugin_name)}`` for one kind ("methods", "samplers", ...).

    Names registered by two plugins are left out (resolving them raises
    :class:`DuplicateComponentError`); so are refused classes (see :func:`plugin_problems`).
    """
    return scan(kind).found


def plugin_problems() -> list[PluginFailure]:
    """Everything condense skipped: plugins that failed to load (:data:`condense.plugins.failures`),
    refused classes and duplicate names, in that order."""
    load_plugins()
    out = list(failures)
    for kind in KINDS:
        out.extend(scan(kind).problems)
    return out


def _aliases(result: Scan) -> dict[str, str]:
    table = {}
    named = [*((n, [e]) for n, e in result.found.items()), *result.clashes.items()]
    for name, entries in named:
        for cls, _ in entries:
            for alias in getattr(cls, "aliases", ()) or ():
                table[norm(alias)] = name
        table[norm(name)] = name
    return table


def resolve(kind: str, name: str) -> type:
    """The class registered as ``name`` (case-insensitive, aliases allowed) or a clear error."""
    result = scan(kind)
    key = name.lower()
    if key not in result.found and key not in result.clashes:
        aliases = _aliases(result)
        key = aliases.get(norm(name), "") or aliases.get(norm(name).replace("-", ""), "")
    if key in result.clashes:
        raise DuplicateComponentError(result.clash_message(key))
    if key in result.found:
        return result.found[key][0]
    refused = result.refused.get(norm(name))
    if refused is not None:
        raise UnknownComponentError(
            f"{kind[:-1]} {name!r} was refused: plugin {refused.name!r}: {refused.error}"
        )
    installed = ", ".join(result.found) or "(none)"
    close = difflib.get_close_matches(name.lower(), list(result.found), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownComponentError(
        f"unknown {kind[:-1]} {name!r}; installed {kind}: {installed}.{hint}"
        f"{provider_hint(kind, name)}"
    )


def provider_hint(kind: str, name: str) -> str:
    """`` 'dm' is provided by condense-dm: pip install …`` when ``name`` belongs to a first-party
    plugin that is not loaded ("" otherwise); says so when the distribution is installed but its
    plugin failed to load or was not loaded."""
    dist = FIRST_PARTY.get(kind, {}).get(norm(name))
    if dist is None:
        return ""
    failed = [f for f in failures if f.distribution == dist]
    if failed:
        return (f" {name!r} is provided by {dist}, which is installed but failed to load: "
                f"{failed[0].error} (`condense plugins` shows the details).")
    if _installed(dist):
        return (f" {name!r} is provided by {dist}, which is installed but not loaded (check "
                f"CONDENSE_LOAD_PLUGINS, CONDENSE_DISABLED_PLUGINS and "
                f"CONDENSE_DISABLE_PLUGIN_AUTOLOAD).")
    return f' {name!r} is provided by {dist}: pip install {dist} (or "condense-toolbox[all]").'


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


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
