"""Output locations of the commands: checked before the work starts, and held by one run at a time.

:func:`check_writable` answers, before hours of training, whether a file can be created at a
path (its missing folders are created when it is written); :func:`hold` takes an exclusive
``flock`` on ``<stem>.lock`` beside an output for a run's lifetime. The kernel drops the lock when
the process ends, crash or ``kill -9`` included, so a stale lock file never blocks a later run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..fileio import atomic_write

try:  # POSIX; elsewhere outputs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def check_writable(path: str | os.PathLike[str], fix: str) -> None:
    """Raise :class:`OutputError` (naming ``path`` and ``fix``, the option that changes it) unless
    a file can be created at ``path``: its nearest existing folder must accept new files."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; {fix}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is a file, not a folder; {fix}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".condense-probe-", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc} ({folder}); "
                          f"{fix}") from None
    os.close(fd)
    os.unlink(probe)


def after_result(path: str | os.PathLike[str], write: Callable[[], object]) -> None:
    """Run ``write`` (of ``path``) after the result was printed: a failure is one line that says
    the result is above, not a traceback."""
    try:
        write()
    except OSError as exc:
        raise OutputError(f"could not write {path} ({exc.strerror or exc}); the result is "
                          f"printed above") from None


def write_record(path: Path, payload: dict[str, Any]) -> None:
    """Write a JSON record atomically, after the result was printed (:func:`after_result`)."""
    text = json.dumps(payload, indent=2) + "\n"
    after_result(path, lambda: atomic_write(path, lambda tmp: Path(tmp).write_text(text)))


def lock_path(output: Path) -> Path:
    """``<stem>.lock`` beside ``output``."""
    return output.with_name(output.stem + ".lock")


@contextlib.contextmanager
def hold(output: Path, *, wait: bool = False,
         waiting: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold ``output`` (and what is written beside it) for the ``with`` block.

    Another process holding it raises :class:`OutputError` naming its pid, or with ``wait``
    blocks until it is done (``waiting`` gets one line first). The lock file holds the pid and is
    removed on exit."""
    path = lock_path(output)
    if fcntl is None:  # pragma: no cover - Windows
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                if not wait:
                    raise OutputError(
                        f"{output} is being written by another run ({holder}, lock {path}); "
                        f"wait for it, pass --wait to start when it ends, or choose another "
                        f"--out") from None
                if waiting is not None:
                    waiting(f"waiting for {holder} to finish with {output} (lock {path})")
                fcntl.flock(fd, fcntl.LOCK_EX)
            # the holder we waited for removed the file: lock the one now at the path instead
            if not path.exists() or os.stat(path).st_ino != os.fstat(fd).st_ino:
                os.close(fd)
                continue
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        break
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return f"pid {text}" if text.isdigit() else "a process that is starting"


__all__ = ["after_result", "check_writable", "hold", "lock_path", "write_record"]
