"""Guess a snapshot file's format from its content (not its name)."""

from __future__ import annotations

import zlib

from ._common import GZIP_MAGIC, ReaderError, as_path, check_readable, read_head
from ._fortran import first_record_conventions
from .petar import looks_like_petar

__all__ = ["FORMATS", "detect_format"]

#: Formats :func:`detect_format` can return.
FORMATS: tuple[str, ...] = ("nbody6", "petar", "ecsv", "csv", "fits", "hdf5", "parquet")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FITS_MAGIC = b"SIMPLE  ="


def _gunzip_head(head: bytes, limit: int = 65536) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, limit)
    except zlib.error:
        return b""


def _as_text(data: bytes) -> str | None:
    """Decoded text, or None when ``data`` does not look like text.

    Like ``file(1)``: a few bad bytes (a corrupted or cut-off character) leave it text, for the
    text reader to report precisely; more than 5% NUL, control or undecodable bytes make it
    binary.
    """
    if not data:
        return ""
    text = data.decode("utf-8", errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f\v"))
    if bad > 0.05 * len(text):
        return None
    return text


def detect_format(path) -> str:
    """Guess a snapshot file's format from its first bytes.

    Checked in order: HDF5 signature (``\\x89HDF``, also after a user block), Parquet ``PAR1``,
    FITS ``SIMPLE  =``, a Fortran unformatted record framed by matching length markers (NBODY6
    ``conf.3``/``OUT3``), then for text (gzip-compressed text too): ``# %ECSV``, a PeTar header
    (``file_id N time`` then a row of >= 8 numbers), else CSV.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    ReaderError
        If the file is missing or empty, or is binary but none of the binary formats.

    Examples
    --------
    >>> detect_format("conf.3_100")        # doctest: +SKIP
    'nbody6'
    """
    path = as_path(path)
    size = check_readable(path)
    if size == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); nothing to read")
    head = read_head(path, 65536)
    for offset in (0, 512, 1024, 2048, 4096, 8192, 16384, 32768):
        if head[offset:offset + 8] == _HDF5_MAGIC:
            return "hdf5"
    if head[:4] == b"PAR1":
        return "parquet"
    if head.startswith(_FITS_MAGIC):
        return "fits"
    if first_record_conventions(path, head, size):
        return "nbody6"
    data = head
    if head[:2] == GZIP_MAGIC:
        data = _gunzip_head(head)
        if not data:
            raise ReaderError(f"{path}: gzip-compressed, but the stream does not decompress")
        if data.startswith(_FITS_MAGIC):
            return "fits"
    text = _as_text(data)
    if text is None:
        raise ReaderError(
            f"{path}: unrecognised binary content (first bytes {head[:8]!r}): not HDF5, Parquet, "
            "FITS, a Fortran unformatted NBODY6 file, or text (ECSV, PeTar, CSV)"
        )
    if text.lstrip("\ufeff").startswith("# %ECSV"):
        return "ecsv"
    if looks_like_petar(text):
        return "petar"
    return "csv"
