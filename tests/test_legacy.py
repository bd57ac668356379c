"""`condense import`: every legacy format from a generated fixture, imported, saved, evaluated.

The fixtures hold real ``tiny`` images in the space each format stores them in (normalised, ZCA'd,
unnormalised multi-formation …); an import is right when ``synset.denormalize()`` gives the
original pixels back and the set evaluates like the pixels it came from.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.importers import describe_formats, import_legacy, resolve_format
from condense.importers.idc import decode_zoom
from condense.plugins import pm

MEAN, STD = 0.5, 0.25  # the tiny dataset's normalisation (tests/conftest.py)


class CentroidEvaluator(condense.Evaluator):
    """Deterministic stand-in evaluator: nearest class centroid in pixel space."""

    name = "centroid-test"

    def evaluate(self, synset, data, *, seed=0, device="cpu", progress=None):  # type: ignore[no-untyped-def]
        pixels = synset.denormalize().flatten(1)
        k = len(data.class_names)
        centroids = torch.stack([pixels[synset.labels == c].mean(0) for c in range(k)])
        test = data.test.images.float().div(255).flatten(1)
        pred = torch.cdist(test, centroids).argmin(1)
        acc = (pred == data.test.labels).float().mean().item()
        return condense.EvalResult("centroid-test", "nearest pixel centroid v1", {},
                                   {"accuracy": acc}, (acc,))


class _EvalPlugin:
    @staticmethod
    @condense.hookimpl
    def register_evaluators(register):  # type: ignore[no-untyped-def]
        register(CentroidEvaluator)


@pytest.fixture
def centroid_eval() -> Iterator[str]:
    pm.register(_EvalPlugin, name="centroid-test-eval")
    try:
        yield "centroid-test"
    finally:
        pm.unregister(name="centroid-test-eval")


@pytest.fixture
def pixels(tiny_data) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real training images per class as [0, 1] floats, class-major, with their labels."""
    idx = torch.cat([i[:2] for i in tiny_data.class_index()])
    return tiny_data.train.images[idx].float() / 255, tiny_data.train.labels[idx]


def normalised(p: torch.Tensor) -> torch.Tensor:
    return (p - MEAN) / STD


def expected_accuracy(p: torch.Tensor, labels: torch.Tensor, data: condense.RealData) -> float:
    s = condense.SynSet(normalised(p), labels, {"mean": [MEAN], "std": [STD]})
    return CentroidEvaluator().evaluate(s, data).metrics["accuracy"]


def assert_round_trip(result, p: torch.Tensor, tmp_path: Path, fmt: str) -> condense.SynSet:
    syn = result.synset
    assert syn.meta["imported"]["format"] == fmt and syn.meta["dataset"] == "tiny"
    assert syn.meta["mean"] == [MEAN] and syn.meta["std"] == [STD]
    assert torch.allclose(syn.denormalize(), p, atol=1e-5)
    back = condense.load(condense.save(syn, tmp_path / f"{fmt}.safetensors"))
    assert torch.equal(back.images, syn.images) and torch.equal(back.labels, syn.labels)
    assert back.meta["imported"]["sha256"] == syn.meta["imported"]["sha256"]
    return back


def test_vico_res_file_with_numpy_scalars(tmp_path, pixels, tiny_data, centroid_eval):
    p, y = pixels
    path = tmp_path / "res_DM_TINY_ConvNet_2ipc.pt"
    torch.save({"data": [[torch.randn_like(p), y], [normalised(p), y]],
                "accs_all_exps": {"ConvNet": [np.float64(0.625), np.float32(0.5)]}}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)  # what the allow-list is for (docs/importing.md)
    result = import_legacy(path, format="dm", dataset="tiny")
    back = assert_round_trip(result, p, tmp_path, "vico")
    m = back.meta
    assert m["method"] == "dm" and m["ipc"] == 2 and m["label_type"] == "hard" and m["zca"] is None
    assert m["imported"]["experiment"] == 1 and m["imported"]["experiments"] == 2
    assert m["imported"]["reported_accuracy"] == {"ConvNet": [0.625, 0.5]}
    assert m["class_names"] == ["0", "1", "2"]  # tiny declares no class names
    result = condense.evaluate(tmp_path / "vico.safetensors", evaluator=centroid_eval)
    assert result.metrics["accuracy"] == pytest.approx(expected_accuracy(p, y, tiny_data))
    first = import_legacy(path, format="vico", dataset="tiny", experiment=0).synset
    assert first.meta["imported"]["experiment"] == 0
    assert not torch.allclose(first.images, back.images)
    with pytest.raises(condense.ArtifactError, match="out of range.*2 experiment"):
        import_legacy(path, format="vico", dataset="tiny", experiment=5)


