"""The CLI through click's runner: results on stdout, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import click
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from condense import errors as condense_errors
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
    assert out.exists() and not (tmp_path / "s.ckpt.safetensors").exists()  # removed when done
    r = runner.invoke(cli, ["show", str(out), "--json", "--grid", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout)
    assert meta["method"] == "dm" and meta["num_images"] == 6
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_run_resume_continues(runner, tmp_path):
    out = tmp_path / "s.safetensors"
    args = [*RUN_TINY, "--out", str(out), "--set", "checkpoint_every=1", "--keep-checkpoint"]
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


# -- a fast command line: --help, --version and completion import no torch ---------------------

_NO_TORCH = r"""
import os, sys
from condense.cli import cli
cases = [["--help"], ["--version"], ["eval", "--help"], ["show", "--help"], ["list", "--help"],
         ["import", "--help"], ["plugins", "--help"], ["push", "--help"], ["pull", "--help"]]
for args in cases:
    try:
        cli.main(args, prog_name="condense")
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
for words, cword in (("condense ", 1), ("condense run --d", 2), ("condense eval x --", 3)):
    os.environ.update(_CONDENSE_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
    try:
        cli.main([], prog_name="condense", complete_var="_CONDENSE_COMPLETE")
    except SystemExit:
        pass
import condense.plugins
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in ("torch", "numpy") or m.startswith("condense_"))
sys.stderr.write(f"LOADED {loaded} PLUGINS {condense.plugins._loaded}\n")
"""


@pytest.mark.slow
def test_help_version_and_completion_import_neither_torch_nor_plugins():
    env = {k: v for k, v in os.environ.items() if k != "CONDENSE_DISABLE_PLUGIN_AUTOLOAD"}
    r = subprocess.run([sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "LOADED [] PLUGINS False" in r.stderr, r.stderr
    assert "Usage: condense [OPTIONS] COMMAND" in r.stdout and "--dataset" in r.stdout


def test_the_package_namespace_is_lazy_and_complete():
    import condense

    assert set(condense.__all__) == set(condense._SOURCES) | {"__version__"}
    for name in condense.__all__:
        assert getattr(condense, name) is not None, name
    assert set(condense.__all__) <= set(dir(condense))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        condense.nope  # noqa: B018


def test_lazily_loaded_names_resolve_and_static_tables_agree():
    """Every ``module:attr`` the CLI loads by name exists; the tables that keep --help free of
    torch equal what they copy; the group's short help equals each command's own."""
    import re
    from pathlib import Path

    from condense.cli import _lazy, commands, group
    from condense.importers import FORMATS, format_names
    from condense.registry import KINDS

    sources = [Path(m.__file__).read_text() for m in (commands, group, _lazy)]
    targets = {t for text in sources for t in re.findall(r'"(condense\.[\w.]+:\w+)"', text)}
    assert "condense.cli.run:run" in targets and "condense.cli.hub:push" in targets
    for target in targets:
        assert callable(_lazy.load(target)), target
    assert commands.LIST_KINDS == tuple(sorted(KINDS))
    assert list(commands.IMPORT_FORMATS) == format_names()
    assert commands.IMPORT_FORMAT_HELP == "; ".join(f"{f.name}: {f.files}"
                                                    for f in FORMATS.values())
    ctx = click.Context(cli)
    for name, target in group.LAZY_COMMANDS.items():
        real = cli.get_command(ctx, name)
        assert group.short_help_from_source(target, 60) == real.get_short_help_str(60), name


def test_version_lists_plugin_distributions(runner):
    out = runner.invoke(cli, ["--version"]).stdout
    lines = out.splitlines()
    assert lines[0].startswith("condense, version") and lines[1].startswith("python ")
    assert lines[2].startswith("plugins")
    from condense.plugins import installed_plugins

    for p in installed_plugins():
        assert f"{p['distribution']} {p['version']}" in out


def test_help_texts_methods_and_examples(runner):
    r = runner.invoke(cli, ["run", "--help"])
    assert r.exit_code == 0, r.output
    assert "Methods installed here:" in r.stdout and "datadam, dc, dm" in r.stdout
    assert "Examples:" in r.stdout and "condense run datadam --dataset fashion-mnist" in r.stdout
    assert "--keep-checkpoint" in r.stdout
    r = runner.invoke(cli, ["eval", "--help"], terminal_width=200)
    assert "initialisation and data order" in r.stdout  # --seed has help
    line = next(ln for ln in r.stdout.splitlines() if "--no-progress" in ln)
    assert "errors and the result are still printed" in line
    r = runner.invoke(cli, ["--help"], terminal_width=200)
    assert "condense plugins" in r.stdout and r.stderr == ""  # no plugin warnings on --help


def test_shell_completion_of_names():
    from click.shell_completion import ShellComplete

    comp = ShellComplete(cli, {}, "condense", "_CONDENSE_COMPLETE")

    def names(args, incomplete):
        return [c.value for c in comp.get_completions(args, incomplete)]

    assert {"run", "eval", "show", "push"} <= set(names([], ""))
    assert {"dm", "datadam", "datadam-paper"} <= set(names(["run"], "d"))
    assert {"tiny", "tiny-rgb"} <= set(names(["run", "dm", "--dataset"], "ti"))
    assert names(["run", "dm", "--preset"], "") == ["dm", "dm-bn"]
    assert "accuracy" in names(["eval", "x.safetensors", "--evaluator"], "")
    assert names(["eval", "x.safetensors", "-e", "nas", "--preset"], "") == ["paper", "small"]
    assert "--keep-checkpoint" in names(["run"], "--k")


@pytest.mark.parametrize("before", [True, False])
def test_debug_is_accepted_before_or_after_the_command(runner, before):
    args = ["run", "nope", "--dataset", "tiny", "--ipc", "1"]
    r = runner.invoke(cli, ["--debug", *args] if before else [*args, "--debug"])
    assert r.exit_code != 0 and isinstance(r.exception, condense_errors.UnknownComponentError)
    r = runner.invoke(cli, args)
    assert r.exit_code == 1 and "Error: unknown method 'nope'" in r.stderr


# -- progress in logs, the loss history and curve, the checkpoint policy -----------------------

RUN_LOGGED = [a for a in RUN_TINY if a != "--no-progress"]


def test_progress_lines_when_stderr_is_not_a_terminal(runner, tmp_path):
    out = tmp_path / "s.safetensors"
    r = runner.invoke(cli, [*RUN_LOGGED, "--out", str(out), "--set", "log_every=1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    last = [ln for ln in r.stderr.splitlines() if ln.startswith("iteration ")][-1]
    assert last.startswith("iteration 2/2 loss ") and "it/s" in last, r.stderr
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(tmp_path / "q.safetensors")])
    assert "iteration 2/2" not in r.stderr and r.stdout.strip().endswith("q.safetensors")
    r = runner.invoke(cli, ["run", "dm", "--dataset", "nope", "--ipc", "1", "--no-progress"])
    assert r.exit_code == 1 and "Error:" in r.stderr  # --no-progress keeps errors


def test_progress_lines_follow_log_every_and_a_time_floor():
    from condense.cli._console import ProgressLines
    from condense.interfaces import ProgressEvent

    now = [0.0]
    lines: list[str] = []
    report = ProgressLines({"distill": 10}, write=lines.append, clock=lambda: now[0])
    for i in range(1, 101):
        now[0] = i * 0.5  # 2 it/s
        report(ProgressEvent("distill", i, 100, {"loss": 12.3456}))
    assert [ln.split()[1] for ln in lines] == ["1/100"] + [f"{k}/100" for k in range(10, 101, 10)]
    assert lines[0] == "iteration 1/100 loss 12.35"  # the first step, always (no rate yet)
    assert lines[2] == "iteration 20/100 loss 12.35 2 it/s ETA 0:00:40"
    lines.clear()
    slow = ProgressLines({"distill": 1000}, write=lines.append, clock=lambda: now[0])
    for i in range(1, 11):
        now[0] = i * 10.0  # one iteration every 10 s: a line at least every 30 s
        slow(ProgressEvent("distill", i, 5000, {}))
    assert [ln.split()[1] for ln in lines] == ["1/5000", "4/5000", "7/5000", "10/5000"]
    lines.clear()
    evaluation = ProgressLines(write=lines.append, clock=lambda: now[0])
    for i in range(1, 41):
        now[0] += 2
        evaluation(ProgressEvent("accuracy", i, 40, {"model": "convnet"}))
    assert len(lines) == 21 and lines[-1].startswith("accuracy 40/40 model convnet")


def test_loss_history_and_curve(runner, tmp_path):
    from PIL import Image

    import condense
    from condense.cli._plot import SIZE

    out = tmp_path / "s.safetensors"
    r = runner.invoke(cli, [*RUN_TINY, "--iterations", "3", "--set", "log_every=2",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    history = condense.load(out).meta["loss_history"]
    assert [i for i, _ in history] == [1, 2, 3] and all(isinstance(v, float) for _, v in history)
    r = runner.invoke(cli, ["show", str(out), "--grid", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    assert "3 readings" in r.stdout and r.stdout.strip().endswith("g.png")
    with Image.open(tmp_path / "g.loss.png") as image:
        assert image.size == SIZE and image.mode == "RGB"
        assert len(image.getcolors(maxcolors=SIZE[0] * SIZE[1])) > 3  # something was drawn
    r = runner.invoke(cli, ["show", str(out), "--no-grid", "--json"])
    assert json.loads(r.stdout)["loss_history"] == history


def test_loss_curve_rendering_cases():
    from condense.cli._plot import SIZE, render_loss_curve

    assert render_loss_curve({}) is None
    assert render_loss_curve({"loss_history": [[1, 5.0]]}).size == SIZE
    wide = {"loss_history": [[i, 1000.0 / i] for i in range(1, 200)], "method": "dm",
            "dataset": "tiny", "ipc": 1,
            "eval_history": [{"iteration": 100, "metrics": {"accuracy": 40.0, "std": 1.0}},
                             {"iteration": 199, "metrics": {"accuracy": 55.0, "std": 1.0}}]}
    image = render_loss_curve(wide)
    assert image.size == SIZE
    assert (230, 110, 20) in {c for _, c in image.getcolors(maxcolors=SIZE[0] * SIZE[1])}
    evals_only = {"eval_history": [{"iteration": 5, "metrics": {"accuracy": 50.0}}]}
    assert render_loss_curve(evals_only).size == SIZE


@pytest.mark.slow
def test_periodic_evaluations_are_kept(runner, tmp_path):
    import condense

    out = tmp_path / "e.safetensors"
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--evaluator", "accuracy",
                            "--set", "eval_every=1", "--eval-set", "epochs=1",
                            "--eval-set", "num_eval=1"])
    assert r.exit_code == 0, r.output
    history = condense.load(out).meta["eval_history"]
    assert [e["iteration"] for e in history] == [1, 2]
    assert history[0]["evaluator"] == "accuracy" and "accuracy" in history[0]["metrics"]
    assert len((tmp_path / "e.eval.jsonl").read_text().splitlines()) == 2
    r = runner.invoke(cli, ["show", str(out), "--grid", str(tmp_path / "e.png")])
    assert r.exit_code == 0 and (tmp_path / "e.loss.png").exists()
    # `condense eval` prints plain progress lines too when stderr is not a terminal
    r = runner.invoke(cli, ["eval", str(out), "--set", "epochs=1", "--set", "num_eval=2"])
    assert r.exit_code == 0, r.output
    assert "accuracy 4/4 model convnet" in r.stderr, r.stderr


def test_checkpoint_policy(runner, tmp_path, monkeypatch):
    out = tmp_path / "s.safetensors"
    ckpt = tmp_path / "s.ckpt.safetensors"
    assert runner.invoke(cli, [*RUN_TINY, "--out", str(out)]).exit_code == 0
    assert out.exists() and not ckpt.exists()
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--force"])
    assert r.exit_code == 0 and "pass --resume" not in r.stderr  # no leftover to warn about
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--keep-checkpoint", "--force"])
    assert r.exit_code == 0 and ckpt.exists()
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--force"])
    assert "pass --resume" in r.stderr and not ckpt.exists()
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--resume"])
    assert r.exit_code == 1 and "finished and removed it" in r.stderr

    import condense.cli._run_outputs as run_outputs

    def fail(*args, **kwargs):
        raise condense_errors.ArtifactError("disk full")

    monkeypatch.setattr(run_outputs, "save", fail)  # the artifact is not written: keep the ckpt
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(tmp_path / "f.safetensors")])
    assert r.exit_code == 1 and "disk full" in r.stderr
    assert (tmp_path / "f.ckpt.safetensors").exists()
