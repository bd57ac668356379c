"""Every failure names the file or folder and the fix, in one line (missing data: one block)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

import condense
from condense.errors import ConfigError, DatasetError

from dataset_fixtures import (
    make_cifar10,
    make_idx,
    make_imagefolder,
    make_packed_tiny,
    make_svhn,
    make_tiny_imagenet,
)

# dataset -> (a file name the message must mention, a phrase of the how-to)
MISSING = {
    "mnist": ("train-images-idx3-ubyte", "--download"),
    "fashion-mnist": ("train-images-idx3-ubyte", "apt-get install dataset-fashion-mnist"),
    "svhn": ("train_32x32.mat", "--download"),
    "cifar10": ("cifar-10-batches-py/data_batch_1", "--download"),
    "cifar100": ("cifar-100-python/train", "--download"),
    "tinyimagenet": ("tinyimagenet.pt", "tiny-imagenet-200.zip"),
    "imagenette": ("train/<wnid>/", "--download"),
    "imagewoof": ("n02096294", "ImageNet train/ + val/<wnid>/ tree"),
    "imagefolder": ("<class>/<image files>", "--train-dir"),
}


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


@pytest.mark.parametrize("name", sorted(MISSING))
def test_missing_dataset_names_folder_files_and_fix(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "fashion-mnist":  # hide the system copy so the search comes up empty
        from condense.datasets.mnist import FashionMNIST

        monkeypatch.setattr(FashionMNIST, "system_dirs", (str(tmp_path / "usr-share"),))
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset(name, tmp_path)
    msg = str(exc.value)
    expected, howto = MISSING[name]
    assert "not found" in msg and str(tmp_path) in msg
    assert expected in msg and howto in msg


def test_never_downloads_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    calls: list[tuple[str, bool]] = []

    def fake_cifar10(root: str, train: bool = True, download: bool = False) -> None:
        calls.append((root, download))
        if not (Path(root) / "cifar-10-batches-py").exists():
            make_cifar10(Path(root))

    monkeypatch.setattr(tvd, "CIFAR10", fake_cifar10)
    with pytest.raises(DatasetError, match="not found"):
        condense.load_dataset("cifar10", tmp_path)
    assert calls == []
    data = condense.load_dataset("cifar10", tmp_path, download=True)
    assert data.train.images.shape == (50, 3, 32, 32)
    assert calls == [(str(tmp_path), True), (str(tmp_path), True)]


def test_truncated_idx(tmp_path: Path) -> None:
    raw = make_idx(tmp_path)
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("mnist", tmp_path)
    assert str(path) in _one_line(exc) and "corrupt or truncated" in str(exc.value)


def test_truncated_cifar_batch(tmp_path: Path) -> None:
    d = make_cifar10(tmp_path)
    path = d / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("cifar10", tmp_path)
    assert str(path) in _one_line(exc) and "corrupt or truncated" in str(exc.value)


def test_cifar_batch_with_code_is_refused(tmp_path: Path) -> None:
    d = make_cifar10(tmp_path)
    payload = pickle.dumps({"data": print, "labels": []}, protocol=2)  # any non-numpy global
    (d / "data_batch_1").write_bytes(payload)
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("cifar10", tmp_path)
    assert re.search(r"refusing to load (__builtin__|builtins)\.print", _one_line(exc))


def test_corrupt_svhn_mat(tmp_path: Path) -> None:
    d = make_svhn(tmp_path)
    path = d / "train_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("svhn", tmp_path)
    assert str(path) in _one_line(exc) and "corrupt or truncated" in str(exc.value)


def test_truncated_jpeg(tmp_path: Path) -> None:
    t = make_tiny_imagenet(tmp_path)
    path = t / "train" / "n01443537" / "images" / "n01443537_1.JPEG"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("tinyimagenet", tmp_path)
    assert str(path) in _one_line(exc) and "corrupt or truncated" in str(exc.value)


def test_truncated_packed_tensor_file(tmp_path: Path) -> None:
    path = make_packed_tiny(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("tinyimagenet", tmp_path)
    assert str(path) in _one_line(exc) and "corrupt or truncated" in str(exc.value)


class _Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pwned",))


def test_packed_tensor_file_with_code_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tinyimagenet.pt"
    torch.save({"classes": ["n1"], "images_train": _Payload()}, path)
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("tinyimagenet", tmp_path)
    assert "refusing to unpickle code" in _one_line(exc)
    assert "pwned" not in capsys.readouterr().out


def test_empty_class_folder(tmp_path: Path) -> None:
    make_imagefolder(tmp_path)
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("imagefolder", tmp_path)
    assert "class 'empty' has no images" in _one_line(exc)


def test_empty_tinyimagenet_class(tmp_path: Path) -> None:
    t = make_tiny_imagenet(tmp_path)
    for f in (t / "train" / "n01641577" / "images").iterdir():
        f.unlink()
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("tinyimagenet", tmp_path)
    assert "n01641577" in _one_line(exc) and "has no images" in str(exc.value)


def test_class_without_training_labels(tmp_path: Path) -> None:
    """A class present in the class list but absent from the labels (e.g. a cut-down IDX file)."""
    from dataset_fixtures import write_idx

    raw = make_idx(tmp_path)
    import numpy as np

    write_idx(raw / "train-labels-idx1-ubyte.gz", np.zeros(30, dtype=np.uint8))
    data = condense.load_dataset("mnist", tmp_path)
    with pytest.raises(DatasetError) as exc:
        data.class_index()
    assert "have no training images" in _one_line(exc)


def test_ipc_larger_than_a_class(tmp_path: Path) -> None:
    make_tiny_imagenet(tmp_path)  # 3 training images per class
    with pytest.raises(ConfigError) as exc:
        condense.distill("dm", dataset="tinyimagenet", data_dir=tmp_path, ipc=4, iterations=0)
    msg = _one_line(exc)
    assert "IPC 4 is larger than class 'n01443537' (3 training images)" in msg
    assert "--ipc 3" in msg


def test_one_channel_asked_of_rgb_files(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, modes=("RGB",))
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("imagefolder", tmp_path, config={"channels": 1})
    msg = _one_line(exc)
    assert "colour (RGB) image" in msg and "channels=3" in msg


def test_packed_tensor_with_wrong_channel_count(tmp_path: Path) -> None:
    make_packed_tiny(tmp_path, channels=1)
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("tinyimagenet", tmp_path)
    assert "1 channel(s) but tinyimagenet is RGB" in _one_line(exc)


def test_source_returning_wrong_channels_is_caught(tmp_path: Path) -> None:
    """Any source (plugins too) that hands back the wrong channel count gets one clear line."""
    from condense.datasets.mnist import MNIST

    class BadMNIST(MNIST):
        def load(self, split, root, *, download=False):  # type: ignore[no-untyped-def]
            raw = super().load(split, root, download=download)
            return condense.RawSplit(raw.images.expand(-1, 3, -1, -1), raw.labels, raw.class_names)

    from condense.realdata import check_split

    make_idx(tmp_path)
    source = BadMNIST()
    with pytest.raises(DatasetError) as exc:
        check_split("mnist", source, source.load("train", str(tmp_path)), "train")
    assert "3 channel(s) but the dataset is greyscale (1 channel)" in _one_line(exc)


def test_mixed_image_sizes_need_image_size(tmp_path: Path) -> None:
    make_imagefolder(tmp_path)
    from dataset_fixtures import save_image

    save_image(tmp_path / "train" / "cat" / "big.png", 40, (50, 50))
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("imagefolder", tmp_path)
    assert "different sizes" in _one_line(exc) and "--image-size" in str(exc.value)
    assert condense.load_dataset(
        "imagefolder", tmp_path, config={"image_size": 12}
    ).spec.image_size == (12, 12)


def test_flat_folder_has_no_classes(tmp_path: Path) -> None:
    from dataset_fixtures import save_image

    save_image(tmp_path / "train" / "a.png", 10, (8, 8))
    with pytest.raises(DatasetError) as exc:
        condense.load_dataset("imagefolder", tmp_path)
    assert "no class folders" in _one_line(exc)


def test_dataset_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key image_size"):
        condense.load_dataset("mnist", tmp_path, config={"image_size": 64})
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        condense.load_dataset("imagefolder", tmp_path, config={"channels": 2})
