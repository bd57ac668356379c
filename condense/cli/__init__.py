"""The ``condense`` command line: a thin click + rich layer over the Python API.

The group lives in :mod:`condense.cli.group`, the built-in commands' options and help in
:mod:`condense.cli.commands`, and what each command does in its own module (``run.py``,
``evaluate.py`` ...), imported when the command runs: ``condense --help`` imports no torch.
"""

from __future__ import annotations

from .group import cli


def main() -> None:
    cli(prog_name="condense")


__all__ = ["cli", "main"]
