"""Invalid sets, data that does not match a set, devices that do not exist, damaged checkpoints,
unreadable legacy files: each is one line (exit code != 0) before any work, never a traceback."""

from __future__ import annotations

import json
import pickle
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import condense
from condense import api, store
from condense.cli import cli
from condense.devices import available_devices, check_device
from condense.loop.checkpoint import load_checkpoint, save_checkpoint

META = {"method": "dm", "dataset": "tiny", "ipc": 2, "class_names": ["a", "b", "c"],
        "mean": [0.5], "std": [0.25], "image_size": [8, 8]}


def write_set(path: Path, images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
              **meta: object) -> Path:
    """A hand-made artifact, written with plain safetensors (no validation on the way)."""
    images = torch.randn(6, 1, 8, 8) if images is None else images
    labels = torch.arange(3).repeat_interleave(2) if labels is None else labels
    header = {"condense_format": "synset", "format_version": "1",
              **{k: json.dumps(v) for k, v in {**META, **meta}.items()}}
    save_file({"images": images.contiguous(), "labels": labels}, str(path), metadata=header)
    return path


def nan_images() -> torch.Tensor:
    x = torch.randn(6, 1, 8, 8)
    x[2, 0, 1, 1] = float("nan")
    return x


def inf_images() -> torch.Tensor:
    x = torch.randn(6, 1, 8, 8)
    x[5, 0, 0, 0] = float("inf")
    return x


