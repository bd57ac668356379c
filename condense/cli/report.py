"""``condense report SET...``: plots of a set's evaluations (options: ``commands.py``).

Collects, per artifact, the accuracy results ``condense eval`` wrote beside it
(``<stem>.eval-*.json``, single results and ``--model a,b`` tables), those recorded in its
metadata (``evaluations``) and its periodic evaluations (``eval_history``, monitoring only), and
draws them with :mod:`._report_plot`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..api import output_next_to
from ..errors import ConfigError
from ..hub import pull
from ..records import content_digest, is_stale, record_paths, stale_note
from ..store import read_metadata
from ._console import err_console, out, out_json
from ._report_plot import render_accuracy_bars, render_iterations
from .hub import hub_warnings


def _payloads(value: Any) -> Iterator[Mapping[str, Any]]:
    """The evaluation results in a saved JSON value (a result or a ``--model`` table)."""
    if isinstance(value, Mapping):
        if isinstance(value.get("results"), list):
            for item in value["results"]:
                yield from _payloads(item)
        elif isinstance(value.get("metrics"), Mapping) and "protocol" in value:
            yield value


def accuracy_rows(meta: Mapping[str, Any], local: str) -> list[dict[str, Any]]:
    """One row per (model, protocol, seed): the set's and its baseline's mean ± std; results
    beside the artifact replace those in its metadata."""
    found: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for payload in _payloads({"results": list((meta.get("evaluations") or {}).values())}):
        found[_row_key(payload)] = payload
    files = record_paths(local)
    digest = content_digest(local) if files else ""
    for file in files:
        try:
            value = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(value, Mapping) or is_stale(value, digest):
            if isinstance(value, Mapping):  # a record of an earlier set at this path
                err_console.print(f"note: {stale_note(file)}", highlight=False, markup=False)
            continue
        for payload in _payloads(value):
            found[_row_key(payload)] = payload
    rows = []
    for payload in found.values():
        if payload.get("evaluator") != "accuracy":
            continue
        m, settings = payload["metrics"], payload.get("settings") or {}
        rows.append({"label": f"{settings.get('model')}\n{payload['protocol']}",
                     "model": settings.get("model"), "protocol": payload["protocol"],
                     "seed": settings.get("seed"), "accuracy": m.get("accuracy"),
                     "std": m.get("std"), "baseline": m.get("baseline"),
                     "baseline_std": m.get("baseline_std"), "difference": m.get("difference")})
    return sorted(rows, key=lambda r: (str(r["protocol"]), str(r["model"])))


def _row_key(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    settings = payload.get("settings") or {}
    return (payload.get("evaluator"), payload.get("protocol"), settings.get("model"),
            settings.get("seed"))


def iteration_points(meta: Mapping[str, Any]) -> tuple[list[tuple[float, float, float | None]],
                                                       tuple[float, float | None] | None]:
    """The periodic evaluations' ``(iteration, accuracy, std)`` and the last baseline seen."""
    points: list[tuple[float, float, float | None]] = []
    baseline = None
    for entry in meta.get("eval_history") or []:
        m = entry.get("metrics") or {}
        if isinstance(m.get("accuracy"), (int, float)):
            std = m.get("std") if isinstance(m.get("std"), (int, float)) else None
            points.append((float(entry["iteration"]), float(m["accuracy"]), std))
        if isinstance(m.get("baseline"), (int, float)):
            baseline = (float(m["baseline"]), m.get("baseline_std"))
    return points, baseline


def report(artifacts: tuple[str, ...], out_dir: str | None, as_json: bool) -> None:
    """Plot each ARTIFACT's evaluations (accuracy vs random baseline per model; vs iteration)."""
    summary: dict[str, Any] = {}
    written = 0
    for artifact in artifacts:
        local = artifact
        if artifact.startswith("hf://"):
            with hub_warnings():
                local = str(pull(artifact))
        meta = read_metadata(local)
        stem = output_next_to(artifact, "")
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            stem = Path(out_dir) / stem.name
        title = " ".join(str(meta[k]) if k != "ipc" else f"IPC {meta[k]}"
                         for k in ("method", "dataset", "ipc") if k in meta)
        rows = accuracy_rows(meta, local)
        points, baseline = iteration_points(meta)
        entry: dict[str, Any] = {"accuracy": rows, "iterations": points}
        if rows:
            path = Path(f"{stem}.accuracy.png")
            render_accuracy_bars(rows, f"{title}: test accuracy vs random real images").save(
                path, format="PNG")
            entry["accuracy_png"] = str(path)
            err_console.print(f"accuracy bars written to {path}")
            written += 1
        if points:
            path = Path(f"{stem}.iterations.png")
            render_iterations(points, baseline, f"{title}: periodic evaluations (monitoring)").save(
                path, format="PNG")
            entry["iterations_png"] = str(path)
            err_console.print(f"accuracy vs iteration written to {path}")
            written += 1
        if not rows and not points:
            err_console.print(f"{artifact}: no accuracy results found; run `condense eval "
                              f"{artifact}` first", highlight=False, markup=False)
        summary[artifact] = entry
    if not written:
        raise ConfigError("nothing to plot: no accuracy results beside or inside the artifacts; "
                          "run `condense eval ARTIFACT` first")
    if as_json:
        out_json(summary)
        return
    for entry in summary.values():
        for key in ("accuracy_png", "iterations_png"):
            if key in entry:
                out(entry[key])


__all__ = ["accuracy_rows", "iteration_points", "report"]
