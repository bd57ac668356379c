"""The ``condense`` command line: a thin click + rich layer over the Python API.

The group lives in :mod:`condense.cli.group`; importing this package registers every command
module with it.
"""

from __future__ import annotations

from . import evaluate, hub, importing, listing, run, show  # noqa: F401  (registers commands)
from .group import cli


def main() -> None:
    cli(prog_name="condense")


__all__ = ["cli", "main"]
