"""The real Fashion-MNIST from Debian's dataset-fashion-mnist (skipped where not installed):
loading it, and short end-to-end CLI runs on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.datasets import mnist


def test_real_fashion_mnist_loads_correctly_in_one_read_per_file(
    fmnist_available: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why loading takes well under a second (the official scripts: ~20 s): each IDX file is read
    and decoded once, into one uint8 tensor that is not copied again; the test split only when
    asked for; the class index built once."""
    reads: list[tuple[str, torch.Tensor]] = []
    read_idx = mnist.read_idx

    def spy(path: Path) -> torch.Tensor:
        decoded = read_idx(path)
        reads.append((path.name, decoded))
        return decoded

    monkeypatch.setattr(mnist, "read_idx", spy)
    data = condense.load_dataset("FashionMNIST", tmp_path / "empty")  # found in /usr/share/datasets
    assert data.name == "fashion-mnist"
    assert data.train.source == "/usr/share/datasets/fashion-mnist"
    assert [name for name, _ in reads] == ["train-images-idx3-ubyte.gz",
                                           "train-labels-idx1-ubyte.gz"]  # not the test split
    images = data.train.images
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert images.is_contiguous()  # one block, not 60000 per-image tensors
    decoded = reads[0][1]
    assert images.untyped_storage().data_ptr() == decoded.untyped_storage().data_ptr()  # no copy
    assert torch.bincount(data.train.labels).tolist() == [6000] * 10
    index = data.class_index()
    assert [len(ix) for ix in index] == [6000] * 10
    assert data.class_index() is index  # built once
    assert data.test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10
    assert data.test is data.test
    assert [name for name, _ in reads[2:]] == ["t10k-images-idx3-ubyte.gz",
                                               "t10k-labels-idx1-ubyte.gz"]  # read once
    x = data.normalize(data.train.images[:20000])
    assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01  # 0.2861 / 0.3530


@pytest.mark.slow
def test_datadam_through_the_cli(fmnist_available: bool, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "dd.safetensors"
    r = runner.invoke(cli, ["run", "datadam", "--dataset", "fashion-mnist", "--ipc", "1",
                            "--iterations", "3", "--set", "batch_real=16", "--no-progress",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    syn = condense.load(out)
    assert syn.images.shape == (10, 1, 28, 28) and syn.labels.tolist() == list(range(10))
    assert syn.meta["class_names"][0] == "T-shirt/top" and syn.meta["mean"] == [0.2861]
    init = condense.distill("datadam", dataset="fashion-mnist", ipc=1, iterations=0)
    assert not torch.equal(init.images, syn.images)  # three SGD steps moved the images
    r = runner.invoke(cli, ["show", str(out), "--json", "--no-grid"])
    assert json.loads(r.stdout)["sampler_config"]["norm"] == "batchnorm"


@pytest.mark.slow
def test_run_dm_on_real_fashion_mnist(fmnist_available: bool, tmp_path: Path) -> None:
    out = tmp_path / "fm.safetensors"
    r = CliRunner().invoke(cli, ["run", "dm", "--dataset", "fashion-mnist", "--ipc", "1",
                                 "--iterations", "2", "--set", "batch_real=4", "--no-progress",
                                 "--data-dir", str(tmp_path / "empty"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    syn = condense.load(out)
    assert syn.images.shape == (10, 1, 28, 28) and syn.meta["class_names"][0] == "T-shirt/top"
    assert syn.meta["mean"] == [0.2861] and syn.meta["std"] == [0.353]
