"""The plugin manager: built-ins and entry-point plugins, loaded the same way.

Environment variables:

* ``CONDENSE_LOAD_PLUGINS=a,b`` loads only these entry-point plugins (``""`` loads none);
* ``CONDENSE_DISABLED_PLUGINS=a,b`` blocks these (entry-point names or distribution names);
* ``CONDENSE_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points entirely (tests use this).

A plugin whose import raises is recorded in :data:`failures` and skipped; everything else works.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .version import __version__

GROUP = "condense"
DEFAULT_PLUGINS = ("condense.samplers", "condense.baselines", "condense.datasets.plugin")

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """An entry-point plugin that could not be imported."""

    name: str
    distribution: str
    error: str


failures: list[PluginFailure] = []
_loaded = False


def _env_list(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def load_plugins() -> None:
    """Register the built-ins and the ``condense`` entry points (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        if not pm.has_plugin(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    if not os.environ.get("CONDENSE_DISABLE_PLUGIN_AUTOLOAD"):
        _load_entry_points()
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc


def _load_entry_points() -> None:
    allow = _env_list("CONDENSE_LOAD_PLUGINS")
    block = _env_list("CONDENSE_DISABLED_PLUGINS") or set()
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or ""
        for ep in dist.entry_points:
            if ep.group != GROUP or ep.name in seen:
                continue
            seen.add(ep.name)
            names = {ep.name, dist_name}
            if allow is not None and not names & allow:
                continue
            if names & block or pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken third-party plugin must not break condense
                failures.append(PluginFailure(ep.name, dist_name, f"{type(exc).__name__}: {exc}"))
                continue
            try:
                pm.check_pending()
            except pluggy.PluginValidationError as exc:
                pm.unregister(plugin)
                failures.append(PluginFailure(ep.name, dist_name, f"unknown hook: {exc}"))
                continue
            _distinfo[ep.name] = (dist_name, dist.version)


_distinfo: dict[str, tuple[str, str]] = {}


def plugin_info() -> list[dict[str, Any]]:
    """Name, distribution, version and implemented hooks of every registered plugin."""
    load_plugins()
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist, version = _distinfo.get(name, ("condense-toolbox", _core_version()))
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        out.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "builtin": name in DEFAULT_PLUGINS,
                "hooks": hooks,
            }
        )
    return sorted(out, key=lambda d: (not d["builtin"], d["name"]))


def plugin_versions() -> dict[str, str]:
    """``{distribution: version}`` of every loaded plugin distribution (recorded in artifacts)."""
    load_plugins()
    return {dist: version for dist, version in _distinfo.values()}


def _core_version() -> str:
    return __version__
