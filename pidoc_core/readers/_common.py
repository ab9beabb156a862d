"""Shared pieces of the snapshot readers: the error type and small file helpers.

Every reader reports a bad file with :class:`ReaderError`, whose message starts with the file
name and says which field or column is at fault and what was expected.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import SnapshotError

__all__ = [
    "ReaderError",
    "GZIP_MAGIC",
    "BZ2_MAGIC",
    "as_path",
    "check_readable",
    "compression_of",
    "decompress_head",
    "open_binary",
    "read_text",
    "read_head",
    "to_gyr",
    "parse_unit",
]

#: First two bytes of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: First three bytes of a bzip2 stream.
BZ2_MAGIC = b"BZh"


class ReaderError(SnapshotError):
    """A snapshot file cannot be read: unknown or malformed format, truncated content, missing
    or inconsistent columns, or values the :class:`~pidoc_core.snapshot.Snapshot` contract rejects.

    The message names the file, the field or column at fault and what was expected.
    """


ReaderError.__module__ = "pidoc_core.readers"


def as_path(path) -> Path:
    """``path`` as a :class:`pathlib.Path`; a ReaderError for anything that is not path-like."""
    try:
        return Path(os.fspath(path))
    except TypeError:
        raise ReaderError(f"expected a file path (str or os.PathLike), got {path!r}") from None


def check_readable(path: Path) -> int:
    """Size of ``path`` in bytes, after checking that it is an existing, readable regular file.

    Raises
    ------
    ReaderError
        If the file does not exist, is a directory or cannot be opened.
    """
    try:
        if not path.exists():
            raise ReaderError(f"{path}: no such file")
        if path.is_dir():
            raise ReaderError(f"{path}: is a directory, expected a snapshot file")
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ReaderError(f"{path}: cannot open the file ({exc.strerror or exc})") from exc
    return size


def read_head(path: Path, nbytes: int = 65536) -> bytes:
    """The first ``nbytes`` bytes of ``path`` (fewer if the file is shorter)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(nbytes)
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def compression_of(head: bytes) -> str | None:
    """'gzip' or 'bz2' when ``head`` starts with that compressor's magic bytes, else None.

    Recognised by content, never by file name: gzip ``1f 8b``, bzip2 ``BZh`` followed by a block
    size digit ``1``-``9``.
    """
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:3] == BZ2_MAGIC and head[3:4].isdigit() and head[3:4] != b"0":
        return "bz2"
    return None


def decompress_head(head: bytes, limit: int = 65536) -> bytes:
    """Up to ``limit`` decompressed bytes from the start of a gzip or bzip2 stream (b'' when the
    stream is corrupt or ``head`` is not compressed)."""
    kind = compression_of(head)
    try:
        if kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, limit)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(head, limit)
    except (OSError, EOFError, ValueError, zlib.error):
        return b""
    return b""


def _decompress(data: bytes, kind: str, path: Path, expected: str) -> bytes:
    try:
        return gzip.decompress(data) if kind == "gzip" else bz2.decompress(data)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise ReaderError(f"{path}: {kind}-compressed, but the stream does not decompress "
                          f"({exc}); expected {expected}") from None


def read_bytes(path: Path, *, expected: str) -> bytes:
    """The whole content of ``path``, decompressed when it is gzip- or bzip2-compressed.

    Raises
    ------
    ReaderError
        If the file cannot be read or its compressed stream is corrupt or cut off.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read {expected} ({exc.strerror or exc})") from exc
    kind = compression_of(data[:4])
    return data if kind is None else _decompress(data, kind, path, expected)


def open_binary(path: Path, *, expected: str):
    """A binary file object and its (decompressed) size in bytes.

    Uncompressed files are opened directly (large ``OUT3`` files are not read into memory);
    gzip/bzip2 files are decompressed into memory. The caller closes the returned object.
    """
    head = read_head(path, 4)
    if compression_of(head) is None:
        try:
            return open(path, "rb"), path.stat().st_size
        except OSError as exc:
            raise ReaderError(f"{path}: cannot open the file ({exc.strerror or exc})") from exc
    data = read_bytes(path, expected=expected)
    return io.BytesIO(data), len(data)


def read_text(path: Path, *, expected: str) -> str:
    """The whole content of an ASCII text file (gzip- or bzip2-compressed allowed) as a string.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    expected : str
        What the file should be, for error messages (e.g. "a PeTar ASCII snapshot").

    Raises
    ------
    ReaderError
        If the file cannot be read or decompressed, or holds a non-ASCII byte (the message gives
        its line and byte offset).
    """
    data = read_bytes(path, expected=expected)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReaderError(
            f"{path}: line {line}: byte {exc.start} ({data[exc.start:exc.start + 1]!r}) is not "
            f"ASCII text; expected {expected}"
        ) from None


def parse_unit(spec, *, where: str) -> u.UnitBase:
    """An astropy unit from a string or unit; ReaderError naming ``where`` if it does not parse."""
    if isinstance(spec, u.UnitBase):
        return spec
    try:
        return u.Unit(spec, parse_strict="raise")
    except (ValueError, TypeError) as exc:
        raise ReaderError(f"{where}: unit {spec!r} is not a valid astropy unit ({exc})") from None


def to_gyr(value, *, where: str, default_unit=u.Gyr) -> float:
    """A time as a float number of Gyr.

    Parameters
    ----------
    value : float or astropy.units.Quantity
        A plain number is taken to be in ``default_unit``.
    where : str
        Context for the error message.
    default_unit : astropy.units.Unit
        Unit of a plain number (Gyr unless told otherwise).

    Raises
    ------
    ReaderError
        If the value is not a finite number or its unit is not a time.
    """
    try:
        if isinstance(value, u.Quantity):
            gyr = value.to_value(u.Gyr)
        else:
            gyr = (float(value) * default_unit).to_value(u.Gyr)
        gyr = float(np.asarray(gyr).reshape(()))
    except (u.UnitConversionError, u.UnitsError):
        raise ReaderError(f"{where}: time {value!r} is not in a unit of time") from None
    except (TypeError, ValueError):
        raise ReaderError(f"{where}: time {value!r} is not a single number (expected "
                          "Gyr)") from None
    if not np.isfinite(gyr):
        raise ReaderError(f"{where}: time {value!r} is not finite")
    return gyr
