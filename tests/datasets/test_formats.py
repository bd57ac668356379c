"""Every on-disk format, read from tiny fixtures: shapes, labels, class order, normalisation."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import condense
from condense.datasets.cifar import read_batch
from condense.datasets.imagenet_subsets import SUBSETS
from condense.plugins import pm
from condense.registry import get_dataset

from dataset_fixtures import (
    IMAGEFOLDER_CLASSES,
    SORTED_WNIDS,
    colour,
    make_cifar10,
    make_cifar100,
    make_idx,
    make_imagefolder,
    make_imagenet,
    make_packed_tiny,
    make_svhn,
    make_tiny_imagenet,
)


def _labels_follow_pixels(images: torch.Tensor, labels: torch.Tensor, tol: int = 3) -> None:
    """Each image's mean grey level is its class colour (the fixtures paint classes flat)."""
    means = images.float().mean(dim=(1, 2, 3))
    expected = torch.tensor([colour(int(y)) for y in labels], dtype=torch.float32)
    assert torch.allclose(means, expected, atol=tol), (means[:8], expected[:8])


def _check_normalisation(
    data: condense.RealData, mean: tuple[float, ...], std: tuple[float, ...]
) -> None:
    assert data.mean == pytest.approx(mean) and data.std == pytest.approx(std)
    x = data.train.images[:2]
    got = data.normalize(x)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    assert torch.allclose(got, (x.float() / 255 - m) / s, atol=1e-5)


