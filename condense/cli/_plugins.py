"""What the command line needs from the plugins: warnings, completions, plugin commands.

Loaded by name (:mod:`condense.cli._lazy`) only when a command runs or a name is completed:
loading the plugins imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from rich.markup import escape

from ..errors import CondenseError
from ..plugins import load_plugins, pm
from ..registry import components, plugin_problems
from ._console import err_console


def warn_plugin_problems(debug: bool = False) -> None:
    """One yellow ``warning:`` line per skipped plugin, refused class or duplicate name; with
    ``debug``, each failed import's traceback after its line."""
    try:
        problems = plugin_problems()
    except CondenseError as exc:  # a broken built-in: the command reports it when it matters
        err_console.print(f"[yellow]warning:[/] {escape(str(exc))}", highlight=False,
                          soft_wrap=True)
        return
    for problem in problems:
        hint = " (run with --debug for the traceback)" if problem.traceback and not debug else ""
        err_console.print(f"[yellow]warning:[/] {escape(problem.message)}{hint}",
                          highlight=False, soft_wrap=True)
        if problem.traceback and debug:
            err_console.print(problem.traceback.rstrip(), highlight=False, soft_wrap=True,
                              markup=False)


def method_names() -> list[str]:
    """Installed method names, sorted."""
    return sorted(components("methods"))


def _presets(kind: str, name: str | None) -> list[str]:
    found = components(kind)
    if name and name.lower() in found:
        classes = [found[name.lower()][0]]
    else:
        classes = [cls for cls, _ in found.values()]
    return sorted({p for cls in classes for p in (getattr(cls, "presets", None) or {})})


def completions(kind: str, params: Mapping[str, Any]) -> list[str]:
    """Names to complete: ``methods`` (names, and preset names unique among methods, which
    ``condense run`` accepts as METHOD), ``datasets``, ``evaluators``, ``run-presets`` (of the
    METHOD given) and ``eval-presets`` (of ``--evaluator``, default accuracy)."""
    if kind == "methods":
        owners: dict[str, list[str]] = {}
        for name, (cls, _) in components("methods").items():
            for preset in getattr(cls, "presets", None) or {}:
                owners.setdefault(preset, []).append(name)
        unique = [p for p, names in owners.items() if len(names) == 1]
        return sorted(set(components("methods")) | set(unique))
    if kind in ("datasets", "evaluators", "samplers"):
        return sorted(components(kind))
    if kind == "run-presets":
        return _presets("methods", params.get("method"))
    if kind == "eval-presets":
        return _presets("evaluators", params.get("evaluator") or "accuracy")
    raise ValueError(f"unknown completion kind {kind!r}")


def plugin_commands() -> dict[str, list[str]]:
    """``{plugin name: [command names]}`` of every plugin that adds commands
    (``register_commands``), found by calling each hook on an empty group."""
    load_plugins()
    out: dict[str, list[str]] = {}
    for impl in pm.hook.register_commands.get_hookimpls():
        probe = click.Group()
        try:
            impl.function(cli=probe)
        except Exception:  # a broken hook is reported when its command is resolved
            continue
        out[impl.plugin_name] = sorted(probe.commands)
    return out


__all__ = ["completions", "method_names", "plugin_commands", "warn_plugin_problems"]
