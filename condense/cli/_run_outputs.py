"""What ``condense run`` checks and holds around the distillation, before any work starts.

:func:`claim` (a context manager) refuses what would be wasted or false: an unwritable
``--out`` folder, an existing artifact without ``--force``, another run on the same ``--out``
(held by a lock for the run's lifetime), a checkpoint past the requested end, ``--iterations 0``
for a method that is not a selection. It says ``resuming from iteration N of M``.
:func:`write_artifact` saves the set and removes the evaluation records of the set it replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.markup import escape

from ..errors import ConfigError, OutputError
from ..loop import Plan
from ..loop.checkpoint import check_resume_point, checkpoint_iteration
from ..records import record_paths
from ..store import save
from ..synset import SynSet
from ._console import err_console
from ._outputs import check_writable, hold

FIX = "choose another place with --out"


def _note(text: str) -> None:
    err_console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


def refuse_empty_run(plan: Plan) -> None:
    """``--iterations 0`` writes the initialisation: right for selections (``random``,
    ``herding``: 0 iterations by default), false for a method that learns its images."""
    method = type(plan.method)
    if plan.loop.iterations == 0 and method.loop_defaults.get("iterations") != 0:
        raise ConfigError(
            f"--iterations 0 would write {method.name}'s initial images ({plan.loop.init} "
            f"init, never updated) as a {method.name} set; give --iterations 1 or more (real "
            f"images picked at random: `condense run random`)")


@contextlib.contextmanager
def claim(path: Path, ckpt: Path, plan: Plan, *, resume: bool, force: bool,
          wait: bool) -> Iterator[bool]:
    """Check and hold ``path`` for the ``with`` block; yields whether an artifact is there (the
    set that :func:`write_artifact` then replaces)."""
    refuse_empty_run(plan)
    check_writable(path, FIX)
    with hold(path, wait=wait, waiting=_note):
        exists = path.exists()
        if exists and not resume and not force:
            raise OutputError(f"{path} exists; pass --force to replace it (its evaluation "
                              f"records are removed then), or {FIX}")
        if resume and ckpt.exists():
            done = checkpoint_iteration(ckpt)
            check_resume_point(ckpt, done, plan.loop.iterations)
            err_console.print(f"resuming from iteration {done} of {plan.loop.iterations}",
                              highlight=False)
        if not resume:
            log = path.with_name(path.stem + ".eval.jsonl")
            if log.exists():
                log.unlink()
                _note(f"removed {log} of an earlier run (a fresh run starts a fresh log)")
        yield exists


def write_artifact(synset: SynSet, path: Path, ckpt: Path, *, replaces: bool) -> None:
    """Save the set; a failed write names the checkpoint that still holds it. When it replaced
    a set, that set's evaluation records are removed (they describe other images)."""
    try:
        save(synset, path)
    except OSError as exc:
        raise OutputError(f"could not write {path} ({exc.strerror or exc}); the result is in "
                          f"{ckpt}: fix the cause and rerun the same command with --resume "
                          f"--keep-checkpoint") from None
    if replaces:
        for record in record_paths(path):
            record.unlink(missing_ok=True)
            _note(f"removed {record}: it evaluated the set that {path} replaced")


__all__ = ["claim", "refuse_empty_run", "write_artifact"]
