"""newsflow.memory: freed memory goes back to the operating system (checked in fresh processes, on glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from newsflow import memory

pytestmark = pytest.mark.skipif(memory.freed_bytes() is None, reason="the C library is not glibc")

# Frees ~300 MB of 100 kB blocks (under glibc's mmap threshold, so they come from the heap) kept apart by small
# live objects, then reports resident MB before the free, right after it, and after `then` ran.
_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from newsflow import memory

    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20

    started = [memory.start_releasing(interval=0.1, min_free=16 << 20) for _ in range(3)] if {start} else []
    blocks, keep = [], []
    for i in range(3000):
        blocks.append(bytes(100_000))
        keep.append(bytes(1024))  # over pymalloc's 512 bytes: from the same heap, between the blocks
    before = rss()
    del blocks
    freed = rss()
    {then}
    import threading
    threads = sum(t.name == "newsflow-release-memory" for t in threading.enumerate())
    print(json.dumps({{"started": started, "before": before, "freed": freed, "after": rss(), "threads": threads}}))
    """
)


def _run(start: bool, then: str, env: dict[str, str] | None = None) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(start=start, then=then)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(out.stdout)


def test_release_returns_freed_memory():
    got = _run(False, "memory.release()")
    assert got["freed"] >= got["before"] - 50  # glibc kept the freed blocks
    assert got["after"] <= got["freed"] - 120  # ... and handed at least 120 of its ~300 MB back


def test_the_thread_returns_freed_memory_without_being_asked():
    got = _run(True, "time.sleep(1.0)")
    assert got["started"] == [True, True, True]
    assert got["threads"] == 1  # later calls start no second thread
    assert got["after"] <= got["freed"] - 120  # at least 120 of the ~300 MB freed


def test_switched_off_by_the_environment():
    got = _run(True, "time.sleep(1.0)", {"NEWSFLOW_RELEASE_MEMORY": "0"})
    assert got["started"] == [False, False, False]
    assert got["threads"] == 0
    assert got["after"] >= got["freed"] - 50  # nothing handed back


def test_a_forked_child_starts_its_own_thread():
    script = textwrap.dedent(
        """
        import json, os, threading
        from newsflow import memory

        def running():
            return sum(t.name == "newsflow-release-memory" for t in threading.enumerate())

        memory.start_releasing()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            before = running()  # the parent's thread does not exist in the child
            started = memory.start_releasing()
            os.write(w, json.dumps([before, started, running()]).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        print(os.read(r, 1000).decode())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [0, True, 1]
