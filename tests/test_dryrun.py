"""``condense run … --dry-run``: everything resolved, nothing distilled, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.datasets.cache import cache_dir

SMALL = ["--ipc", "2", "--set", "batch_real=4"]
#: encoder settings for the methods that have them (the others refuse unknown keys)
NARROW = ["--set", "sampler.width=8"]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def dry(runner: CliRunner, args: list[str], cwd: Path) -> str:
    before = files_under(cwd)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = runner.invoke(cli, args)
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    assert files_under(cwd) == before, "a dry run wrote files"
    return r.stdout


@pytest.mark.parametrize("method", ["datadam", "dm", "dc", "dsa", "mtt", "random", "herding"])
def test_every_method_resolves_without_writing(method: str, tmp_path: Path) -> None:
    if method == "mtt":
        pytest.importorskip("condense_mtt")
    if method in ("dc", "dsa"):
        pytest.importorskip("condense_dc")
    extra = NARROW if method not in ("random",) else []
    if method in ("dc", "dsa"):  # IPC 2 is outside the official get_loops table: set both
        extra = [*extra, "--set", "outer_loop=2", "--set", "inner_loop=1"]
    out = dry(CliRunner(), ["run", method, "-d", "tiny", *SMALL, *extra, "--dry-run"], tmp_path)
    assert out.startswith("dry run: nothing distilled, nothing written")
    assert "dataset      tiny: 3 classes, 1×8×8, 36 training images" in out
    assert f"artifact     runs/{method}-tiny-ipc2-seed0.safetensors" in out
    uses_chunk = condense.get_method(method).needs_encoder
    assert ("class chunk  3 of 3 classes per forward pass" in out) == uses_chunk
    assert ("not used (the method has no shared encoder pass)" in out) == (not uses_chunk)


def test_chunk_and_batchnorm(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["-d", "tiny", *SMALL, *NARROW, "--class-chunk", "1", "--dry-run", "--out", "x.st"]
    out = dry(runner, ["run", "datadam", *args], tmp_path)  # BatchNorm encoder
    assert "class chunk  1 of 3 classes per forward pass (3 passes; class_chunk setting)" in out
    assert "changes BN   yes" in out
    assert "artifact     x.st" in out
    out = dry(runner, ["run", "dm", *args], tmp_path)  # instancenorm: chunks are exact
    assert "changes BN   no (no BatchNorm in the encoder)" in out


def test_library_result_is_consistent(tiny_rgb) -> None:
    r = condense.dry_run("datadam", dataset=tiny_rgb, ipc=2,
                         settings={"batch_real": 4, "sampler.width": 8, "class_chunk": 2})
    assert (r.method, r.dataset, r.num_classes, r.image_shape) == ("datadam", "tiny-rgb", 4,
                                                                    (3, 16, 16))
    assert r.class_chunk == 2 and not r.chunk_auto and r.batchnorm and r.chunk_changes_batchnorm
    assert r.class_bytes and r.activation_bytes == r.class_bytes * 2
    assert r.synthetic_bytes == 3 * 4 * 4 * 2 * 3 * 16 * 16
    assert r.iteration_bytes == r.activation_bytes + r.data_bytes + r.synthetic_bytes
    assert r.plan["loop"]["batch_real"] == 4 and r.probe is None
    auto = condense.dry_run("datadam", dataset=tiny_rgb, ipc=2, settings={"batch_real": 4})
    assert auto.chunk_auto and auto.class_chunk == 4 and not auto.chunk_changes_batchnorm


def test_probe_times_iterations(tmp_path: Path) -> None:
    out = dry(CliRunner(), ["run", "dm", "-d", "tiny", *SMALL, *NARROW, "--iterations", "50",
                            "--dry-run=probe"], tmp_path)
    line = next(s for s in out.splitlines() if s.startswith("probe"))
    assert "2 iteration(s)" in line and "s/iteration" in line and "for 50 iterations" in line
    out = dry(CliRunner(), ["run", "random", "-d", "tiny", *SMALL, "--dry-run=probe"], tmp_path)
    assert "the whole run took" in out


def write_imagefolder(root: Path) -> None:
    from PIL import Image

    for split, n in (("train", 3), ("val", 1)):
        for label, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(n):
                Image.new("RGB", (12, 12), (60 + 100 * label, 30, 30)).save(folder / f"{k}.jpg")


def test_imagefolder_decodes_without_writing_the_cache(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_imagefolder(data)
    work = tmp_path / "work"
    work.mkdir()
    cache = cache_dir(str(data))  # beside the data, or $CONDENSE_CACHE_DIR where set
    cache.mkdir(parents=True, exist_ok=True)
    before = files_under(data) | files_under(cache)
    out = dry(CliRunner(), ["run", "dm", "-d", "imagefolder", "--data-dir", str(data),
                            "--image-size", "8", "--ipc", "1", "--set", "batch_real=2",
                            *NARROW, "--dry-run"], work)
    assert "dataset      imagefolder: 2 classes, 3×8×8, 6 training images" in out
    assert files_under(data) | files_under(cache) == before  # no decoded-image cache entry
    condense.load_dataset("imagefolder", str(data), config={"image_size": 8})
    assert files_under(data) | files_under(cache) != before  # (a real load does write one)


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["run", "dm", "-d", "tiny", "--ipc", "2", "--set", "nope=1",
                                 "--dry-run"])
    assert r.exit_code != 0 and "unknown setting 'nope'" in r.output
    assert "Traceback" not in r.output


def test_a_plan_the_method_refuses_is_reported_by_the_dry_run(tmp_path: Path) -> None:
    pytest.importorskip("condense_dc")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:  # Method.check runs when the plan is resolved: the dry run reports it, one line
        r = CliRunner().invoke(cli, ["run", "dc", "-d", "tiny", *SMALL, *NARROW, "--dry-run"])
    finally:
        os.chdir(old)
    assert r.exit_code == 1
    assert "get_loops table defines outer_loop/inner_loop only for IPC" in r.output
    assert "Traceback" not in r.output and not any(tmp_path.iterdir())
