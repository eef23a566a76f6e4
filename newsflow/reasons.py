"""Reject reason codes: every document that is not kept or deduplicated gets one.

The values are the strings written to ``rejects.reason`` and used as Beam counter
names (``newsflow:reject_<reason>``).
"""

from __future__ import annotations

import enum

__all__ = ["Reason"]


class Reason(str, enum.Enum):
    """Why a document (or a whole file) went to the rejects table."""

    # Whole file or archive member could not be read (doc_index is null).
    EMPTY_FILE = "empty_file"  # zero bytes, or nothing but whitespace
    UNREADABLE = "unreadable"  # truncated/corrupt compression, I/O error
    CORRUPT_ARCHIVE = "corrupt_archive"  # tar/zip structure broken
    UNSAFE_PATH = "unsafe_path"  # archive member path absolute or climbing out (..)
    UNSUPPORTED_MEMBER = "unsupported_member"  # symlink, hardlink, device, fifo in an archive
    NESTED_ARCHIVE = "nested_archive"  # an archive inside an archive
    TOO_MANY_MEMBERS = "too_many_members"  # archive over the member limit
    DECOMPRESSION_BOMB = "decompression_bomb"  # expands beyond the configured ratio/size
    # One document.
    NO_HEADER = "no_header"  # text before the first header line
    BAD_TIMESTAMP = "bad_timestamp"  # header shaped like a time but impossible (month 13)
    IMPLAUSIBLE_DATE = "implausible_date"  # outside the configured year range
    EMPTY_BODY = "empty_body"  # header (and maybe tags/trailer) but no body text
    BINARY = "binary"  # control bytes / undecodable content
    TOO_LARGE = "too_large"  # over ``read.max_doc_bytes``
    INTERNAL_ERROR = "internal_error"  # unexpected exception, kept with its message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value
