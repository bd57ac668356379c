"""Loading by name, so that ``--help``, ``--version`` and shell completion never import torch.

A command's declaration (its options, help and completion: :mod:`condense.cli.commands`) imports
only click; what it does (its *body*, e.g. :func:`condense.cli.run.run`) is imported by name
(``"module:function"``) when the command runs. Completion of names (methods, datasets,
evaluators, presets) loads the plugins the same way, only when such a value is completed. These
are the CLI's only imports by name; ``tests/test_cli.py`` checks that every target resolves and
that ``--help`` leaves torch unimported.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import click
from click.shell_completion import CompletionItem


def load(target: str) -> Any:
    """The object named ``"package.module:attribute"``, importing its module."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def invoke(target: str, params: Mapping[str, Any]) -> Any:
    """Run a command's body, ``target``, with the command's parsed parameters."""
    return load(target)(**params)


def complete(kind: str) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """A ``shell_complete`` callback completing ``kind`` (see :mod:`condense.cli._plugins`)."""

    def callback(ctx: click.Context, param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
        values = dict(ctx.params)
        # an option still waiting for its value stops click's parser before the arguments:
        # they are left in ctx.args
        pending = iter(ctx.args)
        for p in ctx.command.params:
            if isinstance(p, click.Argument) and values.get(p.name or "") is None:
                values[p.name or ""] = next(pending, None)
        try:
            names: list[str] = load("condense.cli._plugins:completions")(kind, values)
        except Exception:  # completion must never print a traceback into the shell
            return []
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    return callback


def complete_file(ctx: click.Context, param: click.Parameter,
                  incomplete: str) -> list[CompletionItem]:
    """Let the shell complete a file name (for arguments that also take ``hf://`` paths)."""
    return [CompletionItem(incomplete, type="file")]


class CondenseCommand(click.Command):
    """A command whose ``epilog`` may be a callable, computed only when the help is shown.

    Paragraphs of an epilog that start with a ``\\b`` line are printed as written (examples).
    """

    def __init__(self, *args: Any, epilog: str | Callable[[], str] | None = None,
                 **kwargs: Any) -> None:
        self.make_epilog = epilog if callable(epilog) else None
        super().__init__(*args, epilog=None if callable(epilog) else epilog, **kwargs)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        text = self.make_epilog() if self.make_epilog is not None else self.epilog
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(inspect.cleandoc(text))


__all__ = ["CondenseCommand", "complete", "complete_file", "invoke", "load"]
