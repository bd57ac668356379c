"""The plugin manager: built-ins and entry-point plugins, loaded the same way.

Environment variables:

* ``CONDENSE_LOAD_PLUGINS=a,b`` loads only these entry-point plugins (``""`` loads none);
* ``CONDENSE_DISABLED_PLUGINS=a,b`` blocks these (entry-point names or distribution names);
* ``CONDENSE_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points entirely (tests use this).

An entry-point plugin whose import raises, or that implements a hook condense does not define, is
skipped and recorded in :data:`failures` (with the traceback); everything else works. Components a
plugin registers are checked by :mod:`condense.registry` (docs/plugins.md, "When a plugin is
wrong").
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import os
import traceback
from collections.abc import Iterator
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .version import __version__

GROUP = "condense"
DEFAULT_PLUGINS = ("condense.samplers", "condense.baselines", "condense.datasets.plugin")

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)

HOOK_NAMES = tuple(sorted(name for name, obj in vars(hookspecs).items()
                          if callable(obj) and hasattr(obj, f"{GROUP}_spec")))


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """A plugin, or a component of one, that condense skipped.

    ``kind`` is ``"import"`` (the import raised), ``"hook"`` (a misspelt hook or a malformed hook
    function: the plugin was skipped), ``"refused"`` (a registered class is unusable),
    ``"register"`` (a registration hook raised) or ``"duplicate"`` (several plugins registered one
    name). ``traceback`` is the formatted traceback where there is one.
    """

    name: str
    distribution: str
    error: str
    kind: str = "import"
    traceback: str = ""

    @property
    def message(self) -> str:
        """The problem in one line."""
        who = f"plugin {self.name!r}" + (f" ({self.distribution})" if self.distribution else "")
        if self.kind == "import":
            return f"{who} failed to load and was skipped: {self.error}"
        if self.kind == "hook":
            return f"{who} was skipped: {self.error}"
        if self.kind == "duplicate":
            return self.error
        if self.kind == "refused":
            return f"plugin {self.name!r}: {self.error} (not registered)"
        return f"plugin {self.name!r}: {self.error}"


failures: list[PluginFailure] = []
_loaded = False


def _env_list(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def load_plugins() -> None:
    """Register the built-ins and the ``condense`` entry points (idempotent).

    A built-in with an unknown hook is a bug in condense and raises :class:`PluginError`; an
    entry-point plugin with one is skipped and recorded in :data:`failures`.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        if not pm.has_plugin(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    _check_pending()
    if not os.environ.get("CONDENSE_DISABLE_PLUGIN_AUTOLOAD"):
        _load_entry_points()
    _check_pending()


def _check_pending() -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name!r} {unknown_hook_message(exc.plugin)}") from exc


def unknown_hooks(plugin: object) -> list[str]:
    """The hooks ``plugin`` implements that condense does not define."""
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or []
                  if not caller.has_spec()
                  and any(i.plugin is plugin and not i.optionalhook
                          for i in caller.get_hookimpls()))


def unknown_hook_message(plugin: object) -> str:
    """``implements unknown hook 'x'; did you mean 'y'?`` for each unknown hook of ``plugin``."""
    parts = []
    for hook in unknown_hooks(plugin):
        close = difflib.get_close_matches(hook, HOOK_NAMES, n=1)
        hint = (f"; did you mean {close[0]!r}?" if close
                else f" (condense's hooks: {', '.join(HOOK_NAMES)})")
        parts.append(f"implements unknown hook {hook!r}{hint}")
    return "; ".join(parts) or "implements an unknown hook"


def _entry_points() -> Iterator[tuple[Any, Any, str, bool]]:
    """``(entry point, distribution, distribution name, enabled)`` for every installed ``condense``
    entry point (the first of each name); ``enabled``: allowed by the environment variables."""
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
            yield ep, dist, dist_name, (allow is None or bool(names & allow)) and not names & block


def _load_entry_points() -> None:
    for ep, dist, dist_name, enabled in _entry_points():
        if not enabled or pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        if _register_entry_point(ep, dist_name):
            _distinfo[ep.name] = (dist_name, dist.version)


def _register_entry_point(ep: Any, dist_name: str) -> bool:
    """Import and register one entry point; on any problem record it and return False."""
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken third-party plugin must not break condense
        failures.append(PluginFailure(ep.name, dist_name, f"{type(exc).__name__}: {exc}",
                                      "import", traceback.format_exc()))
        return False
    try:
        pm.register(plugin, name=ep.name)
    except pluggy.PluginValidationError as exc:  # e.g. a hook function with the wrong arguments
        failures.append(PluginFailure(ep.name, dist_name, str(exc).replace("\n", " "), "hook"))
        return False
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        failures.append(PluginFailure(ep.name, dist_name, unknown_hook_message(plugin), "hook"))
        pm.unregister(plugin)
        return False
    return True


_distinfo: dict[str, tuple[str, str]] = {}


def installed_plugins() -> list[dict[str, Any]]:
    """Every installed ``condense`` entry point, read from the package metadata without importing
    (and so without loading) any plugin: ``name``, ``distribution``, ``version`` and ``enabled``
    (whether :func:`load_plugins` would load it under the environment variables above)."""
    autoload = not os.environ.get("CONDENSE_DISABLE_PLUGIN_AUTOLOAD")
    out = [{"name": ep.name, "distribution": dist_name, "version": dist.version,
            "enabled": autoload and enabled}
           for ep, dist, dist_name, enabled in _entry_points()]
    return sorted(out, key=lambda d: (d["distribution"], d["name"]))


def distribution(name: str) -> str:
    """The distribution that installed plugin ``name`` ("" for plugins registered directly)."""
    if name in DEFAULT_PLUGINS:
        return "condense-toolbox"
    return _distinfo.get(name, ("", ""))[0]


def plugin_info() -> list[dict[str, Any]]:
    """Name, distribution, version and implemented hooks of every registered plugin."""
    load_plugins()
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist, version = _distinfo.get(name, ("condense-toolbox", __version__))
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
