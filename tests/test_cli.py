"""The CLI through click's runner: results on stdout, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from condense.cli import cli

RUN_TINY = ["run", "dm", "--dataset", "tiny", "--ipc", "2", "--iterations", "2", "--no-progress",
            "--set", "batch_real=4", "--set", "sampler.width=8"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_and_version(runner):
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0
    for cmd in ("run", "eval", "list", "plugins", "show"):
        assert cmd in r.stdout
    assert runner.invoke(cli, ["--version"]).stdout.startswith("condense, version")


def test_list_json(runner):
    r = runner.invoke(cli, ["list", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    names = {k: {e["name"] for e in v} for k, v in data.items()}
    assert {"datadam", "dm", "random", "herding"} <= names["methods"]
    assert "convnet" in names["samplers"]
    assert {"fashion-mnist", "mnist"} <= names["datasets"]
    one = json.loads(runner.invoke(cli, ["list", "methods", "--json"]).stdout)
    assert isinstance(one, list) and any(e["name"] == "datadam" for e in one)


def test_list_table_and_plugins(runner):
    r = runner.invoke(cli, ["list", "samplers"])
    assert r.exit_code == 0 and "convnet" in r.stdout
    r = runner.invoke(cli, ["plugins", "--json"])
    info = json.loads(r.stdout)
    builtin = next(p for p in info if p["name"] == "condense.baselines")
    assert "register_methods" in builtin["hooks"] and builtin["version"]


def test_run_prints_only_the_artifact_path(runner, tmp_path):
    out = tmp_path / "s.safetensors"
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    assert out.exists() and (tmp_path / "s.ckpt.safetensors").exists()
    r = runner.invoke(cli, ["show", str(out), "--json", "--grid", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout)
    assert meta["method"] == "dm" and meta["num_images"] == 6
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_run_resume_continues(runner, tmp_path):
    out = tmp_path / "s.safetensors"
    args = [*RUN_TINY, "--out", str(out), "--set", "checkpoint_every=1"]
    assert runner.invoke(cli, args).exit_code == 0
    args[args.index("--iterations") + 1] = "4"
    r = runner.invoke(cli, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["show", str(out), "--json", "--no-grid"])
    assert json.loads(r.stdout)["iterations"] == 4


def test_preset_name_as_method(runner, tmp_path):
    out = tmp_path / "p.safetensors"
    r = runner.invoke(cli, ["run", "datadam-paper", "--dataset", "tiny", "--ipc", "1",
                            "--iterations", "1", "--no-progress", "--set", "batch_real=2",
                            "--set", "sampler.width=4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    meta = json.loads(runner.invoke(cli, ["show", str(out), "--json", "--no-grid"]).stdout)
    assert meta["preset"] == "datadam-paper" and meta["method_config"]["attention_power"] == 4.0


@pytest.mark.parametrize("args,needle", [
    (["run", "datadamm", "--dataset", "tiny", "--ipc", "1"], "installed methods: datadam"),
    (["run", "dm", "--dataset", "nope", "--ipc", "1"], "installed datasets:"),
    (["run", "dm", "--dataset", "tiny", "--ipc", "1", "--set", "bogus=1"],
     "unknown setting 'bogus'"),
    (["run", "dm", "--dataset", "tiny", "--ipc", "1", "--set", "noequals"], "key=value"),
    (["eval", "missing.safetensors"], "no such file"),
])
def test_errors_are_one_clear_line(runner, args, needle):
    r = runner.invoke(cli, args)
    assert r.exit_code == 1
    assert needle in r.stderr
    assert "Traceback" not in r.output
    assert r.stdout == ""


def test_truncated_and_foreign_files_for_eval_and_show(runner, tmp_path):
    out = tmp_path / "s.safetensors"
    runner.invoke(cli, [*RUN_TINY, "--out", str(out)])
    data = out.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) - 100])
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    for cmd in ("eval", "show"):
        for path, needle in ((trunc, "truncated"), (foreign, "not a condense distilled set")):
            r = runner.invoke(cli, [cmd, str(path)])
            assert r.exit_code != 0
            assert needle in r.stderr and "Traceback" not in r.output
            assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) <= 2


def test_debug_shows_the_exception(runner):
    r = runner.invoke(cli, ["--debug", "run", "nope", "--dataset", "tiny", "--ipc", "1"])
    assert r.exit_code != 0 and r.exception is not None


@pytest.mark.slow
def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "condense", "list", "methods", "--json"],
                       capture_output=True, text=True,
                       env={**os.environ, "CONDENSE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 0 and json.loads(r.stdout)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("condense") is None, reason="condense not installed on PATH")
def test_installed_plugin_distributions_are_discovered():
    env = {k: v for k, v in os.environ.items() if k != "CONDENSE_DISABLE_PLUGIN_AUTOLOAD"}
    r = subprocess.run(["condense", "plugins", "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    dists = {p["distribution"]: p["version"] for p in json.loads(r.stdout)}
    for name in ("condense-datadam", "condense-dm"):
        assert dists.get(name) == "0.1.0", dists


@pytest.mark.slow
def test_eval_model_flag_and_into_metadata(runner, tmp_path):
    out = tmp_path / "rgb.safetensors"
    r = runner.invoke(cli, ["run", "random", "--dataset", "tiny-rgb", "--ipc", "2", "--no-progress",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["eval", str(out), "--model", "mlp", "--set", "epochs=2",
                            "--set", "num_eval=1", "--into-metadata", "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["settings"]["model"] == "mlp" and 0 <= result["metrics"]["accuracy"] <= 100
    meta = json.loads(runner.invoke(cli, ["show", str(out), "--json", "--no-grid"]).stdout)
    assert meta["evaluations"][result["protocol"]]["metrics"] == result["metrics"]
    assert (tmp_path / "rgb.eval-accuracy.json").exists()
