"""Stale temporary folders on an object store (no folders, only keys), through Beam's FileSystems."""

from __future__ import annotations

import io
import logging
import time

import pytest
from apache_beam.io.filesystem import BeamIOError, FileMetadata, FileSystem

from newsflow.io.write_tables import list_tmp_folders, remove_stale_tmp

_STORE: dict[str, tuple[bytes, float]] = {}  # key -> (bytes, last update)


class _Writer(io.BytesIO):
    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def close(self) -> None:
        _STORE[self._path] = (self.getvalue(), time.time())
        super().close()


class MemFileSystem(FileSystem):
    """A bucket in memory: keys and prefixes, like gs://."""

    @classmethod
    def scheme(cls) -> str:
        return "memtest"

    def join(self, base, *paths):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, prefix):
        for key, (data, when) in sorted(_STORE.items()):
            if key.startswith(prefix):
                yield FileMetadata(key, len(data), when)

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        return _Writer(path)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        return io.BytesIO(_STORE[path][0])

    def copy(self, sources, destinations):
        for s, d in zip(sources, destinations, strict=True):
            _STORE[d] = _STORE[s]

    def rename(self, sources, destinations):
        for s, d in zip(sources, destinations, strict=True):
            _STORE[d] = _STORE.pop(s)

    def exists(self, path):
        return path in _STORE

    def size(self, path):
        return len(_STORE[path][0])

    def last_updated(self, path):
        return _STORE[path][1]

    def checksum(self, path):
        return str(hash(_STORE[path][0]))

    def metadata(self, path):
        return FileMetadata(path, len(_STORE[path][0]), _STORE[path][1])

    def delete(self, paths):
        missing = {p: OSError("not found") for p in paths if p not in _STORE}
        for p in paths:
            _STORE.pop(p, None)
        if missing:
            raise BeamIOError("delete failed", missing)


@pytest.fixture()
def bucket():
    _STORE.clear()
    now = time.time()
    for key, age in {
        "memtest://b/out/docs/lang=fr/date=2024-07-04/part-00000-of-00001.parquet": 9 * 3600,
        "memtest://b/out/.newsflow-tmp-old/docs+lang=fr+part-00000-of-00001.parquet.tmp": 8 * 3600,
        "memtest://b/out/.newsflow-tmp-old/_writer-worker7-12.json": 9 * 3600,
        "memtest://b/out/.newsflow-tmp-live/docs+lang=fr+part-00000-of-00001.parquet.tmp": 60,
        "memtest://b/out/.newsflow-tmp-live/_writer-worker3-40.json": 600,
        "memtest://b/out/.newsflow-tmp-mine/_writer-worker1-5.json": 8 * 3600,
    }.items():
        _STORE[key] = (b"x" * 100, now - age)
    yield "memtest://b/out"
    _STORE.clear()


def test_folders_are_listed_from_keys(bucket) -> None:
    folders = {f.path: f for f in list_tmp_folders(bucket)}
    assert sorted(folders) == [f"{bucket}/.newsflow-tmp-{n}" for n in ("live", "mine", "old")]
    assert folders[f"{bucket}/.newsflow-tmp-live"].writers == (("worker3", 40),)
    assert len(folders[f"{bucket}/.newsflow-tmp-old"].files) == 2


def test_stale_keys_are_deleted_and_recent_ones_kept(bucket, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="newsflow.io.write_tables"):
        removed = remove_stale_tmp(bucket, keep=f"{bucket}/.newsflow-tmp-mine", max_age_s=6 * 3600)
    assert removed == [f"{bucket}/.newsflow-tmp-old"]
    assert sorted(_STORE) == [
        f"{bucket}/.newsflow-tmp-live/_writer-worker3-40.json",
        f"{bucket}/.newsflow-tmp-live/docs+lang=fr+part-00000-of-00001.parquet.tmp",
        f"{bucket}/.newsflow-tmp-mine/_writer-worker1-5.json",  # this run's own folder is never touched here
        f"{bucket}/docs/lang=fr/date=2024-07-04/part-00000-of-00001.parquet",
    ]
    assert "removed stale temporary folder memtest://b/out/.newsflow-tmp-old (2 files" in caplog.text
    assert "kept temporary folder memtest://b/out/.newsflow-tmp-live" in caplog.text