#: (name, write_set arguments, the expected message after "<path>: ")
BAD_SETS = [
    ("nan", {"images": nan_images()},
     "images contain NaN or infinite values (1 of 6; first: image 2, class 'b'); the set is "
     "unusable"),
    ("inf", {"images": inf_images()},
     "images contain NaN or infinite values (1 of 6; first: image 5, class 'c')"),
    ("std-zero", {"std": [0.0]},
     "metadata 'std' must be a list of 1 positive number(s), one per image channel, got [0.0]"),
    ("std-negative", {"std": [-0.25]}, "metadata 'std' must be a list of 1 positive number(s)"),
    ("std-length", {"std": [0.25, 0.25, 0.25]},
     "metadata 'std' must be a list of 1 positive number(s), one per image channel, got "
     "[0.25, 0.25, 0.25]"),
    ("std-string", {"std": "0.25"}, "metadata 'std' must be a list of 1 positive number(s)"),
    ("mean-string", {"mean": "abc"},
     "metadata 'mean' must be a list of 1 number(s), one per image channel, got 'abc'"),
    ("mean-length", {"mean": [0.5, 0.5]}, "metadata 'mean' must be a list of 1 number(s)"),
    ("names-short", {"class_names": ["a", "b"]},
     "labels run 0..2 but metadata 'class_names' has 2 name(s) (classes 0..1); the labels or "
     "the class names are wrong"),
    ("label-high", {"labels": torch.tensor([0, 0, 1, 1, 2, 7])},
     "labels run 0..7 but metadata 'class_names' has 3 name(s)"),
    ("label-negative", {"labels": torch.tensor([-1, 0, 1, 1, 2, 2])},
     "labels run -1..2; class ids start at 0"),
    ("names-not-strings", {"class_names": [1, 2, 3]},
     "metadata 'class_names' must be a non-empty list of strings"),
    ("ipc-string", {"ipc": "two"}, "metadata 'ipc' must be a positive integer, got 'two'"),
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def first_error(result) -> str:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines, result.output
    return lines[0]


# -- condense.load / save -----------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,message", BAD_SETS, ids=[b[0] for b in BAD_SETS])
def test_load_refuses_an_invalid_set_with_one_line(tmp_path, name, kwargs, message):
    path = write_set(tmp_path / f"{name}.safetensors", **kwargs)
    with pytest.raises(condense.ArtifactError) as exc:
        condense.load(path)
    text = str(exc.value)
    assert text.startswith(f"{path}: {message}") and "\n" not in text


def test_an_invalid_set_can_still_be_read_to_repair_it_and_save_refuses_it(tmp_path):
    path = write_set(tmp_path / "std.safetensors", std=[0.0])
    syn = condense.load(path, validate=False)
    assert syn.meta["std"] == [0.0]
    with pytest.raises(condense.ArtifactError, match=r"cannot save: metadata 'std'"):
        condense.save(syn, tmp_path / "copy.safetensors")
    syn.meta["std"] = [0.25]
    condense.load(condense.save(syn, path))  # repaired
    bad = condense.load(write_set(tmp_path / "nan.safetensors", images=nan_images()),
                        validate=False)
    with pytest.raises(condense.ArtifactError, match=r"cannot save: images contain NaN"):
        condense.save(bad, tmp_path / "nan2.safetensors")


def test_evaluate_validates_an_in_memory_set_before_loading_data(tiny_data):
    bad = condense.SynSet(nan_images(), torch.arange(3).repeat_interleave(2), dict(META))
    with pytest.raises(condense.ArtifactError, match="^the set: images contain NaN"):
        condense.evaluate(bad, data=tiny_data)


# -- condense eval and show on invalid sets -------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,message", BAD_SETS, ids=[b[0] for b in BAD_SETS])
def test_eval_refuses_an_invalid_set_before_any_work(runner, tmp_path, name, kwargs, message):
    path = write_set(tmp_path / f"{name}.safetensors", **kwargs)
    r = runner.invoke(cli, ["eval", str(path), "--no-progress", "--device", "cpu"])
    assert r.exit_code == 1
    assert first_error(r).startswith(f"Error: {path}: {message}")
    assert not (tmp_path / f"{name}.eval-accuracy.json").exists()


@pytest.mark.parametrize("key,value,message", [
    ("mean", "abc", "metadata 'mean' must be a list of 1 number(s)"),
    ("mean", [0.1, 0.2, 0.3], "metadata 'mean' must be a list of 1 number(s)"),
    ("std", [0.0], "metadata 'std' must be a list of 1 positive number(s)"),
])
def test_show_refuses_metadata_it_cannot_draw_with_one_line(runner, tmp_path, key, value, message):
    path = write_set(tmp_path / "bad.safetensors", **{key: value})
    r = runner.invoke(cli, ["show", str(path)])
    assert r.exit_code == 1
    assert first_error(r).startswith(f"Error: {path}: {message}")


def test_show_flags_non_finite_images_in_red(runner, tmp_path):
    path = write_set(tmp_path / "nan.safetensors", images=nan_images())
    grid = tmp_path / "grid.png"
    r = runner.invoke(cli, ["show", str(path), "--grid", str(grid)])
    assert r.exit_code == 0, r.output
    assert first_error(r) == ("warning: 1 of 6 images contain NaN or infinite values (first: "
                              "image 2); drawn red in the grid. condense.load and condense eval "
                              "refuse this set")
    from condense.cli._grid import pixels

    drawn = pixels(condense.load(path, validate=False))
    assert drawn[2, :, 1, 1].tolist() == [1.0, 0.0, 0.0]  # the NaN pixel is red, not black
    assert torch.isfinite(drawn).all()
    red = torch.from_numpy(np.array(Image.open(grid).convert("RGB"))).view(-1, 3)
    assert ((red[:, 0] == 255) & (red[:, 1] == 0) & (red[:, 2] == 0)).any()


@pytest.mark.parametrize("value", ["0", "-2"])
def test_show_max_per_class_must_be_positive(runner, tmp_path, value):
    path = write_set(tmp_path / "ok.safetensors")
    r = runner.invoke(cli, ["show", str(path), "--max-per-class", value])
    assert r.exit_code == 2
    assert f"Invalid value for '--max-per-class': {value} is not in the range x>=1." in r.stderr
    assert "Traceback" not in r.output


def test_show_grid_columns_follow_ipc_and_rows_are_labelled(tmp_path):
    from condense.cli._grid import MIN_ROW, columns, render_grid

    one = condense.SynSet(torch.zeros(3, 1, 8, 8), torch.arange(3), dict(META, ipc=1))
    assert columns(one, 10) == 1
    grid = render_grid(one, 10)
    cell = 8 * -(-MIN_ROW // 8) + 1  # enlarged to at least MIN_ROW pixels, plus padding
    assert grid.height == 3 * cell + 1
    margin = grid.width - cell - 1
    assert margin > 8  # room for the class names, and only one column of images
    labels = torch.from_numpy(np.array(grid.crop((0, 0, margin, grid.height)).convert("L")))
    assert (labels < 128).any()  # text was drawn in the margin
    five = condense.SynSet(torch.zeros(15, 1, 8, 8), torch.arange(3).repeat_interleave(5),
                           dict(META, ipc=5))
    assert columns(five, 10) == 5 and columns(five, 2) == 2


def test_show_prints_the_whole_reproduce_command_on_one_line(runner, tmp_path):
    command = "condense run dm --dataset tiny --ipc 2 " + " ".join(
        f"--set method.key{i}=value{i}" for i in range(40))
    assert len(command) > 800
    path = write_set(tmp_path / "long.safetensors", reproduce=command)
    r = runner.invoke(cli, ["show", str(path), "--no-grid"])
    assert r.exit_code == 0, r.output
    assert f"reproduce: {command}" in r.stdout.splitlines()


# -- a set against the data it is evaluated on --------------------------------------------------

def make_folder(root: Path, classes: tuple[str, ...], *, val: tuple[str, ...] | None = None,
                mode: str = "RGB") -> Path:
    g = torch.Generator().manual_seed(0)
    for split, names in (("train", classes), ("val", classes if val is None else val)):
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(2):
                c = 3 if mode == "RGB" else 1
                pixels = torch.randint(0, 255, (8, 8, c), generator=g, dtype=torch.uint8)
                Image.fromarray(pixels.squeeze(-1).numpy(), mode).save(root / split / name /
                                                                        f"{i}.png")
    return root


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDENSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CONDENSE_DATA_DIR", str(tmp_path / "default-data"))
    return tmp_path


def folder_set(path: Path, classes: list[str], *, channels: int = 3, size: int = 8,
               root: Path | None = None, **config: object) -> Path:
    meta = {**META, "dataset": "imagefolder", "class_names": classes, "ipc": 1,
            "mean": [0.5] * channels, "std": [0.25] * channels, "image_size": [size, size],
            "dataset_config": {"channels": channels, **config}}
    if root is not None:
        meta["data_root"] = str(root)
    syn = condense.SynSet(torch.randn(len(classes), channels, size, size),
                          torch.arange(len(classes)), meta)
    return condense.save(syn, path)


def eval_args(path: Path, *extra: str) -> list[str]:
    return ["eval", str(path), "--no-progress", "--no-save", "--device", "cpu", *extra]


def test_a_two_class_set_against_a_three_class_folder(runner, isolated):
    folder = make_folder(isolated / "three", ("cat", "dog", "owl"))
    path = folder_set(isolated / "two.safetensors", ["cat", "dog"])
    r = runner.invoke(cli, eval_args(path, "--data-dir", str(folder)))
    assert r.exit_code == 1
    assert first_error(r) == (
        f"Error: the set has 2 classes (cat, dog) but the imagefolder data in {folder}/train "
        f"has 3 (cat, dog, owl); evaluate it against the data it was distilled from "
        f"(--data-dir)")


def test_a_set_against_a_folder_with_other_class_names(runner, isolated):
    folder = make_folder(isolated / "other", ("ant", "bee"))
    path = folder_set(isolated / "two.safetensors", ["cat", "dog"])
    r = runner.invoke(cli, eval_args(path, "--data-dir", str(folder)))
    assert r.exit_code == 1
    assert first_error(r) == (
        f"Error: the set's classes differ from the imagefolder data in {folder}/train (class 0 "
        f"is 'cat' in the set, 'ant' in the data); evaluate it against the data it was "
        f"distilled from (--data-dir)")


def test_a_greyscale_set_against_rgb_data_suggests_the_channels_setting(runner, isolated):
    folder = make_folder(isolated / "grey", ("a", "b"), mode="L")
    path = folder_set(isolated / "g.safetensors", ["a", "b"], channels=1)
    r = runner.invoke(cli, eval_args(path, "--data-dir", str(folder), "--data-set",
                                     "channels=3"))
    assert r.exit_code == 1
    assert first_error(r) == (
        "Error: the set holds 1-channel (greyscale) 8×8 images but imagefolder gives 3-channel "
        "(RGB) 8×8 images; load the data with --data-set channels=1")


def test_a_size_mismatch_on_a_resizable_dataset_suggests_the_image_size(runner, isolated):
    folder = make_folder(isolated / "rgb", ("a", "b"))
    path = folder_set(isolated / "s.safetensors", ["a", "b"], image_size=8)
    r = runner.invoke(cli, eval_args(path, "--data-dir", str(folder), "--image-size", "6"))
    assert r.exit_code == 1
    assert first_error(r) == (
        "Error: the set holds 3-channel (RGB) 8×8 images but imagefolder gives 3-channel (RGB) "
        "6×6 images; load the data at the set's size: --image-size 8")


def test_a_set_whose_images_do_not_fit_its_recorded_dataset(runner, tmp_path):
    # e.g. an RGB 16x16 set recorded as the greyscale 8x8 "tiny": not --image-size, but the dataset
    path = write_set(tmp_path / "rgb.safetensors", images=torch.randn(6, 3, 16, 16),
                     mean=[0.5] * 3, std=[0.25] * 3, image_size=[16, 16])
    r = runner.invoke(cli, eval_args(path))
    assert r.exit_code == 1
    assert first_error(r) == (
        "Error: the set holds 3-channel (RGB) 16×16 images but tiny gives 1-channel (greyscale) "
        "8×8 images; the set was not made from tiny: its metadata names the wrong dataset "
        "(re-import it with the right --dataset; tiny-rgb have 3×16×16 images)")
    assert "--image-size" not in r.stderr


# -- the recorded data folder -------------------------------------------------------------------

def test_a_run_records_its_data_folder_and_eval_reads_it_again(isolated, monkeypatch):
    folder = make_folder(isolated / "pets", ("cat", "dog"))
    syn = condense.distill("random", dataset="imagefolder", ipc=1, data_dir=folder)
    assert syn.meta["data_root"] == str(folder.resolve())
    monkeypatch.chdir(isolated / "pets" / "train")  # the relative default would not find it
    data = api.data_of(syn)
    assert data.class_names == ("cat", "dog") and data.root == str(folder.resolve())
    moved = folder.rename(isolated / "moved")
    with pytest.raises(condense.DatasetError) as exc:
        api.data_of(syn)
    assert str(exc.value) == (
        f"imagefolder: the set was distilled from the data in {folder.resolve()}, which no "
        f"longer exists, and the data is not in the default locations either; pass --data-dir "
        f"FOLDER (data_dir=) pointing at a copy of it")
    assert api.data_of(syn, moved).class_names == ("cat", "dog")  # --data-dir still wins


# -- imagefolder: one class, a val/ lacking a class ------------------------------------------------

def test_an_imagefolder_with_one_class_is_refused(isolated):
    folder = make_folder(isolated / "one", ("cat",))
    with pytest.raises(condense.DatasetError) as exc:
        condense.load_dataset("imagefolder", folder)
    assert str(exc.value) == (
        f"imagefolder: {folder}/train has one class folder ('cat'); a classification set needs "
        f"at least 2, one sub-folder per class in {folder}/train/<class>/")


def test_a_val_folder_lacking_a_class_is_refused_when_read(isolated):
    folder = make_folder(isolated / "val", ("cat", "dog", "owl"), val=("cat", "dog"))
    data = condense.load_dataset("imagefolder", folder)  # distilling needs only train/
    with pytest.raises(condense.DatasetError) as exc:
        data.test  # noqa: B018
    assert str(exc.value) == (
        f"imagefolder: {folder}/val has no images of class(es) 'owl' (1 of the 3 in "
        f"{folder}/train); accuracy needs test images of every class: add {folder}/val/<class>/ "
        f"folders, or pass --val-dir")


# -- devices --------------------------------------------------------------------------------------

def test_devices_that_do_not_exist_are_one_line_naming_those_that_do(runner, tmp_path):
    have = ", ".join(available_devices())
    with pytest.raises(condense.ConfigError) as exc:
        check_device("tpu")
    assert str(exc.value) == (f"device 'tpu' is not a torch device name; this machine has: "
                              f"{have} (or auto: cuda where available, else cpu)")
    missing = f"cuda:{torch.cuda.device_count() + 7}"
    with pytest.raises(condense.ConfigError, match=f"^device '{missing}' .*this machine has: "):
        check_device(missing)
    assert check_device("cpu").type == "cpu"
    path = write_set(tmp_path / "ok.safetensors")
    for command in (["eval", str(path), "--device", missing],
                    ["run", "random", "--dataset", "tiny", "--ipc", "1", "--device", "tpu",
                     "--out", str(tmp_path / "r.safetensors")]):
        r = runner.invoke(cli, command)
        assert r.exit_code == 1
        device = command[command.index("--device") + 1]
        assert first_error(r).startswith(f"Error: device '{device}'")
        assert f"this machine has: {have}" in first_error(r)


# -- damaged checkpoints --------------------------------------------------------------------------

@pytest.mark.parametrize("drop,message", [
    ("plan", "damaged checkpoint (no 'plan' entry)"),
    ("iteration", "damaged checkpoint (no 'iteration' entry)"),
    ("syn", "damaged checkpoint (no 'syn' entry)"),
])
def test_a_checkpoint_without_an_entry_is_one_line(tmp_path, drop, message):
    from safetensors import safe_open
    from safetensors.torch import load_file

    plan = {"method": "dm", "method_config": {}, "sampler": "convnet", "sampler_config": {},
            "loop": {}, "dataset": "tiny", "ipc": 1, "seed": 0, "preset": None}
    path = tmp_path / "x.ckpt.safetensors"
    save_checkpoint(path, plan, 3, {"syn": torch.zeros(3, 1, 8, 8)}, {})
    with safe_open(str(path), "pt") as f:
        meta = {k: v for k, v in f.metadata().items() if k != drop}
    tensors = {k: v for k, v in load_file(str(path)).items() if k != drop}
    tensors.setdefault("other", torch.zeros(1))
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(condense.CheckpointError) as exc:
        load_checkpoint(path, plan)
    assert str(exc.value) == (f"{path}: {message}; remove it to start afresh, or resume from a "
                              f"copy made before it was damaged")


# -- condense import ------------------------------------------------------------------------------

def import_args(path: Path, fmt: str, tmp_path: Path) -> list[str]:
    return ["import", str(path), "-f", fmt, "-d", "tiny", "-o", str(tmp_path / "o.safetensors")]


@pytest.mark.parametrize("content,reason", [
    (pickle.dumps({"a": 1}, protocol=4), "no torch.save data in it"),
    (b"hello, a text file", "malformed pickle data: KeyError"),
    (b"", "EOFError"),
])
def test_import_of_an_unreadable_file_is_one_line_without_a_torch_warning(runner, tmp_path,
                                                                          content, reason):
    path = tmp_path / "res_DM_TINY_ConvNet_2ipc.pt"
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        r = runner.invoke(cli, import_args(path, "vico", tmp_path))
    assert r.exit_code == 1
    assert first_error(r) == (f"Error: {path}: not a readable torch file ({reason}); it may be "
                              f"truncated or in another format")
    assert "Warning" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_vico_file_imported_as_mtt_is_named(runner, tmp_path):
    path = tmp_path / "res_DM_TINY_ConvNet_2ipc.pt"
    torch.save({"data": [[torch.zeros(6, 1, 8, 8), torch.arange(3).repeat_interleave(2)]]}, path)
    for fmt in ("mtt", "tensors"):
        r = runner.invoke(cli, import_args(path, fmt, tmp_path))
        assert r.exit_code == 1
        assert first_error(r) == (
            f"Error: {path}: this looks like a vico file (a dict with 'data' = [images, labels] "
            f"pairs), not {fmt}; import it with format 'vico' (-f vico)")


def test_a_fashion_mnist_import_suggests_the_mnist_pipeline_values(tmp_path):
    from condense.importers import import_legacy

    path = tmp_path / "res_DM_FashionMNIST_ConvNet_1ipc.pt"
    torch.save({"data": [[torch.randn(10, 1, 28, 28), torch.arange(10)]]}, path)
    notes = import_legacy(path, format="vico", dataset="fashion-mnist").notes
    assert any("re-import with --mean 0.1307 --std 0.3081" in n for n in notes), notes
    given = import_legacy(path, format="vico", dataset="fashion-mnist", mean=(0.1307,),
                          std=(0.3081,)).notes
    assert not any("0.1307" in n for n in given)


def test_other_warnings_are_shown_after_a_hub_command_without_hanging():
    from condense.cli.hub import hub_warnings

    shown: list[warnings.WarningMessage] = []

    def body() -> None:
        with warnings.catch_warnings(record=True) as outer:
            warnings.simplefilter("always")
            with hub_warnings():
                warnings.warn("something else", UserWarning, stacklevel=1)
        shown.extend(outer)

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive()  # re-showing a warning inside the recording looped for ever
    assert [str(w.message) for w in shown] == ["something else"]


def test_store_load_and_import_share_one_finiteness_check():
    from condense.importers import _common
    from condense.validation import check_finite

    assert _common.check_finite is check_finite
    assert store.validate_synset.__module__ == "condense.validation"
