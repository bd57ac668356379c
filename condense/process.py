"""Process-wide tuning, applied only on request: the CLI applies it; library calls never do.

:func:`tune_allocator` keeps glibc from returning freed tensor memory to the OS after every
iteration. Every distillation/evaluation step allocates and frees the same large activation
buffers; with glibc's defaults, buffers above the mmap threshold are mmap'ed and unmapped each
time, so each step pays for fresh page faults (measured: over half of the CPU time was system
time on 2 cores). Raising the mmap/trim thresholds keeps them in the heap for reuse. It changes
the whole process (there is no way to scope malloc settings), so a notebook opts in by calling
``condense.tune_allocator()`` once; ``condense run`` / ``condense eval`` call it at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> bool:
    """Apply once per process (a no-op off glibc); return whether glibc accepted the settings."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # the largest glibc allows on 64-bit
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    ok &= mallopt(_M_TOP_PAD, 256 * 1024 * 1024)
    return bool(ok)
