"""The real Fashion-MNIST from Debian's dataset-fashion-mnist (skipped where not installed)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from click.testing import CliRunner

import condense
from condense.cli import cli


def test_real_fashion_mnist_loads_fast(fmnist_available: bool, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    data = condense.load_dataset("FashionMNIST", tmp_path / "empty")  # found in /usr/share/datasets
    index = data.class_index()
    elapsed = time.perf_counter() - t0
    assert data.train.source == "/usr/share/datasets/fashion-mnist"
    assert data.train.images.shape == (60000, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert [len(ix) for ix in index] == [6000] * 10
    assert data.test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10
    x = data.normalize(data.train.images[:20000])
    assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01  # 0.2861 / 0.3530
    assert elapsed < 10, f"Fashion-MNIST took {elapsed:.1f} s (target < 2 s on an idle machine)"


def test_run_dm_on_real_fashion_mnist(fmnist_available: bool, tmp_path: Path) -> None:
    out = tmp_path / "fm.safetensors"
    r = CliRunner().invoke(
        cli,
        [
            "run",
            "dm",
            "--dataset",
            "fashion-mnist",
            "--ipc",
            "1",
            "--iterations",
            "2",
            "--set",
            "batch_real=4",
            "--no-progress",
            "--data-dir",
            str(tmp_path / "empty"),
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    syn = condense.load(out)
    assert syn.images.shape == (10, 1, 28, 28) and syn.meta["class_names"][0] == "T-shirt/top"
    assert syn.meta["mean"] == [0.2861] and syn.meta["std"] == [0.353]
