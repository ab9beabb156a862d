"""Fortran unformatted *sequential* files: records framed by length markers.

Each record is written as ``<marker n> <n bytes> <marker n>``. Compilers differ in the marker:
4-byte markers are the default of gfortran >= 4.2, ifort and most others; 8-byte markers were
written by gfortran < 4.2 (and ``-frecord-marker=8``). Either byte order may occur (files from
big-endian machines). gfortran splits records longer than 2**31 - 9 bytes into sub-records whose
leading marker is negative when more sub-records follow; this reader joins them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ._common import ReaderError

__all__ = ["Convention", "CONVENTIONS", "FortranSequentialReader", "first_record_conventions"]


@dataclass(frozen=True)
class Convention:
    """A record-marker convention: marker size in bytes (4 or 8) and byte order ('<' or '>')."""

    marker: int
    byteorder: str

    @property
    def fmt(self) -> str:
        return self.byteorder + ("i" if self.marker == 4 else "q")

    def __str__(self) -> str:
        order = "little" if self.byteorder == "<" else "big"
        return f"{self.marker}-byte {order}-endian record markers"


#: Conventions tried in order: 4-byte markers first (the common case), then 8-byte ones.
CONVENTIONS: tuple[Convention, ...] = (
    Convention(4, "<"),
    Convention(4, ">"),
    Convention(8, "<"),
    Convention(8, ">"),
)


def first_record_conventions(path: Path, head: bytes, size: int, *, fh=None) -> list[Convention]:
    """Conventions under which the file starts with one complete, well-framed record.

    Parameters
    ----------
    path : pathlib.Path
        The file (read only when the first record is longer than ``head``).
    head : bytes
        The first bytes of the file.
    size : int
        The file size in bytes (decompressed size for a compressed file).
    fh : binary file object, optional
        Read instead of ``path`` (a decompressed in-memory copy); its position is not kept.

    Returns
    -------
    list of Convention
        Possibly empty; the leading and trailing markers agree and fit in the file.
    """
    found = []
    for conv in CONVENTIONS:
        m = conv.marker
        if len(head) < m:
            continue
        (length,) = struct.unpack(conv.fmt, head[:m])
        if conv.marker == 4 and length < 0:  # gfortran sub-record: use its length
            length = -length
        if length <= 0 or m + length + m > size:
            continue
        if m + length + m <= len(head):
            tail_bytes = head[m + length : m + length + m]
        elif fh is not None:
            fh.seek(m + length)
            tail_bytes = fh.read(m)
        else:
            try:
                with open(path, "rb") as f:
                    f.seek(m + length)
                    tail_bytes = f.read(m)
            except OSError:
                continue
        if len(tail_bytes) < m:
            continue
        (tail,) = struct.unpack(conv.fmt, tail_bytes)
        if abs(tail) == length:
            found.append(conv)
    return found


class FortranSequentialReader:
    """Read the records of a Fortran unformatted sequential file.

    Parameters
    ----------
    fh : binary file object
        Open for reading, positioned at a record boundary.
    size : int
        File size in bytes (to detect truncation before reading).
    convention : Convention
        Marker size and byte order.
    path : pathlib.Path
        File name for error messages.
    """

    def __init__(self, fh: BinaryIO, size: int, convention: Convention, path: Path):
        self.fh = fh
        self.size = size
        self.conv = convention
        self.path = path

    def tell(self) -> int:
        return self.fh.tell()

    def at_end(self) -> bool:
        """True when no bytes are left after the current position."""
        return self.fh.tell() >= self.size

    def _marker(self, what: str, which: str) -> int:
        start = self.fh.tell()
        raw = self.fh.read(self.conv.marker)
        if len(raw) < self.conv.marker:
            raise ReaderError(
                f"{self.path}: truncated file: the {which} marker of record '{what}' at byte "
                f"{start} is cut off ({len(raw)} of {self.conv.marker} bytes; file has "
                f"{self.size} bytes)"
            )
        return struct.unpack(self.conv.fmt, raw)[0]

    def _frames(self, what: str, read: bool):
        """Yield (offset, length, data or None) of each sub-record of the next record."""
        while True:
            start = self.fh.tell()
            head = self._marker(what, "leading")
            more = False
            if head < 0:
                if self.conv.marker != 4:
                    raise ReaderError(
                        f"{self.path}: malformed record '{what}' at byte {start}: negative "
                        f"length {head} in an 8-byte record marker"
                    )
                more = True
                head = -head
            m = self.conv.marker
            if start + m + head + m > self.size:
                raise ReaderError(
                    f"{self.path}: truncated file: record '{what}' at byte {start} announces "
                    f"{head} bytes but only {max(self.size - start - m, 0)} remain "
                    f"(file has {self.size} bytes; {self.conv})"
                )
            if read:
                data = self.fh.read(head)
                if len(data) < head:
                    raise ReaderError(
                        f"{self.path}: truncated file while reading record '{what}' at byte {start}"
                    )
            else:
                self.fh.seek(head, 1)
                data = None
            tail = self._marker(what, "trailing")
            if abs(tail) != head:
                raise ReaderError(
                    f"{self.path}: malformed record '{what}' at byte {start}: leading marker says "
                    f"{head} bytes, trailing marker says {abs(tail)} ({self.conv})"
                )
            yield start, head, data
            if not more:
                return

    def read_record(self, what: str) -> bytes:
        """The payload of the next record (sub-records joined).

        Raises
        ------
        ReaderError
            If the record is truncated or its markers disagree; the message names ``what``.
        """
        parts = [data for _, _, data in self._frames(what, read=True)]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def skip_record(self, what: str) -> tuple[int, int]:
        """Skip the next record; returns its starting byte offset and total payload length."""
        start = None
        total = 0
        for offset, length, _ in self._frames(what, read=False):
            start = offset if start is None else start
            total += length
        return start, total
