"""Registers the built-in datasets through the public hook, like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..interfaces import DatasetSource
from .mnist import MNIST, FashionMNIST


@hookimpl
def register_datasets(register: Callable[[type[DatasetSource]], None]) -> None:
    for cls in (MNIST, FashionMNIST):
        register(cls)