def test_numpy1_pickled_scalars_are_allowed(tmp_path, pixels):
    """Files written under numpy 1 name ``numpy.core.multiarray.scalar``."""
    p, y = pixels
    path = tmp_path / "res_DC_TINY_ConvNet_2ipc.pt"
    torch.save({"data": [[normalised(p), y]], "accs_all_exps": {"ConvNet": [np.float64(0.75)]}},
               path, _use_new_zipfile_serialization=False)
    raw = path.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in raw
    path.write_bytes(raw.replace(b"numpy._core.multiarray\nscalar",
                                 b"numpy.core.multiarray\nscalar"))
    syn = import_legacy(path, format="dc", dataset="tiny").synset
    assert syn.meta["imported"]["reported_accuracy"] == {"ConvNet": [0.75]}
    assert syn.meta["method"] == "dc"


def test_code_executing_pickle_is_refused(tmp_path, pixels):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (builtins.exec, (f"open({str(marker)!r}, 'w').write('x')",))

    p, y = pixels
    path = tmp_path / "res_DM_TINY_ConvNet_2ipc.pt"
    torch.save({"data": [[normalised(p), y]], "payload": Evil()}, path)
    with pytest.raises(condense.ArtifactError, match=r"refused: .*global exec.*weights_only"):
        import_legacy(path, format="vico", dataset="tiny")
    assert not marker.exists()
    r = CliRunner().invoke(cli, ["import", str(path), "--format", "vico", "--dataset", "tiny",
                                 "-o", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 1 and not marker.exists()
    assert r.stderr.startswith("Error:") and "refused" in r.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_mtt_with_learned_lr(tmp_path, pixels, tiny_data, centroid_eval):
    p, y = pixels
    torch.save(normalised(p).requires_grad_(), tmp_path / "images_best.pt")
    torch.save(y, tmp_path / "labels_best.pt")
    torch.save(torch.nn.Parameter(torch.tensor(0.0123)), tmp_path / "lr_best.pt")
    result = import_legacy(tmp_path / "images_best.pt", format="mtt", dataset="tiny")
    back = assert_round_trip(result, p, tmp_path, "mtt")
    assert back.syn_lr is not None and back.syn_lr.item() == pytest.approx(0.0123)
    assert back.meta["method"] == "mtt"
    assert set(back.meta["imported"]["files"]) == {"images_best.pt", "labels_best.pt", "lr_best.pt"}
    acc = condense.evaluate(back, evaluator=centroid_eval).metrics["accuracy"]
    assert acc == pytest.approx(expected_accuracy(p, y, tiny_data))


def test_datm_soft_labels_and_split_folder(tmp_path, pixels):
    p, y = pixels
    soft = torch.softmax(F.one_hot(y, 3).float() * 3, 1)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(normalised(p[:3]), run / "images_best_0.pt")
    torch.save(normalised(p[3:]), run / "images_best_1.pt")
    torch.save(soft[:3], run / "labels_best_0.pt")
    torch.save(soft[3:], run / "labels_best_1.pt")
    result = import_legacy(run, format="datm", dataset="tiny", syn_lr=0.01)
    syn = assert_round_trip(result, p, tmp_path, "mtt")
    assert syn.meta["label_type"] == "soft" and syn.meta["method"] == "datm"
    assert torch.allclose(syn.soft_labels, soft) and torch.equal(syn.labels, y)
    assert syn.syn_lr.item() == pytest.approx(0.01)


def test_mtt_zca_fitted_and_stored(tmp_path, pixels, tiny_data, centroid_eval):
    p, y = pixels
    zca = condense.load_dataset("tiny").fit_zca(0.1)
    torch.save(zca(normalised(p)), tmp_path / "images_best.pt")
    torch.save(y, tmp_path / "labels_best.pt")
    plain = import_legacy(tmp_path / "images_best.pt", format="mtt", dataset="tiny", zca=True)
    z = plain.synset.meta["zca"]
    assert z["eps"] == 0.1 and z["stored"] is False and "fit_zca" in z["fit"]
    assert plain.synset.zca_transform is None
    assert any("not stored" in n for n in plain.notes)
    fitted = import_legacy(tmp_path / "images_best.pt", format="mtt", dataset="tiny", zca=True,
                           fit_zca=True)
    syn = assert_round_trip(fitted, p, tmp_path, "mtt")
    assert syn.meta["zca"]["stored"] is True and torch.allclose(syn.zca_transform, zca.transform)
    acc = condense.evaluate(syn, evaluator=centroid_eval).metrics["accuracy"]
    assert acc == pytest.approx(expected_accuracy(p, y, tiny_data))
    with pytest.raises(condense.ConfigError, match="--fit-zca needs --zca"):
        import_legacy(tmp_path / "images_best.pt", format="mtt", dataset="tiny", fit_zca=True)


def test_idc_unnormalised_factor1(tmp_path, pixels, tiny_data, centroid_eval):
    p, y = pixels
    torch.save([p, y], tmp_path / "data.pt")
    result = import_legacy(tmp_path / "data.pt", format="idc", dataset="tiny", factor=1)
    syn = assert_round_trip(result, p, tmp_path, "idc")
    assert torch.allclose(syn.images, normalised(p))  # stored normalised, like every artifact
    assert syn.meta["imported"]["normalised_on_import"] is True
    acc = condense.evaluate(syn, evaluator=centroid_eval).metrics["accuracy"]
    assert acc == pytest.approx(expected_accuracy(p, y, tiny_data))


def test_idc_multi_formation_decoded(tmp_path, pixels):
    p, y = pixels
    folder = tmp_path / "conv3in_grad_mse_factor2_ipc2"
    folder.mkdir()
    # each stored image packs four 4x4 images in a 2x2 grid
    small = F.interpolate(p, size=4, mode="bilinear", align_corners=False)
    grid = torch.cat([torch.cat([small, small.flip(-1)], -1),
                      torch.cat([small.flip(-2), small], -1)], -2)
    torch.save((grid, y), folder / "data.pt")
    result = import_legacy(folder / "data.pt", format="idc", dataset="tiny")
    assert any("--factor 2 taken from the path" in n for n in result.notes)
    syn = result.synset
    assert len(syn) == 4 * len(p) and syn.meta["ipc"] == 2 and syn.meta["imported"]["factor"] == 2
    assert torch.equal(syn.labels, torch.arange(3).repeat_interleave(8))  # class-major
    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=8, mode="bilinear", align_corners=False)

    first_class = syn.denormalize()[:8]
    expected = torch.cat([up(small[:2]), up(small[:2].flip(-1)), up(small[:2].flip(-2)),
                          up(small[:2])])
    assert torch.allclose(first_class, expected.clamp(0, 1), atol=1e-5)
    with pytest.raises(condense.ConfigError, match="--factor"):
        torch.save((grid, y), tmp_path / "data.pt")
        import_legacy(tmp_path / "data.pt", format="idc", dataset="tiny")


def test_decode_zoom_pads_odd_sizes():
    x = torch.rand(2, 3, 7, 7)
    out = decode_zoom(x, 2)
    assert out.shape == (8, 3, 7, 7)


def test_datadam_hub_file(tmp_path, pixels, tiny_data, centroid_eval):
    p, y = pixels
    path = tmp_path / "syn_data_tiny_ipc_2.pt"
    torch.save({"data": (normalised(p), y.float())}, path)  # DataDAM keeps float labels
    result = import_legacy(path, format="datadam", dataset="tiny")
    syn = assert_round_trip(result, p, tmp_path, "datadam")
    assert syn.meta["method"] == "datadam" and syn.labels.dtype == torch.int64
    assert syn.meta["imported"]["original_ipc"] == 2
    acc = condense.evaluate(syn, evaluator=centroid_eval).metrics["accuracy"]
    assert acc == pytest.approx(expected_accuracy(p, y, tiny_data))
    params = tmp_path / "model_params_tiny_ipc_2.pt"
    torch.save({"net_parameters": {"w": torch.zeros(2)}}, params)
    with pytest.raises(condense.ArtifactError, match="evaluation network.*syn_data"):
        import_legacy(params, format="datadam", dataset="tiny")


def test_plain_tensor_pairs(tmp_path, pixels, tiny_data, centroid_eval):
    p, y = pixels
    torch.save((p * 255).round().to(torch.uint8), tmp_path / "TINY_IPC2_images.pt")
    torch.save(y, tmp_path / "TINY_IPC2_labels.pt")
    result = import_legacy(tmp_path / "TINY_IPC2_images.pt", format="tensors", dataset="tiny",
                           method="kmeans")
    syn = assert_round_trip(result, p, tmp_path, "tensors")
    assert syn.meta["method"] == "kmeans" and syn.meta["imported"]["space"] == "uint8 0..255"
    acc = condense.evaluate(syn, evaluator=centroid_eval).metrics["accuracy"]
    assert acc == pytest.approx(expected_accuracy(p, y, tiny_data))
    # float [0, 1] images are ambiguous until --space says which
    torch.save(p, tmp_path / "challenge.pt")
    with pytest.raises(condense.ArtifactError, match="no labels"):
        import_legacy(tmp_path / "challenge.pt", format="tensors", dataset="tiny")
    with pytest.raises(condense.ConfigError, match="--space"):
        import_legacy(tmp_path / "challenge.pt", format="tensors", dataset="tiny",
                      class_major_labels=True)
    implied = import_legacy(tmp_path / "challenge.pt", format="tensors", dataset="tiny",
                            class_major_labels=True, space="pixels")
    assert torch.equal(implied.synset.labels, y)
    assert torch.allclose(implied.synset.denormalize(), p, atol=1e-6)
    torch.save((normalised(p), y), tmp_path / "pair.pt")
    auto = import_legacy(tmp_path / "pair.pt", format="tensors", dataset="tiny")
    assert torch.allclose(auto.synset.denormalize(), p, atol=1e-6)


def test_custom_normalisation_is_recorded(tmp_path, pixels):
    p, y = pixels
    torch.save({"data": [[(p - 0.1307) / 0.3081, y]]},
               tmp_path / "res_DataDAM_MNIST_ConvNet_2ipc.pt")
    result = import_legacy(tmp_path / "res_DataDAM_MNIST_ConvNet_2ipc.pt", format="vico",
                           dataset="tiny", mean=(0.1307,), std=(0.3081,))
    assert result.synset.meta["mean"] == [0.1307] and result.synset.meta["method"] == "datadam"
    assert torch.allclose(result.synset.denormalize(), p, atol=1e-5)
    assert any("file name says dataset 'MNIST'" in n for n in result.notes)


@pytest.mark.parametrize("make, match", [
    (lambda p, y: {"data": [[p, y]]},
     r"images are 3×32×32, dataset tiny is 1×8×8; is --dataset right\? \(cifar10"),
    (lambda p, y: {"data": [[torch.zeros(6, 1, 8, 8), y + 5]]}, r"labels run 5\.\.7"),
    (lambda p, y: {"data": [[torch.zeros(6, 1, 8, 8), y[:4]]]}, r"6 images but 4 labels"),
    (lambda p, y: {"other": 1}, r"not a res_\*\.pt file"),
])
def test_malformed_inputs_are_refused(tmp_path, make, match):
    y = torch.arange(3).repeat_interleave(2)
    path = tmp_path / "res_DM_TINY_ConvNet_2ipc.pt"
    torch.save(make(torch.zeros(6, 3, 32, 32), y), path)
    with pytest.raises(condense.ArtifactError, match=match):
        import_legacy(path, format="vico", dataset="tiny")


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "res.pt"
    path.write_bytes(b"definitely not a pickle")
    with pytest.raises(condense.ArtifactError, match="not a readable torch file"):
        import_legacy(path, format="vico", dataset="tiny")
    with pytest.raises(condense.ConfigError, match="unknown legacy format 'kip'"):
        resolve_format("kip")
    assert {f["name"] for f in describe_formats()} == {"vico", "mtt", "idc", "datadam", "tensors"}


def test_cli_import(tmp_path, pixels, monkeypatch):
    p, y = pixels
    src = tmp_path / "res_DSA_TINY_ConvNet_2ipc.pt"
    torch.save({"data": [[normalised(p), y]]}, src)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["import", str(src), "--format", "dsa", "--dataset", "tiny"])
    assert r.exit_code == 0, r.output
    out = Path(r.stdout.strip())
    assert out == Path("imported") / "dsa-tiny-ipc2.safetensors" and out.exists()
    assert "6 images of 3 classes" in r.stderr
    meta = condense.read_metadata(out)
    assert meta["imported"]["file"] == src.name and meta["method"] == "dsa"
    r = runner.invoke(cli, ["import", str(src), "--format", "dsa", "--dataset", "tiny"])
    assert r.exit_code == 1 and "exists; pass --force" in r.stderr
    r = runner.invoke(cli, ["import", str(src), "--format", "dsa", "--dataset", "tiny", "--force",
                            "--mean", "0.5", "--std", "x"])
    assert r.exit_code == 2 and "comma-separated numbers" in r.stderr
    r = runner.invoke(cli, ["show", str(out), "--json", "--no-grid"])
    assert json.loads(r.stdout)["imported"]["format"] == "vico"


def test_source_file_is_never_modified(tmp_path, pixels):
    p, y = pixels
    src = tmp_path / "res_DM_TINY_ConvNet_2ipc.pt"
    torch.save({"data": [[normalised(p), y]]}, src)
    before = (src.read_bytes(), os.stat(src).st_mtime_ns)
    import_legacy(src, format="vico", dataset="tiny")
    assert (src.read_bytes(), os.stat(src).st_mtime_ns) == before
