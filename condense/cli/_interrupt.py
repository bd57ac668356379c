"""Ctrl-C and SIGTERM during ``condense run``: finish the iteration, checkpoint, say how to resume.

:func:`stop_on_signals` installs handlers for SIGINT and SIGTERM for the ``with`` block: the first
signal only sets a flag, which :func:`condense.loop.run` reads after each iteration (it then writes
a checkpoint there and raises :class:`condense.RunInterrupted`); a second signal stops at once
(``KeyboardInterrupt``: the iterations since the last checkpoint are lost). The block turns
``RunInterrupted`` into two lines — where the checkpoint is and the command that resumes it —
and exit code 130. The previous handlers are restored on exit.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator, Sequence

import click
from rich.markup import escape

from ..errors import RunInterrupted
from ._console import err_console

#: ``ctx.meta`` key under which the group keeps the command's own arguments
ARGS_KEY = "condense.args"


class StopRequest:
    """Answers whether a stop was asked for (called by the loop after each iteration)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self) -> bool:
        return self.signal is not None


def resume_command(args: Sequence[str] | None) -> str:
    """The command line that resumes this run: its own arguments plus ``--resume``."""
    args = list(args or ())
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["condense", *args])


@contextlib.contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[StopRequest]:
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.signal is not None:
            raise KeyboardInterrupt
        request.signal = signal.Signals(signum).name
        err_console.print(f"[yellow]{request.signal}:[/] stopping after this iteration to write "
                          f"a checkpoint (again to stop at once, losing the iterations since the "
                          f"last checkpoint)", highlight=False, soft_wrap=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    except RunInterrupted as exc:
        ctx = click.get_current_context(silent=True)
        err_console.print(f"[yellow]interrupted ({request.signal or 'stop'}):[/] "
                          f"{escape(str(exc))}", highlight=False, soft_wrap=True)
        if exc.checkpoint is not None:
            command = resume_command(ctx.meta.get(ARGS_KEY) if ctx else None)
            err_console.print(f"resume with: {escape(command)}", highlight=False,
                              soft_wrap=True)
        raise click.exceptions.Exit(130) from None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


__all__ = ["ARGS_KEY", "StopRequest", "resume_command", "stop_on_signals"]
