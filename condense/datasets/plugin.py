"""Registers the built-in datasets through the public hook, like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..realdata import DatasetSource
from .cifar import CIFAR10, CIFAR100
from .imagefolder import ImageFolder
from .imagenet_subsets import SUBSET_CLASSES
from .mnist import MNIST, FashionMNIST
from .svhn import SVHN
from .tinyimagenet import TinyImageNet

BUILTIN_DATASETS: tuple[type[DatasetSource], ...] = (
    MNIST, FashionMNIST, SVHN, CIFAR10, CIFAR100, TinyImageNet, *SUBSET_CLASSES, ImageFolder,
)


@hookimpl
def register_datasets(register: Callable[[type[DatasetSource]], None]) -> None:
    for cls in BUILTIN_DATASETS:
        register(cls)
