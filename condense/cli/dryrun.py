"""``condense run … --dry-run[=probe]``: print what the run would do (the library's
:func:`condense.dryrun.dry_run` resolves it; nothing is written)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..dryrun import DryRun, dry_run
from ._console import err_console
from ._console import out as print_line

#: iterations ``--dry-run=probe`` runs (the first includes the set-up; the last is timed)
PROBE_ITERATIONS = 2


def show(mode: str, artifact: Callable[[str], Path], **kwargs: Any) -> None:
    """Resolve the run (``kwargs``: :func:`dry_run`'s) and print it; ``artifact(dataset)`` is
    where the real run would write."""
    status = err_console.status("resolving the run" + (" and probing" if mode == "probe" else ""))
    with status:
        result = dry_run(probe=PROBE_ITERATIONS if mode == "probe" else 0, **kwargs)
    for line in render(result, artifact(result.dataset)):
        print_line(line)
    if result.chunk_changes_batchnorm:
        err_console.print(f"[yellow]warning:[/] class_chunk {result.class_chunk} < "
                          f"{result.num_classes} classes with a BatchNorm encoder: statistics "
                          f"come from each chunk, not from all classes; set --class-chunk or use "
                          f"a device with more memory")


def mb(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 2**20:,.0f} MB"


def render(r: DryRun, artifact: Path) -> list[str]:
    c, h, w = r.image_shape
    plan = r.plan
    lines = [
        "dry run: nothing distilled, nothing written",
        f"method       {r.method}" + (f" (preset {r.preset})" if r.preset else ""),
        f"dataset      {r.dataset}: {r.num_classes} classes, {c}×{h}×{w}, "
        f"{r.train_images:,} training images (loaded in {r.load_seconds:.1f} s)",
        f"run          IPC {r.ipc}, {r.iterations} iterations, seed {r.seed}, device {r.device}",
        f"sampler      {r.sampler}: " + _kv(plan["sampler_config"]),
        "method cfg   " + (_kv(plan["method_config"]) or "(none)"),
        "loop         " + _kv(plan["loop"]),
    ]
    if r.needs_encoder:
        how = "automatic rule" if r.chunk_auto else "class_chunk setting"
        passes = -(-r.num_classes // r.class_chunk)
        lines.append(f"class chunk  {r.class_chunk} of {r.num_classes} classes per forward pass "
                     f"({passes} pass{'es' if passes > 1 else ''}; {how})")
        bn = ("yes: BatchNorm statistics come from each chunk, not from all classes "
              "(docs/distributed.md)" if r.chunk_changes_batchnorm else
              "no" + ("" if r.batchnorm else " (no BatchNorm in the encoder)"))
        lines.append(f"changes BN   {bn}")
        lines.append(f"memory/iter  ~{mb(r.iteration_bytes)}: activations {mb(r.activation_bytes)}"
                     f" ({mb(r.class_bytes)} per class × {r.class_chunk}), data "
                     f"{mb(r.data_bytes)}, synthetic set {mb(r.synthetic_bytes)}; available "
                     f"{mb(r.available_bytes) if r.available_bytes else 'unknown'}")
    else:
        lines.append("class chunk  not used (the method has no shared encoder pass)")
        lines.append(f"memory       data {mb(r.data_bytes)}, synthetic set "
                     f"{mb(r.synthetic_bytes)} (the method's own networks not estimated)")
    lines.append(f"artifact     {artifact}")
    p = r.probe
    if p is not None:
        if p.seconds_per_iteration is None:
            lines.append(f"probe        the whole run took {p.estimated_seconds:.2f} s "
                         f"(no iterations)")
        else:
            times = ", ".join(f"{s:.3g}" for s in p.seconds)
            lines.append(f"probe        {p.iterations} iteration(s): {times} s; "
                         f"~{p.seconds_per_iteration:.3g} s/iteration → "
                         f"~{_duration(p.estimated_seconds)} for {r.iterations} iterations")
        if p.peak_bytes is not None:
            lines.append(f"peak memory  {mb(p.peak_bytes)} allocated (probe)")
    return lines


def _kv(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 120:
        return f"{seconds:.0f} s"
    h, rem = divmod(s, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60} min"
