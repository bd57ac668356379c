"""The ``condense`` command line: a thin click + rich layer over the Python API.

Results go to stdout; progress, warnings and errors to stderr. Library errors
(:class:`condense.CondenseError`) become one red line and exit code 1; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape

from .. import __version__, distributed
from ..errors import CondenseError
from ._console import err_console


class CondenseGroup(click.Group):
    """Loads plugin commands lazily and turns CondenseError into one clear line."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from ..plugins import load_plugins, pm

        try:
            load_plugins()
        except CondenseError as exc:
            err_console.print(f"[yellow]warning:[/] {exc}")
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
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """condense: distil datasets into a few synthetic images per class, and judge them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _warn_plugin_failures()


def _warn_plugin_failures() -> None:
    from ..plugins import failures

    for f in failures:
        err_console.print(
            f"[yellow]warning:[/] plugin {escape(f.name)!r} ({escape(f.distribution)}) failed to "
            f"load and was skipped: {escape(f.error)}", highlight=False, soft_wrap=True,
        )


def main() -> None:
    cli(prog_name="condense")


from . import evaluate as _evaluate  # noqa: E402,F401  (registers commands)
from . import listing as _listing  # noqa: E402,F401
from . import run as _run  # noqa: E402,F401
from . import show as _show  # noqa: E402,F401
from . import hub as _hub  # noqa: E402,F401
from . import importing as _importing  # noqa: E402,F401

__all__ = ["cli", "main", "sys"]
