"""The plugin contract: every hook condense calls, with what ``register`` accepts.

Hooks are registration callbacks (as in ``llm``): a plugin implements e.g.::

    @condense.hookimpl
    def register_methods(register):
        register(MyMethod)

Never change a hook's signature; add a new hook instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .interfaces import DatasetSource, EncoderSampler, Evaluator, Method

hookspec = pluggy.HookspecMarker("condense")
hookimpl = pluggy.HookimplMarker("condense")


@hookspec
def register_methods(register: Callable[[type[Method]], None]) -> None:
    """Register :class:`~condense.Method` subclasses (called when methods are first listed)."""


@hookspec
def register_encoder_samplers(register: Callable[[type[EncoderSampler]], None]) -> None:
    """Register :class:`~condense.EncoderSampler` subclasses."""


@hookspec
def register_evaluators(register: Callable[[type[Evaluator]], None]) -> None:
    """Register :class:`~condense.Evaluator` subclasses."""


@hookspec
def register_datasets(register: Callable[[type[DatasetSource]], None]) -> None:
    """Register :class:`~condense.DatasetSource` subclasses (real datasets)."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``condense`` command-line group."""
