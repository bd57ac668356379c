"""Nothing lost, nothing false: outputs checked before the work, Ctrl-C/SIGTERM checkpoints,
one run per --out, no silent overwrite, stale evaluation records ignored, false provenance
refused. Subprocess tests run the real CLI with the tiny datasets of conftest.py registered."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.loop.checkpoint import checkpoint_iteration
from condense.records import DIGEST_KEY, current_records
from condense.store import content_digest

HERE = Path(__file__).resolve().parent
TINY = ["--dataset", "tiny", "--ipc", "2", "--no-progress", "--set", "batch_real=4",
        "--set", "sampler.width=8"]
RUN_TINY = ["run", "dm", *TINY, "--iterations", "2"]
EVAL_TINY = ["--set", "epochs=1", "--set", "num_eval=1", "--no-progress"]
#: runs the CLI in a fresh process with the tiny datasets registered
CLI = ("import sys, conftest; from condense.plugins import pm; "
       "pm.register(conftest._TinyPlugin, name='tiny-datasets'); "
       "from condense.cli import cli; cli(sys.argv[1:], prog_name='condense')")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def error_line(r) -> str:  # type: ignore[no-untyped-def]
    found = [ln for ln in lines(r.stderr) if ln.startswith("Error:")]
    assert len(found) == 1 and "Traceback" not in r.output, r.output
    return found[0]


# ------------------------------------------------------------ 1: outputs checked before the work

def test_unwritable_outputs_are_refused_before_any_work(runner, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(blocker / "x.safetensors")])
    assert r.exit_code == 1
    assert error_line(r) == (f"Error: cannot write {blocker}/x.safetensors: {blocker} is a file, "
                             f"not a folder; choose another place with --out")
    assert not (tmp_path / "a-file.ckpt.safetensors").exists()

    art = tmp_path / "s.safetensors"
    assert runner.invoke(cli, [*RUN_TINY, "--out", str(art)]).exit_code == 0
    r = runner.invoke(cli, ["show", str(art), "--grid", str(blocker / "g.png")])
    assert r.exit_code == 1 and "--grid, or pass --no-grid" in error_line(r)
    r = runner.invoke(cli, ["import", str(art), "-f", "tensors", "-d", "tiny",
                            "-o", str(blocker / "i.safetensors")])
    assert r.exit_code == 1 and "is a file, not a folder; choose another place with --out" in \
        error_line(r)

    # a read-only folder (as the kernel answers it, also for root): eval stops before training
    import condense.api
    import condense.cli._outputs as outputs

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    def no_training(*args, **kwargs):
        raise AssertionError("evaluated although the record could not be written")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(condense.api, "evaluate", no_training)
    r = runner.invoke(cli, ["eval", str(art), *EVAL_TINY])
    assert r.exit_code == 1
    assert error_line(r) == (f"Error: cannot write {tmp_path}/s.eval-accuracy.json: Read-only "
                             f"file system ({tmp_path}); pass --no-save to skip the record "
                             f"(--json prints it)")


def test_eval_prints_the_result_before_writing_it(runner, tmp_path, monkeypatch):
    art = tmp_path / "s.safetensors"
    assert runner.invoke(cli, [*RUN_TINY, "--out", str(art)]).exit_code == 0
    import condense.cli._outputs as outputs

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "atomic_write", disk_full)  # fails after the evaluation
    r = runner.invoke(cli, ["eval", str(art), *EVAL_TINY, "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["metrics"]["accuracy"] >= 0  # the result is not lost
    assert "No space left on device); the result is printed above" in error_line(r)


# ------------------------------------------------------------ 2: Ctrl-C / SIGTERM checkpoint

def test_a_stop_request_checkpoints_the_iteration_reached(tmp_path, tiny_rgb):
    plan = condense.resolve_plan("dm", dataset=tiny_rgb.name, spec=tiny_rgb.spec, ipc=2, seed=3,
                                 overrides={"batch_real": 4, "sampler.width": 8, "iterations": 6,
                                            "checkpoint_every": 100})
    full = condense.loop.run(plan, tiny_rgb)
    ckpt = tmp_path / "run.ckpt.safetensors"
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) == 3

    with pytest.raises(condense.RunInterrupted, match="stopped at iteration 3 of 6") as info:
        condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, stop=stop)
    assert info.value.iteration == 3 and info.value.checkpoint == str(ckpt)
    resumed = condense.loop.run(plan, tiny_rgb, checkpoint=ckpt, resume=True)
    assert torch.equal(full.images, resumed.images)


def _cli_process(args: list[str], **kwargs) -> subprocess.Popen:  # type: ignore[type-arg]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1",
           "CONDENSE_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _wait_for(check, what, proc, timeout=120.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigint_mid_run_checkpoints_and_resumes_bitwise(runner, tmp_path):
    args = [*RUN_TINY[:-1], "60", "--set", "checkpoint_every=5"]
    out = tmp_path / "s.safetensors"
    proc = _cli_process([*args, "--out", str(out)])
    ckpt = tmp_path / "s.ckpt.safetensors"
    _wait_for(ckpt.exists, "the first checkpoint", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    said = lines(err)
    assert "SIGINT: stopping after this iteration" in err
    stopped = next(ln for ln in said if ln.startswith("interrupted (SIGINT): stopped at"))
    done = int(stopped.split("iteration ")[1].split(" ")[0])
    assert f"stopped at iteration {done} of 60; checkpoint written to {ckpt}" in stopped
    assert said[-1] == ("resume with: condense " + " ".join(args)
                        + f" --out {out} --resume")
    assert not out.exists() and checkpoint_iteration(ckpt) == done
    assert not (tmp_path / "s.lock").exists()

    resumed = _cli_process([*args, "--out", str(out), "--resume"])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming from iteration {done} of 60" in err
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses
    try:
        ref = tmp_path / "ref.safetensors"
        assert runner.invoke(cli, [*args, "--out", str(ref)]).exit_code == 0
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(condense.load(out).images, condense.load(ref).images)
    assert condense.read_metadata(out)["iterations"] == 60


# ------------------------------------------------------------ 3: one run per --out

def test_a_second_run_to_a_held_out_stops_or_waits(runner, tmp_path):
    from condense.cli._outputs import hold

    out = tmp_path / "s.safetensors"
    with hold(out):
        r = runner.invoke(cli, [*RUN_TINY, "--out", str(out)])
    assert r.exit_code == 1
    assert error_line(r) == (f"Error: {out} is being written by another run (pid {os.getpid()}, "
                             f"lock {tmp_path}/s.lock); wait for it, pass --wait to start when "
                             f"it ends, or choose another --out")
    assert not out.exists() and not (tmp_path / "s.lock").exists()

    import fcntl

    fd = os.open(tmp_path / "s.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.5, os.close, (fd,)).start()  # the other run ends
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--wait"])
    assert r.exit_code == 0, r.output
    assert "note: waiting for a process that is starting to finish with" in r.stderr
    assert out.exists() and not (tmp_path / "s.lock").exists()


@pytest.mark.slow
def test_two_concurrent_runs_to_one_out(tmp_path):
    out = tmp_path / "s.safetensors"
    args = [*RUN_TINY[:-1], "2000", "--out", str(out)]
    first = _cli_process(args)
    lock = tmp_path / "s.lock"
    _wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid),
              "the lock", first)
    second = _cli_process(args)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1
    assert f"Error: {out} is being written by another run (pid {first.pid}" in err
    first.send_signal(signal.SIGTERM)  # a batch system's stop: checkpoint, then resume later
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "interrupted (SIGTERM): stopped at iteration" in err
    assert (tmp_path / "s.ckpt.safetensors").exists() and not lock.exists()


# ------------------------------------------------------------ 4: no silent overwrite, stale records

def test_an_existing_artifact_needs_force_and_its_records_go(runner, tmp_path, accuracy_evaluator):
    out = tmp_path / "s.safetensors"
    assert runner.invoke(cli, [*RUN_TINY, "--out", str(out)]).exit_code == 0
    r = runner.invoke(cli, ["eval", str(out), *EVAL_TINY])
    assert r.exit_code == 0, r.output
    record = tmp_path / "s.eval-accuracy.json"
    assert json.loads(record.read_text())[DIGEST_KEY] == content_digest(out)
    before = out.read_bytes()
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--seed", "1"])
    assert r.exit_code == 1
    assert error_line(r) == (f"Error: {out} exists; pass --force to replace it (its evaluation "
                             f"records are removed then), or choose another place with --out")
    assert out.read_bytes() == before and record.exists()
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(out), "--seed", "1", "--force"])
    assert r.exit_code == 0, r.output
    assert f"note: removed {record}: it evaluated the set that {out} replaced" in r.stderr
    assert not record.exists() and out.read_bytes() != before


def test_records_of_another_set_are_ignored_by_show(runner, tmp_path, accuracy_evaluator):
    out = tmp_path / "s.safetensors"
    assert runner.invoke(cli, [*RUN_TINY, "--out", str(out)]).exit_code == 0
    assert runner.invoke(cli, ["eval", str(out), *EVAL_TINY, "--into-metadata"]).exit_code == 0
    kept, stale = current_records(out)  # --into-metadata rewrote the file, not the set
    assert [p.name for p, _ in kept] == ["s.eval-accuracy.json"] and stale == []
    r = runner.invoke(cli, ["show", str(out), "--no-grid"])
    assert "record s.eval-accuracy.json" in r.stdout
    other = tmp_path / "other.safetensors"
    assert runner.invoke(cli, [*RUN_TINY, "--seed", "5", "--out", str(other)]).exit_code == 0
    os.replace(other, out)  # replaced by hand: the record now names other images
    r = runner.invoke(cli, ["show", str(out), "--no-grid"])
    assert r.exit_code == 0
    assert (f"note: ignoring {tmp_path}/s.eval-accuracy.json: it was made for an earlier set at "
            f"that path (its {DIGEST_KEY} differs)") in r.stderr
    assert "record s.eval-accuracy.json" not in r.stdout


@pytest.fixture
def accuracy_evaluator() -> None:
    """The accuracy evaluator (condense-evaluators, registered by conftest.py)."""
    pytest.importorskip("condense_evaluators")


# ------------------------------------------------------------ 5: no false provenance on resume

def test_a_checkpoint_past_the_requested_end_is_refused(runner, tmp_path):
    out = tmp_path / "s.safetensors"
    args = [*RUN_TINY[:-1], "4", "--out", str(out), "--set", "checkpoint_every=1",
            "--keep-checkpoint"]
    assert runner.invoke(cli, args).exit_code == 0
    before = out.read_bytes()
    r = runner.invoke(cli, [*args[:-6], "2", *args[-5:], "--resume"])
    assert r.exit_code == 1
    ckpt = tmp_path / "s.ckpt.safetensors"
    assert error_line(r) == (f"Error: {ckpt}: the checkpoint is at iteration 4, past --iterations "
                             f"2; resume with --iterations 4 or more, or remove the checkpoint to "
                             f"start afresh")
    assert out.read_bytes() == before
    r = runner.invoke(cli, [*args[:-6], "5", *args[-5:], "--resume"])
    assert r.exit_code == 0 and "resuming from iteration 4 of 5" in r.stderr
    assert condense.read_metadata(out)["iterations"] == 5


# ------------------------------------------------------------ 11, 14: counts; created folders

@pytest.mark.parametrize("args, needle", [
    (["--iterations", "0"], "--iterations 0 would write dm's initial images (real init, never "
                            "updated) as a dm set; give --iterations 1 or more"),
    (["--iterations", "-3"], "iterations must be >= 0, got -3"),
    (["--set", "checkpoint_every=-1"], "checkpoint_every must be >= 0, got -1"),
    (["--set", "eval_every=-2"], "eval_every must be >= 0, got -2"),
    (["--set", "log_every=0"], "log_every must be >= 1, got 0"),
])
def test_bad_counts_are_refused(runner, tmp_path, args, needle):
    out = tmp_path / "s.safetensors"
    r = runner.invoke(cli, ["run", "dm", *TINY, "--out", str(out), *args])
    assert r.exit_code == 1 and needle in error_line(r)
    assert not out.exists()


def test_selections_run_zero_iterations_and_folders_are_created(runner, tmp_path):
    out = tmp_path / "new" / "deeper" / "r.safetensors"
    r = runner.invoke(cli, ["run", "random", *TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert condense.read_metadata(out)["iterations"] == 0
    assert "missing folders are created" in " ".join(runner.invoke(cli, ["run", "--help"]).stdout
                                                      .split())
