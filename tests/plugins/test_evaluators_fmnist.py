"""condense-evaluators on real Fashion-MNIST through the CLI (short, but the real pipeline)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from condense.cli import cli

pytestmark = pytest.mark.slow  # trains networks on real Fashion-MNIST through the CLI


def test_accuracy_eval_through_the_cli(fmnist_available, tmp_path):
    runner = CliRunner()
    out = tmp_path / "random.safetensors"
    r = runner.invoke(cli, ["run", "random", "--dataset", "fashion-mnist", "--ipc", "10",
                            "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["eval", str(out), "--evaluator", "accuracy", "--set", "num_eval=2",
                            "--set", "epochs=20", "--set", "batch_size=32",
                            "--set", "test_limit=2000", "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    saved = json.loads((tmp_path / "random.eval-accuracy.json").read_text())
    assert saved == payload
    assert payload["evaluator"] == "accuracy" and payload["protocol"] == "custom"
    s = payload["settings"]
    assert (s["model"], s["epochs"], s["batch_size"], s["num_eval"]) == ("convnet", 20, 32, 2)
    assert s["dsa"] == "color_crop_cutout_flip_scale_rotate"  # the dataset's DSA strategy
    assert payload["details"]["test_images"] == 2000 and payload["details"]["train_images"] == 100
    accs = payload["per_run"]
    assert len(accs) == 2 and accs[0] != accs[1]
    # 100 random real images, 21 short epochs: well above chance (10 %), below the full protocol
    assert all(55.0 < a < 85.0 for a in accs), accs
    assert abs(payload["metrics"]["accuracy"] - sum(accs) / 2) < 1e-9
