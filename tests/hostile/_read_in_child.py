"""Read one dump file with ``read_source`` and print what came out (run in a child process).

Usage: ``python -m tests.hostile._read_in_child JOBS_JSON`` with a list of ``[path, name, config]``;
``path`` may be ``synthetic:N`` for a generated stream (a header then one line of ``N`` bytes),
so that a huge line never exists on disk.  Prints one JSON object: per job, counts by outcome
and the first items read; and the process's peak RSS in KiB (one read at a time, so the peak
is that of the worst read).
"""

from __future__ import annotations

import io
import json
import resource
import sys

from newsflow.config import ReadConfig
from newsflow.io.sources import ReadFailure, read_source

__all__ = ["LineStream", "main"]


class LineStream(io.RawIOBase):
    """A header then one line of ``n`` bytes of ``x``, produced as it is read (never held whole)."""

    def __init__(self, n: int):
        self._head = b"2024-07-05 10:00:00\n"
        self._left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # noqa: ANN001 - a writable buffer
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            return n
        n = min(len(b), self._left)
        b[:n] = b"x" * n
        self._left -= n
        return n


def _opener(path: str):  # noqa: ANN202 - a function returning a raw binary stream
    if path.startswith("synthetic:"):
        size = int(path.split(":", 1)[1])

        def opener():  # noqa: ANN202 - a raw binary stream
            return io.BufferedReader(LineStream(size), buffer_size=1 << 20)

        return opener

    def opener():  # noqa: ANN202 - a raw binary stream
        return open(path, "rb")  # noqa: SIM115 - closed by read_source

    return opener


def _run(path: str, name: str, cfg: ReadConfig) -> dict:
    items = []
    for it in read_source(name, _opener(path), cfg):
        if isinstance(it, ReadFailure):
            items.append({"reason": it.reason.value, "source_path": it.source_path, "doc_index": it.doc_index})
        else:
            items.append(
                {
                    "reason": None,
                    "source_path": it.source_path,
                    "doc_index": it.chunk.doc_index,
                    "size": it.chunk.size,
                    "kept_bytes": len(it.chunk.data),
                }
            )
    counts: dict[str, int] = {}
    for it in items:
        counts[it["reason"] or "doc"] = counts.get(it["reason"] or "doc", 0) + 1
    return {"counts": counts, "items": items[:50]}


def main(argv: list[str]) -> int:
    jobs = json.loads(argv[0])
    results = [_run(path, name, ReadConfig(**cfg)) for path, name, cfg in jobs]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"results": results, "peak_rss_kib": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
