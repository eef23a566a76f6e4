"""Handing memory a worker has freed back to the operating system.

CPython frees large objects (a document, a buffer of encoded elements) with the C library's ``free``. glibc's
allocator keeps most freed memory inside the process for reuse: it returns only the top of its heap, and raises
its mmap threshold after the first large free, so later large blocks come from the heap too. A Beam worker that
runs stage after stage (the in-process runner runs every stage of a pipeline in one process) then keeps the memory
of every stage it has finished, and its resident size climbs stage by stage although Python holds far less.

:func:`start_releasing` starts one daemon thread per process that, every ``interval`` seconds, asks glibc how
much freed memory it holds (``mallinfo2``) and, when that has grown by ``min_free`` bytes, returns it
(``malloc_trim(0)``, which also gives back free pages inside the heap). docs/running.md has what it saves.
Where the C library is not glibc (macOS, musl) nothing is started; ``NEWSFLOW_RELEASE_MEMORY=0`` in a worker's
environment turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
import time

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_MIN_FREE", "freed_bytes", "release", "start_releasing"]

DEFAULT_INTERVAL = 0.5
"""Seconds between two looks at the freed memory."""
DEFAULT_MIN_FREE = 32 << 20
"""Growth of the freed bytes the allocator holds that makes the thread return them (less is not worth a trim)."""

_thread: threading.Thread | None = None  # the releasing thread (None: not started, or switched off)
_thread_pid = 0  # the process that decided on it: a forked child, where the parent's thread does not run, decides anew
_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    """In a forked child the lock may have been held by another thread of the parent at the fork."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: ten ``size_t`` fields."""

    _fields_ = [  # noqa: RUF012 (the ctypes layout, read by ctypes, never changed)
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc with ``mallinfo2`` (2.33+) and ``malloc_trim``; None on another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        info, trim = libc.mallinfo2, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    info.restype, info.argtypes = _MallInfo2, []
    trim.restype, trim.argtypes = ctypes.c_int, [ctypes.c_size_t]
    return libc


def freed_bytes() -> int | None:
    """Bytes freed by the program and still held by the allocator (None where that cannot be asked)."""
    libc = _glibc()
    if libc is None:
        return None
    return int(libc.mallinfo2().fordblks)  # every free block, the fast bins' included


def release() -> bool:
    """Return the allocator's freed memory to the operating system now; False where that cannot be done."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def _enabled() -> bool:
    return os.environ.get("NEWSFLOW_RELEASE_MEMORY", "1").strip().lower() not in ("0", "false", "no", "off")


def start_releasing(interval: float = DEFAULT_INTERVAL, min_free: int = DEFAULT_MIN_FREE) -> bool:
    """Start this process's releasing thread (once per process; later calls do nothing). True when it runs.

    DoFns that hold or pass on large data call this from ``setup``, so it runs in every worker process that
    does such work, on any runner.
    """
    global _thread, _thread_pid
    with _lock:
        if _thread_pid != os.getpid():
            _thread_pid, _thread = os.getpid(), None
            if _enabled() and _glibc() is not None:
                _thread = threading.Thread(
                    target=_loop, args=(interval, min_free), name="newsflow-release-memory", daemon=True
                )
                _thread.start()
        return _thread is not None and _thread.is_alive()


def _loop(interval: float, min_free: int) -> None:
    """Trim whenever the freed memory has grown by ``min_free`` since the last trim (or its lowest since).

    A trim leaves glibc's count of freed bytes as it was (the pages are returned, the free blocks stay), so the
    trigger is growth of that count, not its level: memory freed once is returned once.
    """
    base = freed_bytes() or 0
    while True:
        time.sleep(interval)
        held = freed_bytes() or 0
        if held - base >= min_free:
            release()
            base = held
        else:
            base = min(base, held)
