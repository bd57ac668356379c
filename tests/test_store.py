from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader

import condense
from condense import store

from tolerance import assert_close


def make_synset(**extra) -> condense.SynSet:
    g = torch.Generator().manual_seed(0)
    meta = {"method": "dm", "dataset": "tiny", "ipc": 2, "class_names": ["a", "b", "c"],
            "mean": [0.5], "std": [0.25], "image_size": [8, 8], "seed": 0,
            "method_config": {"embedding_weight": 1.0}}
    return condense.SynSet(torch.randn(6, 1, 8, 8, generator=g),
                           torch.arange(3).repeat_interleave(2), meta, **extra)


def test_round_trip(tmp_path):
    s = make_synset(syn_lr=torch.tensor(0.01), soft_labels=torch.rand(6, 3))
    path = condense.save(s, tmp_path / "x.safetensors")
    back = condense.load(path)
    assert torch.equal(back.images, s.images) and torch.equal(back.labels, s.labels)
    assert back.labels.dtype == torch.int64 and back.images.dtype == torch.float32
    assert torch.allclose(back.syn_lr, s.syn_lr) and torch.allclose(back.soft_labels, s.soft_labels)
    for k, v in s.meta.items():
        assert back.meta[k] == v
    assert back.meta["format_version"] == store.FORMAT_VERSION
    assert condense.read_metadata(path)["dataset"] == "tiny"
    assert not list(tmp_path.glob("*.tmp"))


def test_metadata_is_string_to_json_string(tmp_path):
    path = condense.save(make_synset(), tmp_path / "x.safetensors")
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8 : 8 + n])
    meta = header["__metadata__"]
    assert meta["condense_format"] == "synset" and meta["format_version"] == "1"
    assert json.loads(meta["class_names"]) == ["a", "b", "c"]
    assert all(isinstance(v, str) for v in meta.values())


def test_usable_with_plain_dataloader(tmp_path):
    back = condense.load(condense.save(make_synset(), tmp_path / "x.safetensors"))
    batches = list(DataLoader(back, batch_size=4, shuffle=False))
    assert batches[0][0].shape == (4, 1, 8, 8) and batches[0][1].tolist() == [0, 0, 1, 1]
    assert len(back) == 6 and back.ipc == 2 and back.num_classes == 3


def test_truncated_file(tmp_path):
    path = condense.save(make_synset(), tmp_path / "x.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(condense.ArtifactError, match="truncated"):
        condense.load(path)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(condense.ArtifactError, match="not a condense distilled set"):
        condense.load(path)


def test_not_safetensors_at_all(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"hello world, definitely not a header")
    with pytest.raises(condense.ArtifactError, match="not a readable safetensors"):
        condense.load(path)


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "new.safetensors"
    save_file({"images": torch.zeros(1, 1, 2, 2), "labels": torch.zeros(1, dtype=torch.int64)},
              str(path), metadata={"condense_format": "synset", "format_version": "99"})
    with pytest.raises(condense.ArtifactError, match="newer condense"):
        condense.load(path)


def test_missing_file_and_bad_shapes(tmp_path):
    with pytest.raises(condense.ArtifactError, match="no such file"):
        condense.load(tmp_path / "nope.safetensors")
    bad = make_synset()
    bad.labels = bad.labels[:3]
    with pytest.raises(condense.ArtifactError, match="labels"):
        condense.save(bad, tmp_path / "bad.safetensors")


def test_denormalize_inverts_normalisation():
    s = make_synset()
    s.images = (torch.full((6, 1, 8, 8), 0.75) - 0.5) / 0.25
    assert torch.allclose(s.denormalize(), torch.full((6, 1, 8, 8), 0.75))


def test_zca_round_trip_and_inverse(tmp_path):
    x = torch.randn(200, 1, 4, 4)
    zca = condense.ZCA.fit(x, eps=0.1)
    white = zca(x)
    flat = white.reshape(200, -1)
    cov = flat.T @ flat / 199
    assert cov.diagonal().mean() < 1.0  # eps shrinks the whitened variance below 1
    assert_close(zca.inverse(white), x, what="ZCA round trip")
    s = make_synset(zca_mean=zca.mean, zca_transform=zca.transform)
    s.meta["zca"] = {"eps": 0.1}
    back = condense.load(condense.save(s, tmp_path / "z.safetensors"))
    assert torch.allclose(back.zca_transform, zca.transform)


def test_save_refuses_metadata_that_load_would_reject(tmp_path):
    bare = condense.SynSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(condense.ArtifactError) as exc:
        condense.save(bare, tmp_path / "bare.safetensors")
    message = str(exc.value)
    assert "lacks method, dataset, ipc, class_names, mean, std, image_size" in message
    assert not (tmp_path / "bare.safetensors").exists()
    partial = make_synset()
    del partial.meta["std"]
    with pytest.raises(condense.ArtifactError, match=r"lacks std \(required by condense.load"):
        condense.save(partial, tmp_path / "partial.safetensors")


def test_short_reprs(tiny_data):
    s = make_synset(syn_lr=torch.tensor(0.01))
    s.images = torch.randn(600, 1, 8, 8)  # a large set still prints one short line
    text = repr(s)
    assert text == ("SynSet(600 images (1, 8, 8) float32, method='dm', dataset='tiny', ipc=2, "
                    "3 classes, with syn_lr)")
    assert repr(condense.SynSet(torch.zeros(0, 3, 2, 2), torch.zeros(0, dtype=torch.long))) == \
        "SynSet(0 images (3, 2, 2) float32, 0 classes)"
    assert repr(tiny_data) == ("RealData('tiny', train (36, 1, 8, 8) uint8 on cpu, 3 classes, "
                               "test not loaded, zca none)")
    assert len(repr(tiny_data)) < 120
