"""Options shared by several commands (click only: declarations must not import torch)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..config import parse_overrides


def data_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-dir``, ``--download`` and the dataset settings, which reach the command as one
    ``dataset_config`` dict (only the keys the user gave)."""

    @functools.wraps(f)
    def wrapper(*args: Any, image_size: int | None, train_dir: str | None, val_dir: str | None,
                data_settings: tuple[str, ...], **kwargs: Any) -> Any:
        config: dict[str, Any] = dict(parse_overrides(data_settings))
        for key, value in (("image_size", image_size), ("train_dir", train_dir),
                           ("val_dir", val_dir)):
            if value is not None:
                config[key] = value
        return f(*args, dataset_config=config, **kwargs)

    g: Callable[..., Any] = wrapper
    g = click.option("--data-set", "data_settings", multiple=True, metavar="KEY=VALUE",
                     help="Dataset setting (repeatable), e.g. channels=1 for imagefolder; "
                          "`condense list datasets` shows the keys.")(g)
    g = click.option("--val-dir", default=None,
                     help="imagefolder: validation folder, relative to --data-dir "
                          "[default: val].")(g)
    g = click.option("--train-dir", default=None,
                     help="imagefolder: training folder, relative to --data-dir "
                          "[default: train].")(g)
    g = click.option("--image-size", type=click.IntRange(min=1), default=None,
                     help="Resize (shorter side) + centre-crop images to N x N: imagefolder, "
                          "ImageNet subsets [default: 128].")(g)
    g = click.option("--download", is_flag=True,
                     help="Download the dataset with torchvision if it is not found "
                          "(never by default).")(g)
    g = click.option("--data-dir", type=click.Path(file_okay=False), envvar="CONDENSE_DATA_DIR",
                     help="Dataset root [env CONDENSE_DATA_DIR; default ~/.cache/condense/data]; "
                          "system locations (e.g. Debian's dataset-fashion-mnist) are "
                          "searched too.")(g)
    return g


def set_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                        help="Override a config value (repeatable); "
                             "`condense list` shows the keys.")(f)


def device_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--device", default="auto", show_default=True,
                        help="torch device: auto (cuda if available), cpu, cuda, cuda:1 ...")(f)


def settings_dict(items: tuple[str, ...]) -> dict[str, str]:
    return parse_overrides(items)
