"""The ``condense`` command group: lazy commands, plugin commands, ``--debug``, one-line errors.

Results go to stdout; progress, warnings and errors to stderr. Library errors
(:class:`condense.CondenseError`) become one red line and exit code 1; ``--debug`` (before or
after the command name) shows the traceback instead, and the import traceback of any plugin that
failed to load.

Fast paths: ``condense --help``, ``condense --version``, ``condense COMMAND --help`` (except
``run --help``, which lists the installed methods) and shell completion of commands and options
import neither torch nor a plugin. The built-in commands are declared in
:mod:`condense.cli.commands` (click only); :data:`LAZY_COMMANDS` are imported when used; plugin
commands (hook ``register_commands``) are added when a name is not a built-in one, so they are
not listed by ``--help`` (``condense plugins`` lists them).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import platform
import sys
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem
from rich.markup import escape

from ..errors import CondenseError, DistributedError
from ..plugins import installed_plugins, load_plugins, pm
from ..version import __version__
from . import commands
from ._console import err_console
from ._interrupt import ARGS_KEY
from ._lazy import load

#: commands declared in modules that are imported only when the command is used (or its own
#: help is shown): name -> "module:attribute"; ``--help`` reads their short help from the source
LAZY_COMMANDS: dict[str, str] = {
    "push": "condense.cli.hub:push",
    "pull": "condense.cli.hub:pull",
}

HELP_REQUESTED = "condense.help_requested"


def short_help_from_source(target: str, limit: int = 45) -> str:
    """The short help of the command ``target`` from its function's docstring, read from the
    module's source without importing it ("" if it cannot be found)."""
    module, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec else None
        tree = ast.parse(Path(origin).read_text(encoding="utf-8")) if origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        return ""
    for node in tree.body if tree else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr:
            return click.Command(attr, help=ast.get_docstring(node)).get_short_help_str(limit)
    return ""


def _strip_debug(args: list[str]) -> tuple[list[str], bool]:
    """``args`` without ``--debug`` (before a ``--``), and whether it was there."""
    end = args.index("--") if "--" in args else len(args)
    kept = [a for a in args[:end] if a != "--debug"]
    return kept + args[end:], len(kept) < end


class CondenseGroup(click.Group):
    """Resolves commands lazily, accepts ``--debug`` anywhere and turns CondenseError into one
    clear line."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        try:
            load_plugins()
        except CondenseError as exc:
            err_console.print(f"[yellow]warning:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            return
        pm.hook.register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in commands only (and plugin commands already added): listing plugin commands
        would load every plugin, and torch with them."""
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = self.commands.get(name)
        if command is None and name in LAZY_COMMANDS:
            command = load(LAZY_COMMANDS[name])
            self.commands.setdefault(name, command)  # type: ignore[arg-type]
        if command is None:  # perhaps a plugin's command
            self._add_plugin_commands()
            command = self.commands.get(name)
        return command

    def _short_help(self, name: str, limit: int) -> str:
        command = self.commands.get(name)
        if command is not None:
            return command.get_short_help_str(limit)
        return short_help_from_source(LAZY_COMMANDS[name], limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = [n for n in self.list_commands(ctx)
                 if not (n in self.commands and self.commands[n].hidden)]
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        with formatter.section("Commands"):
            formatter.write_dl([(n, self._short_help(n, limit)) for n in names])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        items = [CompletionItem(n, help=self._short_help(n, 45))
                 for n in self.list_commands(ctx) if n.startswith(incomplete)]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta[ARGS_KEY] = list(args)  # the command's own words (a resume command repeats them)
        name, command, rest = super().resolve_command(ctx, args)
        rest, debug = _strip_debug(rest)
        obj = ctx.ensure_object(dict)
        obj["debug"] = obj.get("debug", False) or debug
        end = rest.index("--") if "--" in rest else len(rest)
        ctx.meta[HELP_REQUESTED] = any(a in ctx.help_option_names for a in rest[:end])
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CondenseError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            distributed = sys.modules.get("condense.distributed")  # loaded if a job was joined
            if (isinstance(exc, DistributedError) and distributed is not None
                    and distributed.is_distributed()):
                distributed.abandon(1)  # a peer is gone: normal teardown could abort the process
            ctx.exit(1)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            ctx.exit(130)


def version_text() -> str:
    """``condense, version X``, the Python and torch versions and the installed plugin
    distributions, all read from package metadata (nothing is imported)."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    lines = [f"condense, version {__version__}",
             f"python {platform.python_version()}, torch {torch_version}"]
    found = installed_plugins()
    if not found:
        lines.append("plugins: none installed")
    else:
        lines.append("plugins:")
        for p in found:
            off = "" if p["enabled"] else " (not loaded: see CONDENSE_*PLUGIN* variables)"
            lines.append(f"  {p['distribution']} {p['version']} ({p['name']}){off}")
    return "\n".join(lines)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_text())
    ctx.exit()


@click.group(cls=CondenseGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Plugin commands (e.g. condense-mtt's `experts`) are listed by `condense "
                    "plugins`. Shell completion: docs/getting-started.md.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version,
              help="Show the version of condense and of its plugins, and exit.")
@click.option("--debug", is_flag=True,
              help="Show full tracebacks for errors and for plugins that failed to load (also "
                   "accepted after the command).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """condense: distil datasets into a few synthetic images per class, and judge them."""
    obj = ctx.ensure_object(dict)
    obj["debug"] = obj.get("debug", False) or debug
    if not ctx.meta.get(HELP_REQUESTED) and not ctx.resilient_parsing:
        load("condense.cli._plugins:warn_plugin_problems")(obj["debug"])


for _command in commands.COMMANDS.values():
    cli.add_command(_command)


__all__ = ["LAZY_COMMANDS", "CondenseGroup", "cli", "version_text"]
