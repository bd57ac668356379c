"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..config import parse_overrides


def data_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--download", is_flag=True,
                     help="Download the dataset with torchvision if it is not found (never by default).")(f)
    f = click.option("--data-dir", type=click.Path(file_okay=False), envvar="CONDENSE_DATA_DIR",
                     help="Dataset root [env CONDENSE_DATA_DIR; default ~/.cache/condense/data]; "
                          "system locations (e.g. Debian's dataset-fashion-mnist) are searched too.")(f)
    return f


def set_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                        help="Override a config value (repeatable); `condense list` shows the keys.")(f)


def device_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--device", default="auto", show_default=True,
                        help="torch device: auto (cuda if available), cpu, cuda, cuda:1 ...")(f)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def settings_dict(items: tuple[str, ...]) -> dict[str, str]:
    return parse_overrides(items)
