"""Short end-to-end runs on the real Fashion-MNIST files (Debian's dataset-fashion-mnist)."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

import condense
from condense.cli import cli


def test_fashion_mnist_loads_fast_and_correctly(fmnist_available):
    import time

    t0 = time.perf_counter()
    data = condense.load_dataset("fashion-mnist")
    elapsed = time.perf_counter() - t0
    assert data.train.images.shape == (60000, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert torch.bincount(data.train.labels).tolist() == [6000] * 10
    assert data.test.images.shape == (10000, 1, 28, 28)
    x = data.normalize(data.train.images[:10000])
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05  # 0.2861 / 0.3530
    assert elapsed < 10  # official scripts: ~20 s; typically ~0.4 s here


def test_datadam_through_the_cli(fmnist_available, tmp_path):
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
