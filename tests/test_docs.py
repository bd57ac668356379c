"""Docs cannot drift: the CLI reference is regenerated and compared; the example plugin runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import condense

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cli_reference_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_hook_is_documented():
    from condense import hookspecs

    text = (ROOT / "docs" / "plugins.md").read_text()
    for name in dir(hookspecs):
        if name.startswith("register_"):
            assert f"`{name}" in text, f"hook {name} missing from docs/plugins.md"


def test_example_plugin_loss():
    sys.path.insert(0, str(ROOT / "docs" / "examples" / "condense-mmd"))
    try:
        from condense_mmd import mmd
    finally:
        sys.path.pop(0)
    x = torch.randn(2, 5, 3)
    # zero at equality, up to float32 rounding of kernel means that are at most 1 each
    assert mmd(x, x, 1.0).abs().item() < 1e-5
    assert mmd(x, x + 3, 1.0).item() > 0.1


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("condense_mmd") is None,
                    reason="pip install ./docs/examples/condense-mmd (CI does)")
def test_installed_example_plugin_runs_end_to_end(tmp_path, fmnist_available):
    env = {k: v for k, v in os.environ.items() if k != "CONDENSE_DISABLE_PLUGIN_AUTOLOAD"}
    cmd = [sys.executable, "-m", "condense"]
    listing = subprocess.run([*cmd, "list", "methods", "--json"], capture_output=True, text=True,
                             env=env)
    assert listing.returncode == 0, listing.stderr
    assert "dm-mmd" in {m["name"] for m in json.loads(listing.stdout)}
    out = tmp_path / "mmd.safetensors"
    run = subprocess.run([*cmd, "run", "dm-mmd", "--dataset", "fashion-mnist", "--ipc", "1",
                          "--iterations", "2", "--set", "bandwidth=0.5", "--set", "batch_real=16",
                          "--no-progress", "--out", str(out)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out) and out.exists()


def test_gradient_matching_recipe_in_the_plugin_guide_runs(tiny_rgb):
    """The recipe in docs/plugins.md is real code: it runs against the public contract."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text[text.index("#### Recipe: gradient matching"):]
    code = section[section.index("```python") + len("```python"): section.index("```\n", 10)]
    namespace: dict = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)  # noqa: S102 - our own docs
    method = namespace["GradientMatching"]
    plan = condense.resolve_plan(method, dataset=tiny_rgb.name, spec=tiny_rgb.spec, ipc=2, seed=0,
                                 overrides={"iterations": 2, "batch_real": 4, "outer_loop": 2,
                                            "inner_loop": 2, "sampler.width": 8})
    start = condense.loop.run(plan.with_loop(iterations=0), tiny_rgb).images
    out = condense.loop.run(plan, tiny_rgb)
    assert torch.isfinite(out.images).all() and not torch.equal(out.images, start)
