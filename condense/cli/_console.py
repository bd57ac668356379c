"""Consoles and progress rendering shared by the commands."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..interfaces import ProgressEvent

err_console = Console(stderr=True)


def out(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def out_json(value: Any) -> None:
    out(json.dumps(value, indent=2, sort_keys=False, default=str))


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Any]:
    """Yield a ``ProgressFn`` that renders each task as a rich bar on stderr."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not enabled,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    starts: dict[str, tuple[float, int]] = {}

    def report(event: ProgressEvent) -> None:
        if event.task not in tasks:
            tasks[event.task] = progress.add_task(event.task, total=event.total, rate="", info="")
            starts[event.task] = (time.perf_counter(), event.completed)
        t0, c0 = starts[event.task]
        elapsed = time.perf_counter() - t0
        done = event.completed - c0
        rate = f"{done / elapsed:.2f} it/s" if elapsed > 0 and done > 0 else ""
        info = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in event.info.items())
        progress.update(tasks[event.task], completed=event.completed, total=event.total,
                        rate=rate, info=info)

    with progress:
        yield report
