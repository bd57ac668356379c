"""Image folders are decoded once; the cache is the only thing written, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import condense
from condense.datasets import cache, images

from dataset_fixtures import make_imagefolder, make_tiny_imagenet, save_image


def _tree(root: Path) -> dict[str, int]:
    """Every path outside the cache, with its size and mtime (files) or -1 (folders)."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns + p.stat().st_size if p.is_file() else -1
        for p in root.rglob("*")
        if ".cache" not in p.parts
    }


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = images.decode

    def counting(files, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(files))
        return real(files, **kwargs)

    monkeypatch.setattr(images, "decode", counting)
    return calls


def test_decoded_once_then_read_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tiny_imagenet(tmp_path)
    calls = _count_decodes(monkeypatch)
    first = condense.load_dataset("tinyimagenet", tmp_path)
    first_test = first.test
    assert calls == [9, 6]
    second = condense.load_dataset("tinyimagenet", tmp_path)
    assert calls == [9, 6]  # nothing decoded again
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.train.labels, second.train.labels)
    assert torch.equal(first_test.images, second.test.images)
    assert second.class_names == first.class_names
    entries = sorted(p.name for p in (tmp_path / ".cache").iterdir())
    assert len(entries) == 2 and all(e.endswith(".safetensors") for e in entries)  # no temp files


def test_changed_files_invalidate_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_imagefolder(tmp_path)
    calls = _count_decodes(monkeypatch)
    condense.load_dataset("imagefolder", tmp_path)
    save_image(tmp_path / "train" / "dog" / "new.png", 66, (20, 16))  # one more image
    data = condense.load_dataset("imagefolder", tmp_path)
    assert calls == [12, 13] and data.train.images.shape[0] == 13
    condense.load_dataset(
        "imagefolder", tmp_path, config={"image_size": 8}
    )  # other size: new entry
    assert calls == [12, 13, 13]


def test_nothing_but_the_cache_is_written_into_the_data_folder(tmp_path: Path) -> None:
    make_tiny_imagenet(tmp_path)
    make_imagefolder(tmp_path / "folder")
    before = _tree(tmp_path)
    assert condense.load_dataset("tinyimagenet", tmp_path).test.images.shape[0] == 6
    assert condense.load_dataset("imagefolder", tmp_path / "folder").test.images.shape[0] == 3
    assert _tree(tmp_path) == before
    assert {p.parent for p in tmp_path.rglob("*.safetensors")} == {
        tmp_path / ".cache",
        tmp_path / "folder" / ".cache",
    }


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_imagefolder(tmp_path / "data")
    monkeypatch.setenv("CONDENSE_CACHE_DIR", str(tmp_path / "elsewhere"))
    condense.load_dataset("imagefolder", tmp_path / "data")
    assert not (tmp_path / "data" / ".cache").exists()
    assert len(list((tmp_path / "elsewhere").glob("imagefolder-train-*.safetensors"))) == 1


def test_read_only_data_folder_caches_in_the_default_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_imagefolder(tmp_path / "ro")
    monkeypatch.setattr(cache, "_writable", lambda folder: False)
    condense.load_dataset("imagefolder", tmp_path / "ro")
    default = Path(os.environ["CONDENSE_DATA_DIR"]) / ".cache"
    assert len(list(default.glob("imagefolder-train-*"))) == 1
    assert not (tmp_path / "ro" / ".cache").exists()


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_imagefolder(tmp_path)
    first = condense.load_dataset("imagefolder", tmp_path)
    entry = next((tmp_path / ".cache").glob("imagefolder-train-*"))
    entry.write_bytes(entry.read_bytes()[:100])
    calls = _count_decodes(monkeypatch)
    again = condense.load_dataset("imagefolder", tmp_path)
    assert calls == [12] and torch.equal(first.train.images, again.train.images)


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(tensors, path, metadata=None):  # type: ignore[no-untyped-def]
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache, "save_file", boom)
    make_imagefolder(tmp_path)
    data = condense.load_dataset(
        "imagefolder", tmp_path
    )  # a cache that cannot be written is skipped
    assert data.train.images.shape[0] == 12
    assert list((tmp_path / ".cache").iterdir()) == []
