"""``condense run dm --dataset D --ipc 1 --iterations 2`` on fixture data of every built-in D."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.datasets.imagenet_subsets import SUBSETS
from condense.datasets.plugin import BUILTIN_DATASETS
from condense.plugins import pm

from dataset_fixtures import (
    SORTED_WNIDS,
    make_cifar10,
    make_cifar100,
    make_idx,
    make_imagefolder,
    make_imagenet,
    make_packed_tiny,
    make_svhn,
    make_tiny_imagenet,
)

FAST = [
    "--ipc",
    "1",
    "--iterations",
    "2",
    "--set",
    "batch_real=4",
    "--set",
    "sampler.width=8",
    "--no-progress",
]

# dataset -> (fixture writer, extra CLI arguments, expected (C, H, W), expected class count)
CASES: dict[str, tuple[Callable[[Path], Any], list[str], tuple[int, int, int], int]] = {
    "mnist": (lambda d: make_idx(d, "MNIST"), [], (1, 28, 28), 10),
    "FashionMNIST": (lambda d: make_idx(d, "FashionMNIST"), [], (1, 28, 28), 10),
    "svhn": (make_svhn, [], (3, 32, 32), 10),
    "cifar10": (make_cifar10, [], (3, 32, 32), 10),
    "cifar100": (make_cifar100, [], (3, 32, 32), 100),
    "TinyImageNet": (make_tiny_imagenet, [], (3, 64, 64), 3),
    "tiny-imagenet-200": (make_packed_tiny, ["--data-set", "source=tensor"], (3, 64, 64), 3),
    "imagefolder": (make_imagefolder, ["--image-size", "16"], (3, 16, 16), 3),
    "imagenette": (lambda d: make_imagenet(d, ("imagenette",)), [], (3, 128, 128), 10),
    **{
        s: (lambda d, s=s: make_imagenet(d, (s,)), ["--image-size", "32"], (3, 32, 32), 10)
        for s in sorted(SUBSETS)
        if s != "imagenette"
    },
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_every_builtin_dataset_has_a_cli_case() -> None:
    names = {condense.get_dataset(n).name for n in CASES}
    assert names == {cls.name for cls in BUILTIN_DATASETS}


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_run_dm_on_fixture(tmp_path: Path, runner: CliRunner, dataset: str) -> None:
    make, extra, shape, k = CASES[dataset]
    make(tmp_path / "data")
    out = tmp_path / "out.safetensors"
    r = runner.invoke(
        cli,
        [
            "run",
            "dm",
            "--dataset",
            dataset,
            *FAST,
            "--data-dir",
            str(tmp_path / "data"),
            "-o",
            str(out),
            *extra,
        ],
    )
    assert r.exit_code == 0, r.output
    syn = condense.load(out)
    assert tuple(syn.images.shape) == (k, *shape)
    assert len(syn.meta["class_names"]) == k
    if "tiny" in dataset.lower():
        assert tuple(syn.meta["class_names"]) == SORTED_WNIDS  # the wnid order is recorded
    assert syn.meta["dataset"] == condense.get_dataset(dataset).name


def test_list_datasets_json(runner: CliRunner) -> None:
    r = runner.invoke(cli, ["list", "datasets", "--json"])
    assert r.exit_code == 0, r.output
    entries = {e["name"]: e for e in json.loads(r.stdout)}
    assert {cls.name for cls in BUILTIN_DATASETS} <= set(entries)
    assert entries["cifar10"]["std"] == [0.2023, 0.1994, 0.2010]
    assert entries["tinyimagenet"]["image_size"] == [64, 64]
    assert entries["imagewoof"]["image_size"] == [128, 128]
    assert "tiny" in entries["tinyimagenet"]["aliases"]
    assert entries["imagefolder"]["config"]["image_size"] == 0


def test_missing_dataset_is_a_clear_cli_error(tmp_path: Path, runner: CliRunner) -> None:
    r = runner.invoke(
        cli, ["run", "dm", "--dataset", "cifar100", *FAST, "--data-dir", str(tmp_path)]
    )
    assert r.exit_code == 1
    assert "cifar100 train split not found" in r.output and str(tmp_path) in r.output


class _Probe(condense.Evaluator):
    """Records the real data it was given (to check eval reloads the dataset settings)."""

    name = "probe"
    seen: list[tuple[str, tuple[int, ...]]] = []

    def evaluate(self, synset, data, *, seed=0, device="cpu", progress=None):  # type: ignore[no-untyped-def]
        _Probe.seen.append((data.name, tuple(data.test.images.shape[1:])))
        return condense.EvalResult(self.name, "probe", {}, {"ok": 1.0})


class _ProbePlugin:
    __name__ = "probe-evaluator"

    @staticmethod
    @condense.hookimpl
    def register_evaluators(register):  # type: ignore[no-untyped-def]
        register(_Probe)


@pytest.fixture
def probe() -> Iterator[type[_Probe]]:
    pm.register(_ProbePlugin, name="probe-evaluator")
    _Probe.seen.clear()
    try:
        yield _Probe
    finally:
        pm.unregister(name="probe-evaluator")


def test_eval_reloads_imagefolder_with_recorded_settings(
    tmp_path: Path, runner: CliRunner, probe: type[_Probe]
) -> None:
    make_imagefolder(tmp_path / "data" / "pets")
    out = tmp_path / "pets.safetensors"
    r = runner.invoke(
        cli,
        [
            "run",
            "dm",
            "--dataset",
            "imagefolder",
            *FAST,
            "--data-dir",
            str(tmp_path / "data"),
            "--train-dir",
            "pets/train",
            "--val-dir",
            "pets/val",
            "--image-size",
            "12",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    meta = condense.load(out).meta
    assert meta["dataset_config"]["image_size"] == 12
    assert "--data-set image_size=12" in meta["reproduce"]
    r = runner.invoke(
        cli,
        [
            "eval",
            str(out),
            "-e",
            "probe",
            "--no-save",
            "--json",
            "--data-dir",
            str(tmp_path / "data"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert probe.seen == [("imagefolder", (3, 12, 12))]
