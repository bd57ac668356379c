"""Consoles and progress rendering shared by the commands.

On a terminal, progress is drawn as rich bars on stderr. Where stderr is not a terminal (a SLURM
log, ``nohup``, CI) rich would draw nothing until the end, so plain lines are printed instead
(:class:`ProgressLines`).
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ..interfaces import ProgressEvent

err_console = Console(stderr=True)


def out(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def out_json(value: Any) -> None:
    out(json.dumps(value, indent=2, sort_keys=False, default=str))


class ProgressLines:
    """A ``ProgressFn`` that prints plain lines, for logs:
    ``iteration 120/20000 loss 12.34 2.1 it/s ETA 2:37:00``.

    A task's line is printed when its count reaches a multiple of ``every[task]`` (default: a
    twentieth of the total) but at most one line per ``min_gap`` seconds, at least every
    ``interval`` seconds while the task advances, for its first step (so a log shows when a run
    whose steps take minutes got going) and when it completes.
    """

    LABELS = {"distill": "iteration"}

    def __init__(self, every: Mapping[str, int] | None = None, *, interval: float = 30.0,
                 min_gap: float = 1.0, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every = dict(every or {})
        self.interval = interval
        self.min_gap = min_gap
        self.write = write or self._print
        self.clock = clock
        #: task -> [first time, first count, time of the last line, count of the last line]
        self.state: dict[str, list[float]] = {}

    @staticmethod
    def _print(line: str) -> None:
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)

    def __call__(self, event: ProgressEvent) -> None:
        now = self.clock()
        state = self.state.setdefault(event.task, [now, event.completed, now, -1])
        t0, c0, last_t, last_c = state
        done, total = event.completed, event.total
        if done == last_c:
            return
        every = self.every.get(event.task) or max(1, (total or 0) // 20)
        finished = bool(total) and done >= total
        due = (done % every == 0 and now - last_t >= self.min_gap) or now - last_t >= self.interval
        first = last_c < 0  # the first step of a task: it started, and after how long
        if not (finished or due or first):
            return
        state[2], state[3] = now, done
        parts = [f"{self.LABELS.get(event.task, event.task)} {done}"
                 + (f"/{total}" if total else "")]
        parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                  for k, v in event.info.items()]
        elapsed = now - t0
        if elapsed > 0 and done > c0:
            rate = (done - c0) / elapsed
            parts.append(f"{rate:.3g} it/s")
            if total and not finished:
                eta = datetime.timedelta(seconds=round((total - done) / rate))
                parts.append(f"ETA {eta}")
        self.write(" ".join(parts))


@contextmanager
def progress_bars(enabled: bool = True, *,
                  every: Mapping[str, int] | None = None) -> Iterator[Any]:
    """Yield a ``ProgressFn``: rich bars on a terminal, else plain lines (:class:`ProgressLines`,
    ``every`` the line interval of a task, e.g. ``{"distill": log_every}``); nothing when not
    ``enabled``."""
    if enabled and not err_console.is_terminal:
        yield ProgressLines(every)
        return
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
