"""``condense list`` and ``condense plugins``: what is installed (options: ``commands.py``)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..plugins import failures, plugin_info
from ..registry import KINDS, describe
from ._console import out_json
from ._plugins import plugin_commands


def list_(kind: str | None, as_json: bool) -> None:
    """List installed methods, samplers, evaluators and datasets (or one KIND)."""
    kinds = [kind] if kind else list(KINDS)
    listing = {k: describe(k) for k in kinds}
    if as_json:
        out_json(listing[kind] if kind else listing)
        return
    console = Console()
    for k in kinds:
        table = Table(title=k)
        for col in ("name", "plugin", "summary", "presets"):
            table.add_column(col)
        for entry in listing[k]:
            presets = ", ".join(entry["presets"][:6]) + (" …" if len(entry["presets"]) > 6 else "")
            table.add_row(entry["name"], entry["plugin"], entry["summary"], presets)
        console.print(table)


def plugins(as_json: bool) -> None:
    """List loaded plugins: name, distribution, version, hooks, the commands each adds (and any
    that failed)."""
    commands = plugin_commands()
    info = [{**p, "commands": commands.get(p["name"], [])} for p in plugin_info()]
    broken = [{"name": f.name, "distribution": f.distribution, "error": f.error, "kind": f.kind,
               "traceback": f.traceback} for f in failures]
    if as_json:
        out_json(info + [{**b, "failed": True} for b in broken] if broken else info)
        return
    table = Table(title="plugins")
    for col in ("name", "distribution", "version", "hooks", "commands"):
        table.add_column(col)
    for p in info:
        table.add_row(p["name"], p["distribution"], p["version"], ", ".join(p["hooks"]),
                      ", ".join(p["commands"]))
    for b in broken:
        table.add_row(escape(b["name"]), escape(b["distribution"]), "[red]failed[/]",
                      escape(b["error"]), "")
    Console().print(table)
