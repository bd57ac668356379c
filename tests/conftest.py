"""Shared fixtures: tiny in-memory datasets, a fake plugin, plugin autoload off by default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("CONDENSE_DISABLE_PLUGIN_AUTOLOAD", "1")
os.environ.setdefault("NO_COLOR", "1")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

import condense  # noqa: E402
from condense.plugins import pm  # noqa: E402

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _register_first_party() -> None:
    """The first-party plugins are registered explicitly (autoload is off in tests)."""
    import importlib

    for name in ("condense_dm", "condense_datadam", "condense_evaluators", "condense_dc",
                 "condense_mtt", "condense_mmd"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if not pm.has_plugin(name):
            pm.register(module, name=name)


_register_first_party()


class TinySource(condense.DatasetSource):
    """3 classes of 1×8×8 uint8 images drawn from class-dependent patterns."""

    name = "tiny"
    channels = 1
    image_size = (8, 8)
    num_classes = 3
    mean = (0.5,)
    std = (0.25,)

    def load(self, split: str, root: str | None, *, download: bool = False) -> condense.RawSplit:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        n = 12 if split == "train" else 6
        labels = torch.arange(3).repeat_interleave(n)
        base = torch.linspace(0, 255, 64).view(1, 1, 8, 8)
        pattern = torch.stack([base, base.flip(-1), base.transpose(-1, -2)]).squeeze(1)
        noise = torch.randint(-40, 40, (3 * n, 1, 8, 8), generator=g)
        images = (pattern[labels] + noise).clamp(0, 255).to(torch.uint8)
        return condense.RawSplit(images, labels, ("a", "b", "c"), source="memory")


class TinyRGBSource(TinySource):
    """4 classes of 3×16×16 images."""

    name = "tiny-rgb"
    channels = 3
    image_size = (16, 16)
    num_classes = 4
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def load(self, split: str, root: str | None, *, download: bool = False) -> condense.RawSplit:
        g = torch.Generator().manual_seed(2 if split == "train" else 3)
        n = 10 if split == "train" else 5
        labels = torch.arange(4).repeat_interleave(n)
        centres = torch.tensor([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30]])
        images = centres[labels].view(-1, 3, 1, 1).expand(-1, 3, 16, 16).clone()
        images = (images + torch.randint(-50, 50, images.shape, generator=g)).clamp(0, 255)
        return condense.RawSplit(images.to(torch.uint8), labels, ("r", "g", "b", "y"), "memory")


class _TinyPlugin:
    __name__ = "tiny-datasets"

    @staticmethod
    @condense.hookimpl
    def register_datasets(register):  # type: ignore[no-untyped-def]
        register(TinySource)
        register(TinyRGBSource)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Evaluation baselines and teachers are cached under $CONDENSE_CACHE_DIR: a fresh one for
    the session, never the user's ~/.cache."""
    before = os.environ.get("CONDENSE_CACHE_DIR")
    os.environ["CONDENSE_CACHE_DIR"] = str(tmp_path_factory.mktemp("condense-cache"))
    yield
    if before is None:
        os.environ.pop("CONDENSE_CACHE_DIR", None)
    else:
        os.environ["CONDENSE_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def tiny_datasets() -> Iterator[None]:
    pm.register(_TinyPlugin, name="tiny-datasets")
    yield
    pm.unregister(name="tiny-datasets")


@pytest.fixture
def tiny_data() -> condense.RealData:
    return condense.load_dataset("tiny")


@pytest.fixture
def tiny_rgb() -> condense.RealData:
    return condense.load_dataset("tiny-rgb")


@pytest.fixture
def fmnist_available() -> bool:
    if not (FMNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return True