def test_mnist_idx_gz(tmp_path: Path) -> None:
    make_idx(tmp_path, "MNIST")
    data = condense.load_dataset("MNIST", tmp_path)
    assert data.train.images.shape == (30, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.test.images.shape == (10, 1, 28, 28)
    assert data.class_names == tuple(str(i) for i in range(10))
    _labels_follow_pixels(data.train.images, data.train.labels, tol=0)
    _check_normalisation(data, (0.1307,), (0.3081,))


def test_fashion_mnist_idx_under_torchvision_folder(tmp_path: Path) -> None:
    make_idx(tmp_path, "FashionMNIST")
    data = condense.load_dataset("fashion_mnist", tmp_path)
    assert data.name == "fashion-mnist" and data.class_names[0] == "T-shirt/top"
    assert data.train.source == str(tmp_path / "FashionMNIST" / "raw")
    _check_normalisation(data, (0.2861,), (0.3530,))


def test_cifar10_python_batches(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    data = condense.load_dataset("CIFAR-10", tmp_path)
    assert data.train.images.shape == (50, 3, 32, 32)
    # batches are concatenated in order 1..5 (the first pixel marks the batch)
    assert data.train.images[:, 0, 0, 0].tolist() == [b for b in range(1, 6) for _ in range(10)]
    assert data.train.labels.tolist() == list(range(10)) * 5
    assert data.test.images.shape == (10, 3, 32, 32)
    assert data.class_names[:3] == ("airplane", "automobile", "bird")
    _labels_follow_pixels(data.test.images, data.test.labels, tol=0)
    _check_normalisation(data, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))


def test_cifar100_python_batches(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    data = condense.load_dataset("cifar100", tmp_path)
    assert data.train.images.shape == (200, 3, 32, 32) and data.test.images.shape == (
        100,
        3,
        32,
        32,
    )
    assert len(data.class_names) == 100 and data.class_names[7] == "fine007"  # from the meta file
    assert torch.bincount(data.train.labels).tolist() == [2] * 100
    _labels_follow_pixels(data.train.images, data.train.labels, tol=0)
    _check_normalisation(data, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))


def test_cifar_unpickler_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            import os

            return (os.getcwd, ())

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(condense.CondenseError, match=r"refusing to load (posix|os|nt)\.getcwd"):
        read_batch(path)


def test_svhn_mat(tmp_path: Path) -> None:
    make_svhn(tmp_path)
    data = condense.load_dataset("SVHN", tmp_path)
    assert data.train.images.shape == (20, 3, 32, 32) and data.test.images.shape == (10, 3, 32, 32)
    assert data.train.labels.tolist() == [c for c in range(10) for _ in range(2)]  # 10 -> 0
    _labels_follow_pixels(data.train.images, data.train.labels, tol=0)
    _check_normalisation(data, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
    assert data.source.dsa_strategy == "color_crop_cutout_scale_rotate"  # no flip for digits


@pytest.mark.parametrize("reorganised", [False, True])
def test_tinyimagenet_tree(tmp_path: Path, reorganised: bool) -> None:
    make_tiny_imagenet(tmp_path, reorganised=reorganised)
    data = condense.load_dataset("TinyImageNet", tmp_path)
    assert data.class_names == SORTED_WNIDS  # sorted wnids, whatever wnids.txt's order
    assert data.train.images.shape == (9, 3, 64, 64)  # greyscale JPEGs come back as RGB
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    _labels_follow_pixels(data.train.images, data.train.labels)
    test = data.test  # the labelled val split; test/ (unlabelled, grey 250) is never read
    assert test.images.shape == (6, 3, 64, 64)
    assert sorted(test.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    _labels_follow_pixels(test.images, test.labels)
    _check_normalisation(data, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_tinyimagenet_packed_tensor_file(tmp_path: Path) -> None:
    make_packed_tiny(tmp_path / "tinyimagenet")  # classes stored in wnids.txt (unsorted) order
    data = condense.load_dataset("tiny-imagenet-200", tmp_path)
    assert data.class_names == SORTED_WNIDS
    assert data.train.images.shape == (6, 3, 64, 64) and data.train.images.dtype == torch.uint8
    # labels were re-mapped to sorted-wnid order: the pixels of sorted class k are WNIDS' colour
    from dataset_fixtures import WNIDS

    for img, y in zip(data.train.images, data.train.labels, strict=True):
        assert int(img[0, 0, 0]) == colour(WNIDS.index(SORTED_WNIDS[int(y)]))
    assert data.test.images.shape == (3, 3, 64, 64)


def test_tinyimagenet_prefers_tree_and_source_option(tmp_path: Path) -> None:
    make_tiny_imagenet(tmp_path)
    make_packed_tiny(tmp_path, classes=SORTED_WNIDS)
    assert condense.load_dataset("tinyimagenet", tmp_path).train.images.shape[0] == 9
    packed = condense.load_dataset("tinyimagenet", tmp_path, config={"source": "tensor"})
    assert packed.train.images.shape[0] == 6 and packed.config == {"source": "tensor"}


def test_imagefolder_mixed_modes_and_sizes(tmp_path: Path) -> None:
    make_imagefolder(tmp_path)
    data = condense.load_dataset("ImageFolder", tmp_path)
    assert data.class_names == IMAGEFOLDER_CLASSES
    assert data.train.images.shape == (12, 3, 16, 20)  # native size, L/RGBA/P converted to RGB
    _labels_follow_pixels(data.train.images, data.train.labels)
    assert data.test.images.shape == (3, 3, 16, 20)
    # no mean/std given: the training images' own statistics
    values = (
        torch.tensor([colour(y) for y in range(3)], dtype=torch.float64).repeat_interleave(4) / 255
    )
    assert data.mean[0] == pytest.approx(float(values.mean()), abs=2e-3)
    assert data.std[0] == pytest.approx(float(values.std(unbiased=False)), abs=2e-3)
    x = data.normalize(data.train.images).double()
    assert abs(float(x.mean())) < 0.02 and abs(float(x.std()) - 1) < 0.02


def test_imagefolder_image_size_channels_and_paths(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "pets", modes=("L",))
    cfg = {
        "train_dir": "pets/train",
        "val_dir": "pets/val",
        "image_size": 8,
        "channels": 1,
        "mean": (0.5,),
        "std": (0.25,),
    }
    data = condense.load_dataset("imagefolder", tmp_path, config=cfg)
    assert data.train.images.shape == (12, 1, 8, 8) and data.spec.image_size == (8, 8)
    assert data.mean == (0.5,) and data.std == (0.25,)
    assert data.config["image_size"] == 8 and data.config["train_dir"] == "pets/train"
    assert data.test.images.shape == (3, 1, 8, 8)


def test_imagefolder_resize_then_centre_crop(tmp_path: Path) -> None:
    from PIL import Image

    left = Image.new("RGB", (40, 20), (0, 0, 0))
    left.paste((255, 255, 255), (0, 0, 10, 20))  # the left quarter is white: cropped away
    for split in ("train", "val"):
        for name in ("a", "b"):  # one class would be refused
            (tmp_path / split / name).mkdir(parents=True)
            left.save(tmp_path / split / name / "x.png")
    data = condense.load_dataset("imagefolder", tmp_path, config={"image_size": 10})
    img = data.train.images[0]
    assert img.shape == (3, 10, 10)
    assert int(img.max()) <= 40  # Resize(10) gives 20x10, CenterCrop keeps columns 5..14


@pytest.mark.parametrize("subset", sorted(SUBSETS))
def test_imagenet_subsets_over_imagenet_tree(tmp_path: Path, subset: str) -> None:
    make_imagenet(tmp_path, (subset,))
    data = condense.load_dataset(subset, tmp_path, config={"image_size": 16})
    wnids = tuple(w for w, _ in SUBSETS[subset])
    assert data.class_names == wnids  # MTT's class order
    assert data.train.images.shape == (20, 3, 16, 16)
    assert data.train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert data.test.images.shape == (10, 3, 16, 16)
    order = sorted(wnids)  # the fixture paints by sorted position
    expected = torch.tensor([colour(order.index(wnids[int(y)])) for y in data.train.labels])
    assert torch.allclose(data.train.images.float().mean(dim=(1, 2, 3)), expected.float(), atol=3)
    _check_normalisation(data, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_imagenette_default_128_from_fastai_folder(tmp_path: Path) -> None:
    base = make_imagenet(tmp_path, ("imagenette",))
    base.rename(tmp_path / "imagenette2-320")
    data = condense.load_dataset("ImageNette", tmp_path)
    assert data.train.images.shape == (20, 3, 128, 128) and data.spec.image_size == (128, 128)


def test_mtt_wnid_lists() -> None:
    """Spot checks against torchvision's Imagenette and MTT's ImageNet indices."""
    from torchvision.datasets import Imagenette

    assert {w for w, _ in SUBSETS["imagenette"]} == set(Imagenette._WNID_TO_CLASS)
    assert all(len(v) == 10 and len({w for w, _ in v}) == 10 for v in SUBSETS.values())
    assert SUBSETS["imagewoof"][0][0] == "n02096294"  # ImageNet class 193, Australian terrier
    assert SUBSETS["imagesquawk"][7][0] == "n01518878"  # class 9, ostrich
    assert SUBSETS["imagefruit"][9][0] == "n07742313"  # class 948, Granny Smith


def test_names_are_case_insensitive_with_aliases() -> None:
    fake = pm.get_plugin("tiny-datasets")  # the suite's fake "tiny" dataset shadows the alias
    if fake is not None:
        pm.unregister(name="tiny-datasets")
    try:
        for alias, name in [
            ("FashionMNIST", "fashion-mnist"),
            ("fashion_mnist", "fashion-mnist"),
            ("TinyImageNet", "tinyimagenet"),
            ("tiny", "tinyimagenet"),
            ("Tiny", "tinyimagenet"),
            ("CIFAR-10", "cifar10"),
            ("ImageNette", "imagenette"),
            ("ImageSquack", "imagesquawk"),
            ("image_folder", "imagefolder"),
            ("SVHN", "svhn"),
        ]:
            assert get_dataset(alias).name == name, alias
    finally:
        if fake is not None:
            pm.register(fake, name="tiny-datasets")
