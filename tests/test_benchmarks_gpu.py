"""benchmarks/gpu.py — every GPU path's check — runs on the CPU so it cannot rot without a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.mark.slow
def test_gpu_script_quick_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {k: v for k, v in os.environ.items() if k != "CONDENSE_DISABLE_PLUGIN_AUTOLOAD"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--json",
                           str(out)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=900)
    # 1 = a check measured outside its tolerance (a FAIL row); errors are rows too, never aborts
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    sections = {r["section"] for r in rows}
    assert sections == {"env", "methods", "evaluator", "precision", "torchrun", "speed",
                        "evalspeed", "memory"}
    errors = [f"{r['section']}/{r['item']}: {r['status']}" for r in rows
              if r["status"].startswith("error")]
    assert not errors, errors
    by_item = {(r["section"], r["item"]): r for r in rows}
    for method in ("datadam", "dm", "dc", "mtt"):  # same device: bitwise
        row = by_item[("methods", f"{method} 2 it, cpu vs cpu")]
        assert row["status"] == "ok" and row["data"]["rel_err"] == 0.0
    speeds = [r["data"]["sec_per_iter"] for r in rows if r["section"] == "speed"]
    assert len(speeds) == 6 and all(s > 0 for s in speeds)
    assert any(r["item"].startswith("auto rule") for r in rows if r["section"] == "memory")
    assert "section" in proc.stdout and "total" in proc.stdout  # the table


@pytest.mark.slow  # imports torch in a subprocess
def test_gpu_script_refuses_unknown_sections() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sections", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown section(s) nope" in proc.stderr
