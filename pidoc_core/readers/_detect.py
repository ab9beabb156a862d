"""Guess a snapshot file's format from its content (not its name)."""

from __future__ import annotations

from ._common import (ReaderError, as_path, check_readable, compression_of, decompress_head,
                      read_bytes, read_head)
from ._fortran import first_record_conventions
from .dat10 import looks_like_dat10
from .nbody6pp_hr import looks_like_hr
from .petar import looks_like_petar

__all__ = ["FORMATS", "detect_format"]

#: Formats :func:`detect_format` can return.
FORMATS: tuple[str, ...] = ("nbody6", "nbody6-hdf5", "amuse", "dat10", "petar", "ecsv", "csv",
                             "fits", "hdf5", "parquet")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FITS_MAGIC = b"SIMPLE  ="


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


def _hdf5_kind(path) -> str:
    """'nbody6-hdf5', 'amuse' or 'hdf5' from the groups at the root of an HDF5 file."""
    import h5py

    from .amuse import is_amuse
    from .nbody6pp_hdf5 import is_snap40

    try:
        with h5py.File(path, "r") as f:
            if is_snap40(f):
                return "nbody6-hdf5"
            if is_amuse(f):
                return "amuse"
    except (OSError, ValueError, KeyError, RuntimeError):
        pass  # a damaged file: the table reader reports it with its details
    return "hdf5"


def _hr_refusal(path, kind: str) -> ReaderError:
    unit = "83" if kind == "sev" else "82"
    return ReaderError(
        f"{path}: this is an NBODY6/NBODY6++GPU {kind}.{unit} HR file (stellar properties of "
        f"the stars of one output time), not a snapshot; read the conf.3 file of the same time "
        f"and pass this file as {kind}= (CLI: --{kind} {path.name})"
    )


def detect_format(path) -> str:
    """Guess a snapshot file's format from its first bytes.

    Checked in order: HDF5 signature (``\\x89HDF``, also after a user block; then NBODY6++GPU
    ``Step#<i>`` groups -> 'nbody6-hdf5', AMUSE ``AMUSE_INF``/``data`` groups -> 'amuse', else
    'hdf5'), Parquet ``PAR1``, FITS ``SIMPLE  =``, a Fortran unformatted record framed by
    matching length markers (NBODY6 ``conf.3``/``OUT3``), then for text (gzip- or
    bzip2-compressed content is decompressed first, and checked for a Fortran record and FITS
    too): ``# %ECSV``, a PeTar header (``file_id N time`` then a row of >= 8 numbers), an
    NBODY6 HR file (refused with a message that says how to use it), rows of 7 numbers
    (``dat.10``), else CSV.

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
        If the file is missing or empty, is binary but none of the binary formats, or is an
        NBODY6 ``sev.83``/``bev.82`` HR file (which belongs to a ``conf.3``).

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
            return _hdf5_kind(path)
    if head[:4] == b"PAR1":
        return "parquet"
    if head.startswith(_FITS_MAGIC):
        return "fits"
    if first_record_conventions(path, head, size):
        return "nbody6"
    data = head
    kind = compression_of(head)
    if kind is not None:
        data = decompress_head(head)
        if not data:
            raise ReaderError(f"{path}: {kind}-compressed, but the stream does not decompress")
        if data.startswith(_FITS_MAGIC):
            return "fits"
        if first_record_conventions(path, data, len(data)):
            return "nbody6"
        read_bytes(path, expected="a compressed snapshot")  # a cut-off stream fails here, clearly
    return _text_format(path, head, data, kind)


def _text_format(path, head: bytes, data: bytes, kind) -> str:
    text = _as_text(data)
    if text is None:
        what = f"{kind}-compressed content" if kind else "binary content"
        raise ReaderError(
            f"{path}: unrecognised {what} (first bytes {data[:8]!r}): not HDF5, Parquet, FITS, "
            "a Fortran unformatted NBODY6 file, or text (ECSV, PeTar, CSV, dat.10)"
        )
    if text.lstrip("\ufeff").startswith("# %ECSV"):
        return "ecsv"
    if looks_like_petar(text):
        return "petar"
    hr = looks_like_hr(text)
    if hr is not None:
        raise _hr_refusal(path, hr)
    if looks_like_dat10(text):
        return "dat10"
    return "csv"
