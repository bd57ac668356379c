"""The ``condense`` command group: plugin commands, plugin warnings, one-line errors.

Results go to stdout; progress, warnings and errors to stderr. Library errors
(:class:`condense.CondenseError`) become one red line and exit code 1; ``--debug`` shows the
traceback instead, and the import traceback of any plugin that failed to load.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from .. import distributed
from ..errors import CondenseError
from ..plugins import load_plugins, pm
from ..registry import plugin_problems
from ..version import __version__
from ._console import err_console


class CondenseGroup(click.Group):
    """Loads plugin commands lazily and turns CondenseError into one clear line."""

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
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._add_plugin_commands()
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CondenseError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            if isinstance(exc, distributed.DistributedError) and distributed.is_distributed():
                distributed.abandon(1)  # a peer is gone: normal teardown could abort the process
            ctx.exit(1)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            ctx.exit(130)


@click.group(cls=CondenseGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="condense")
@click.option("--debug", is_flag=True,
              help="Show full tracebacks for errors and for plugins that failed to load.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """condense: distil datasets into a few synthetic images per class, and judge them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    warn_plugin_problems(debug)


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
