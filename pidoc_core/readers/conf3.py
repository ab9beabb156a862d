"""NBODY6-family ``conf.3``/``OUT3`` snapshot files (positions, velocities, masses, scalings).

File layouts implemented (read from the public sources, in the ``code`` search corpus)
---------------------------------------------------------------------------------------

``OUT3`` / ``conf.3_<time>`` -- Fortran unformatted sequential, written by ``SUBROUTINE OUTPUT``:

* NBODY6 (Aarseth), ``nbodyx/Nbody6: Ncode/output.f``::

      WRITE (3)  NTOT, MODEL, NRUN, NK
      WRITE (3)  (AS(K),K=1,NK), (BODYS(J),J=1,NTOT),
     &           ((XS(K,J),K=1,3),J=1,NTOT), ((VS(K,J),K=1,3),J=1,NTOT),
     &           (NAME(J),J=1,NTOT)

  one pair of records per output time, all appended to the single file ``OUT3``.
* NBODY6++GPU, ``nbodyx/Nbody6ppGPU: src/Main/output.F`` (one file ``conf.3_<TTOT>`` per time)::

      WRITE (3)  NTOT, MODEL, NRUN, NK
      WRITE (3)  (AS(K),K=1,NK), (BODYS(J),J=1,NTOT), (RHOS(J),J=1,NTOT), (XNS(J),J=1,NTOT),
     &           ((XS(K,J),K=1,3),J=1,NTOT), ((VS(K,J),K=1,3),J=1,NTOT),
     &           (PHI(J),J=1,NTOT), (NAME(J),J=1,NTOT)

* a reduced layout ``AS, BODYS, XS, VS, PHI, NAME`` (not seen in the sources above; read
  because it has been reported for some builds).

The layout is recognised from the length of the data record: ``fs*(NK + k*NTOT) + is*NTOT`` bytes
with ``k`` = 7, 10 or 8 floats per star, float size ``fs`` = 4 (``REAL*4``, as in the sources) or 8,
and integer size ``is`` = 4 or 8 (from the 16- or 32-byte header record). Record markers of 4 or 8
bytes in either byte order are tried in turn.

``AS`` holds (both sources, 1-based): ``AS(1)`` = TTOT (N-body time), ``AS(2)`` = NPAIRS,
``AS(3)`` = RBAR (pc), ``AS(4)`` = ZMBAR (Msun), ``AS(5)`` = RTIDE, ``AS(7:9)`` = RDENS (density
centre, N-body units), ``AS(11)`` = TSTAR (NBODY6; TSCALE in NBODY6++: Myr per time unit),
``AS(12)`` = VSTAR (km/s per velocity unit). Physical values: mass = BODYS*ZMBAR Msun,
position = XS*RBAR pc, velocity = VS*VSTAR km/s, time = TTOT*TSTAR Myr (reported in Gyr).
The first ``2*NPAIRS`` entries are the resolved KS-binary components, entries ``N+1..NTOT``
(``N = NTOT - NPAIRS``) are the binaries' centres of mass: those are dropped (their mass is
already in the components). Massless entries (ghosts left by mergers, BODYS = 0) are dropped too.

"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import ReaderError, as_path, check_readable, open_binary
from ._fortran import Convention, FortranSequentialReader, first_record_conventions

__all__ = ["Conf3", "read_conf3", "count_conf3", "check_scales"]

#: Per-star float arrays of the known data-record layouts, keyed by floats per star.
_LAYOUTS: dict[int, tuple[str, tuple[tuple[str, int], ...]]] = {
    7: ("nbody6", (("mass", 1), ("pos", 3), ("vel", 3))),
    10: ("nbody6++gpu", (("mass", 1), ("rho", 1), ("xns", 1), ("pos", 3), ("vel", 3), ("phi", 1))),
    8: ("issue", (("mass", 1), ("pos", 3), ("vel", 3), ("phi", 1))),
}

_MIN_NK = 12  # AS(12) = VSTAR is needed


@dataclass(frozen=True, eq=False)
class Conf3:
    """One snapshot of a ``conf.3``/``OUT3`` file, in N-body units as written.

    Attributes
    ----------
    ntot, model, nrun, nk : int
        The header record.
    scalars : numpy.ndarray
        ``AS(1:NK)`` (index 0 is ``AS(1)``).
    mass : numpy.ndarray
        BODYS, N-body mass units (``NTOT``).
    pos, vel : numpy.ndarray
        XS and VS, shape (NTOT, 3), N-body units.
    name : numpy.ndarray
        NAME, int64.
    layout : str
        'nbody6', 'nbody6++gpu' or 'issue'.
    float_bytes, int_bytes : int
        Sizes of the REAL and INTEGER values in the file.
    convention : Convention
        Record markers found.
    extra : dict
        Other per-star arrays of the layout (``rho``, ``xns``, ``phi``).
    """

    ntot: int
    model: int
    nrun: int
    nk: int
    scalars: np.ndarray
    mass: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    name: np.ndarray
    layout: str
    float_bytes: int
    int_bytes: int
    convention: Convention
    extra: dict = field(default_factory=dict)

    @property
    def ttot(self) -> float:
        """AS(1): time in N-body units."""
        return float(self.scalars[0])

    @property
    def npairs(self) -> int:
        """AS(2): number of KS pairs."""
        return int(round(float(self.scalars[1])))

    @property
    def rbar(self) -> float:
        """AS(3): length scale, pc per N-body unit."""
        return float(self.scalars[2])

    @property
    def zmbar(self) -> float:
        """AS(4): mass scale, Msun per N-body unit."""
        return float(self.scalars[3])

    @property
    def tstar(self) -> float:
        """AS(11): time scale, Myr per N-body unit (TSTAR in NBODY6, TSCALE in NBODY6++)."""
        return float(self.scalars[10])

    @property
    def vstar(self) -> float:
        """AS(12): velocity scale, km/s per N-body unit."""
        return float(self.scalars[11])

    @property
    def rdens(self) -> np.ndarray:
        """AS(7:9): density centre, N-body units."""
        return np.asarray(self.scalars[6:9], dtype=float)


# --------------------------------------------------------------------------------------------
# conf.3 / OUT3
# --------------------------------------------------------------------------------------------


def _parse_header(raw: bytes, conv: Convention, path: Path, index: int):
    if len(raw) not in (16, 32):
        raise ReaderError(
            f"{path}: snapshot {index}: header record is {len(raw)} bytes; expected the 4 "
            f"integers NTOT, MODEL, NRUN, NK (16 or 32 bytes; {conv})"
        )
    int_bytes = len(raw) // 4
    dtype = np.dtype(f"{conv.byteorder}i{int_bytes}")
    ntot, model, nrun, nk = (int(v) for v in np.frombuffer(raw, dtype=dtype))
    if ntot < 1:
        raise ReaderError(f"{path}: snapshot {index}: header NTOT = {ntot}; expected >= 1")
    if not _MIN_NK <= nk <= 10000:
        raise ReaderError(
            f"{path}: snapshot {index}: header NK = {nk}; expected {_MIN_NK} <= NK <= 10000 "
            "(AS(1:NK) must include AS(12) = VSTAR)"
        )
    return ntot, model, nrun, nk, int_bytes


def _solve_layout(length: int, ntot: int, nk: int, int_bytes: int):
    """(float_bytes, floats per star) matching a data record of ``length`` bytes, or None."""
    matches = []
    for float_bytes in (4, 8):
        for k in _LAYOUTS:
            if float_bytes * (nk + k * ntot) + int_bytes * ntot == length:
                matches.append((float_bytes, k))
    return matches[0] if len(matches) == 1 else None


def _expected_lengths(ntot, nk, int_bytes) -> str:
    items = []
    for float_bytes in (4, 8):
        for k, (lname, _) in _LAYOUTS.items():
            items.append(f"{float_bytes * (nk + k * ntot) + int_bytes * ntot} ({lname}, "
                         f"REAL*{float_bytes})")
    return ", ".join(items)


def _parse_data(raw, ntot, nk, int_bytes, conv, path, index):
    solved = _solve_layout(len(raw), ntot, nk, int_bytes)
    if solved is None:
        raise ReaderError(
            f"{path}: snapshot {index}: data record is {len(raw)} bytes, which fits no known "
            f"conf.3 layout for NTOT = {ntot}, NK = {nk}; expected one of "
            f"{_expected_lengths(ntot, nk, int_bytes)} bytes"
        )
    float_bytes, k = solved
    layout, arrays = _LAYOUTS[k]
    fdt = np.dtype(f"{conv.byteorder}f{float_bytes}")
    idt = np.dtype(f"{conv.byteorder}i{int_bytes}")
    offset = 0
    scalars = np.frombuffer(raw, dtype=fdt, count=nk, offset=offset).astype(np.float64)
    offset += nk * float_bytes
    values = {}
    for key, width in arrays:
        arr = np.frombuffer(raw, dtype=fdt, count=width * ntot, offset=offset).astype(np.float64)
        values[key] = arr.reshape(ntot, width) if width > 1 else arr
        offset += width * ntot * float_bytes
    names = np.frombuffer(raw, dtype=idt, count=ntot, offset=offset).astype(np.int64)
    return scalars, values, names, layout, float_bytes


def _conventions(path: Path, head: bytes, size: int, fh) -> list[Convention]:
    convs = first_record_conventions(path, head, size, fh=fh)
    if not convs:
        raise ReaderError(
            f"{path}: not a Fortran unformatted sequential file: the first bytes are not a "
            "record marker matched by a trailing one (tried 4- and 8-byte markers, both byte "
            "orders); expected an NBODY6 conf.3/OUT3 file"
        )
    return convs


def _starts(reader, conv, path, index):
    """Byte offsets of the snapshots read so far, stopping as soon as ``index`` is found."""
    starts = []
    while not reader.at_end():
        start = reader.tell()
        raw = reader.read_record(f"snapshot {len(starts)} header")
        ntot, _, _, nk, int_bytes = _parse_header(raw, conv, path, len(starts))
        _, length = reader.skip_record(f"snapshot {len(starts)} data")
        if _solve_layout(length, ntot, nk, int_bytes) is None:
            raise ReaderError(
                f"{path}: snapshot {len(starts)}: data record is {length} bytes, which fits no "
                f"known conf.3 layout for NTOT = {ntot}, NK = {nk}; expected one of "
                f"{_expected_lengths(ntot, nk, int_bytes)} bytes"
            )
        starts.append(start)
        if index is not None and 0 <= index < len(starts):
            break
        if index is None and len(starts) > 1:
            break
    return starts


def _pick_start(starts, index, path):
    if not starts:
        raise ReaderError(f"{path}: no snapshot in the file")
    if index is None:
        if len(starts) > 1:
            raise ReaderError(
                f"{path}: holds more than one snapshot (an NBODY6 OUT3 file appends one per "
                "output time); pass index= (0-based, -1 for the last)"
            )
        return starts[0], 1
    if index >= 0 and index < len(starts):
        return starts[index], None
    if index < 0 and -index <= len(starts):
        return starts[index], len(starts)
    raise ReaderError(f"{path}: snapshot index {index} is out of range: the file holds "
                      f"{len(starts)} snapshot(s)")


def _scan(path: Path, fh, size: int, index: int | None):
    """Locate snapshot ``index`` in the open file; returns (conv, header-offset, count or None)."""
    if size == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected an NBODY6 conf.3/OUT3 file")
    fh.seek(0)
    head = fh.read(4096)
    errors = []
    for conv in _conventions(path, head, size, fh):
        try:
            fh.seek(0)
            starts = _starts(FortranSequentialReader(fh, size, conv, path), conv, path, index)
            start, count = _pick_start(starts, index, path)
            return conv, start, count
        except ReaderError as exc:
            errors.append((conv, exc))
    # every convention failed: report the one that got furthest (first in order)
    conv, exc = errors[0]
    if len(errors) > 1:
        tried = ", ".join(str(c) for c, _ in errors[1:])
        raise ReaderError(f"{exc} [also tried: {tried}]") from exc
    raise exc


def read_conf3(path, *, index: int | None = None) -> Conf3:
    """Read one snapshot of an NBODY6 ``OUT3`` or NBODY6++ ``conf.3_<time>`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The Fortran unformatted file (gzip or bzip2 compression allowed, recognised by content).
    index : int, optional
        Which snapshot of a multi-snapshot ``OUT3`` file (0-based; negative counts from the
        end). Required when the file holds more than one.

    Returns
    -------
    Conf3
        Header, ``AS`` scalars and per-star arrays in N-body units.

    Raises
    ------
    ReaderError
        If the file is not a Fortran sequential file, is truncated, its records fit no known
        layout, or ``index`` is out of range.

    Examples
    --------
    >>> conf = read_conf3("conf.3_100")                      # doctest: +SKIP
    >>> conf.ntot, conf.rbar, conf.zmbar                     # doctest: +SKIP
    (1000, 1.21, 0.63)
    """
    path = as_path(path)
    check_readable(path)
    label = 0 if index is None else index
    fh, size = open_binary(path, expected="an NBODY6 conf.3/OUT3 file")
    with fh:
        conv, start, _ = _scan(path, fh, size, index)
        fh.seek(start)
        reader = FortranSequentialReader(fh, size, conv, path)
        raw = reader.read_record(f"snapshot {label} header")
        ntot, model, nrun, nk, int_bytes = _parse_header(raw, conv, path, label)
        raw = reader.read_record(f"snapshot {label} data")
    scalars, values, names, layout, float_bytes = _parse_data(raw, ntot, nk, int_bytes, conv,
                                                              path, label)
    extra = {k: v for k, v in values.items() if k not in ("mass", "pos", "vel")}
    return Conf3(ntot=ntot, model=model, nrun=nrun, nk=nk, scalars=scalars, mass=values["mass"],
                 pos=values["pos"], vel=values["vel"], name=names, layout=layout,
                 float_bytes=float_bytes, int_bytes=int_bytes, convention=conv, extra=extra)


def count_conf3(path) -> int:
    """Number of snapshots in an ``OUT3``/``conf.3`` file (each checked for a known layout)."""
    path = as_path(path)
    check_readable(path)
    fh, size = open_binary(path, expected="an NBODY6 conf.3/OUT3 file")
    with fh:
        return _scan(path, fh, size, -1)[2]


def check_scales(conf: Conf3, path: Path) -> None:
    for k, label, unit in ((2, "RBAR", "pc"), (3, "ZMBAR", "Msun"), (10, "TSTAR", "Myr"),
                           (11, "VSTAR", "km/s")):
        value = float(conf.scalars[k])
        if not np.isfinite(value) or value <= 0:
            raise ReaderError(
                f"{path}: AS({k + 1}) = {label} is {value!r}; expected a positive scale in {unit}"
            )
    ttot = conf.ttot
    if not np.isfinite(ttot):
        raise ReaderError(f"{path}: AS(1) = TTOT is {ttot!r}; expected a finite time")
    npairs_raw = float(conf.scalars[1])
    if not np.isfinite(npairs_raw) or npairs_raw != round(npairs_raw) or npairs_raw < 0 or \
            3 * npairs_raw > conf.ntot:
        raise ReaderError(
            f"{path}: AS(2) = NPAIRS is {npairs_raw!r}; expected a whole number with "
            f"3*NPAIRS <= NTOT = {conf.ntot}"
        )
