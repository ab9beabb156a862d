"""Shared pieces of the snapshot readers: the error type and small file helpers.

Every reader reports a bad file with :class:`ReaderError`, whose message starts with the file
name and says which field or column is at fault and what was expected.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import SnapshotError

__all__ = [
    "ReaderError",
    "GZIP_MAGIC",
    "as_path",
    "check_readable",
    "read_text",
    "read_head",
    "to_gyr",
    "parse_unit",
]

#: First two bytes of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"


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


def read_text(path: Path, *, expected: str) -> str:
    """The whole content of an ASCII text file (gzip-compressed allowed) as a string.

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
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ReaderError(f"{path}: cannot read {expected} ({exc})") from exc
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
