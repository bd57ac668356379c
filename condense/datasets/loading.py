"""Loading a real dataset by its registered name."""

from __future__ import annotations

import os

from ..realdata import RealData, check_split, default_data_dir
from ..registry import get_dataset


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    config: dict[str, object] | None = None,
) -> RealData:
    """Find ``name`` among the registered datasets and read its training split.

    ``config`` is the dataset's own settings (e.g. ``{"image_size": 64}`` or the ``imagefolder``
    paths); the files are looked for under ``data_dir`` (default :func:`default_data_dir`) and in
    the dataset's well-known system folders, and downloaded only when ``download`` is true.
    """
    cls = get_dataset(name)
    source = cls(dict(config) if config else None)
    root = os.fspath(data_dir) if data_dir is not None else os.fspath(default_data_dir())
    train = source.load("train", root, download=download)
    check_split(cls.name, source, train, "train")
    return RealData(name=cls.name, source=source, train=train, root=root, download=download,
                    config=source.config.to_dict())
