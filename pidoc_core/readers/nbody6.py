"""NBODY6-family snapshots: ``conf.3``/``OUT3`` joined with the ``sev.83`` (and ``bev.82``) files.

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

* the layout of the project's issue, ``AS, BODYS, XS, VS, PHI, NAME`` (not seen in the sources
  above; kept because it was asked for).

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

``sev.83`` -- formatted, written by ``SUBROUTINE HRPLOT`` for single stars:

* NBODY6, ``nbodyx/Nbody6: Ncode/hrplot.f`` (unit 83 = ``fort.83``, all times appended)::

      ' ## BEGIN', NS, TPHYS              FORMAT (' ## BEGIN',I8,F9.1)
      NAME, KW, RI, M1, log L, log R, log Teff     FORMAT (I10,I4,5F10.3)
      ' ## END', NSTAR

* NBODY6++GPU, ``nbodyx/Nbody6ppGPU: src/Main/hrplot.F`` (and the identical
  ``nbody6ppgpu/Nbody6PPGPU-beijing``; one file ``sev.83_<TTOT>``)::

      NS, TPHYS                            FORMAT (I8,F9.1)
      TTOT, I, NAME, KW, RI, M1, log L, log R, log Teff   FORMAT (1X,1P,E12.5,2I8,I3,5E13.5)

* older NBODY6++ ``hrplot.f``: header ``NS, TPHYS``; rows
  ``TTOT, NAME, KW, RI, M1, log L, log R`` (``1P,D15.7,I8,I5,4D15.5``, Fortran ``D`` exponents).

``bev.82`` -- the same routine's binary rows, used for the KS components (not in ``sev.83``):
NBODY6 ``NAME1 NAME2 KW1 KW2 KWCM RI ECC log P log a M1 M2 log L1 log L2 log R1 log R2 log T1
log T2`` (``FORMAT (2I6,2I3,I4,F6.1,F6.3,10F7.3)``, read by columns when fields touch); NBODY6++GPU
``TTOT J1 J2 NAME1 NAME2 KW1 KW2 KWCM RI ECC log P log a M1 M2 log L1 log L2 log R1 log R2 log T1
log T2``; old NBODY6++ ``TTOT NAME1 NAME2 KW1 KW2 KWCM RI ECC log P log a M1 M2 log L1 log L2 log R1
log R2``. L (Lsun) = 10**log L, R (Rsun) = 10**log R, kstar = KW. Teff is *not* taken from the
files (NBODY6 writes it with a solar log Teff of 3.7, NBODY6++ with 3.7618); the Snapshot derives it
from L and R with 5772 K for every source alike.

Stars are joined by NAME. The HR block is chosen by time: rows' TTOT when given, else the block
header's TPHYS (Myr, written with one decimal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable, read_head, read_text, to_gyr
from ._fortran import Convention, FortranSequentialReader, first_record_conventions

__all__ = [
    "Conf3",
    "HRBlock",
    "read_conf3",
    "count_conf3",
    "read_hr_file",
    "read_nbody6",
    "find_sibling",
]

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


@dataclass(frozen=True, eq=False)
class HRBlock:
    """One output time of a ``sev.83``/``bev.82`` file: stellar properties by NAME.

    Binary rows of ``bev.82`` contribute both components (``name`` holds NAME1 then NAME2).

    Attributes
    ----------
    tphys : float or None
        Block header time, Myr (None when the block has no header).
    ttot : float or None
        Time in N-body units from the rows (None for the NBODY6 layout).
    name : numpy.ndarray
        int64 star names.
    kstar : numpy.ndarray
        SSE types KW.
    mass : numpy.ndarray
        Masses, Msun.
    log_luminosity, log_radius : numpy.ndarray
        log10 L/Lsun and log10 R/Rsun.
    layout : str
        Which row layout was read.
    line : int
        1-based line number where the block starts.
    complete : bool
        False for an NBODY6 block without its ``## END`` line (file cut off).
    """

    tphys: float | None
    ttot: float | None
    name: np.ndarray
    kstar: np.ndarray
    mass: np.ndarray
    log_luminosity: np.ndarray
    log_radius: np.ndarray
    layout: str
    line: int
    complete: bool = True


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


def _conventions(path: Path, size: int) -> list[Convention]:
    head = read_head(path, 4096)
    convs = first_record_conventions(path, head, size)
    if not convs:
        raise ReaderError(
            f"{path}: not a Fortran unformatted sequential file: the first bytes are not a "
            "record marker matched by a trailing one (tried 4- and 8-byte markers, both byte "
            "orders); expected an NBODY6 conf.3/OUT3 file"
        )
    return convs


def _scan(path: Path, index: int | None):
    """Locate snapshot ``index``; returns (conv, header-offset, count or None)."""
    size = check_readable(path)
    if size == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected an NBODY6 conf.3/OUT3 file")
    errors = []
    for conv in _conventions(path, size):
        try:
            with open(path, "rb") as fh:
                reader = FortranSequentialReader(fh, size, conv, path)
                starts = []
                while not reader.at_end():
                    start = reader.tell()
                    raw = reader.read_record(f"snapshot {len(starts)} header")
                    ntot, _, _, nk, int_bytes = _parse_header(raw, conv, path, len(starts))
                    _, length = reader.skip_record(f"snapshot {len(starts)} data")
                    if _solve_layout(length, ntot, nk, int_bytes) is None:
                        raise ReaderError(
                            f"{path}: snapshot {len(starts)}: data record is {length} bytes, "
                            f"which fits no known conf.3 layout for NTOT = {ntot}, NK = {nk}; "
                            f"expected one of {_expected_lengths(ntot, nk, int_bytes)} bytes"
                        )
                    starts.append(start)
                    if index is not None and index >= 0 and len(starts) > index:
                        return conv, starts[index], None
                    if index is None and len(starts) > 1:
                        break
            if not starts:
                raise ReaderError(f"{path}: no snapshot in the file")
            if index is None:
                if len(starts) > 1:
                    raise ReaderError(
                        f"{path}: holds more than one snapshot (an NBODY6 OUT3 file appends one "
                        "per output time); pass index= (0-based, -1 for the last)"
                    )
                return conv, starts[0], 1
            if index < 0 and -index <= len(starts):
                return conv, starts[index], len(starts)
            raise ReaderError(
                f"{path}: snapshot index {index} is out of range: the file holds "
                f"{len(starts)} snapshot(s)"
            )
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
        The Fortran unformatted file.
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
    conv, start, _ = _scan(path, index)
    size = check_readable(path)
    label = 0 if index is None else index
    with open(path, "rb") as fh:
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
    _, _, count = _scan(path, -1)
    return count


def _check_scales(conf: Conf3, path: Path) -> None:
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


# --------------------------------------------------------------------------------------------
# sev.83 / bev.82
# --------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"^[+-]?\d+$")
_D_EXP = str.maketrans({"D": "E", "d": "e"})

# column indices per layout: (ttot, [(name, kw, mass, logL, logR), ...component])
_SEV_LAYOUTS = {
    "nbody6": (7, None, [(0, 1, 3, 4, 5)]),
    "nbody6++": (7, 0, [(1, 2, 4, 5, 6)]),
    "nbody6++gpu": (9, 0, [(2, 3, 5, 6, 7)]),
}
_BEV_LAYOUTS = {
    "nbody6": (17, None, [(0, 2, 9, 11, 13), (1, 3, 10, 12, 14)]),
    "nbody6++": (16, 0, [(1, 3, 10, 12, 14), (2, 4, 11, 13, 15)]),
    "nbody6++gpu": (20, 0, [(3, 5, 12, 14, 16), (4, 6, 13, 15, 17)]),
}
#: Fixed column widths of the NBODY6 formats, for rows whose fields touch.
_FIXED = {
    "sev": (10, 4, 10, 10, 10, 10, 10),
    "bev": (6, 6, 3, 3, 4, 6, 6) + (7,) * 10,
}


def _fixed_split(line: str, widths) -> list[str]:
    out, pos = [], 0
    for w in widths:
        out.append(line[pos:pos + w].strip())
        pos += w
    return out


class _RawBlock:
    def __init__(self, line, tphys=None, declared=None, marked=False):
        self.line = line
        self.tphys = tphys
        self.declared = declared
        self.marked = marked  # NBODY6 '## BEGIN' block
        self.rows: list[list[str]] = []
        self.row_lines: list[int] = []
        self.texts: list[str] = []
        self.ended = not marked
        self.end_count = None


def _is_float_token(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _segment(lines, path: Path) -> list[_RawBlock]:
    blocks: list[_RawBlock] = []
    current = None
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("##"):
            tokens = text[2:].split()
            if tokens and tokens[0].upper() == "BEGIN":
                if (len(tokens) < 3 or not _INT_RE.match(tokens[1])
                        or not _is_float_token(tokens[2])):
                    raise ReaderError(f"{path}: line {lineno}: malformed block header "
                                      f"{raw.strip()!r}; expected '## BEGIN <count> <TPHYS Myr>'")
                current = _RawBlock(lineno, float(tokens[2]), int(tokens[1]), marked=True)
                blocks.append(current)
            elif tokens and tokens[0].upper() == "END":
                if current is None or not current.marked:
                    raise ReaderError(f"{path}: line {lineno}: '## END' without '## BEGIN'")
                current.ended = True
                if len(tokens) > 1 and _INT_RE.match(tokens[1]):
                    current.end_count = int(tokens[1])
                current = None
            else:
                raise ReaderError(f"{path}: line {lineno}: unknown marker line {raw.strip()!r}")
            continue
        tokens = text.translate(_D_EXP).split()
        if (len(tokens) == 2 and _INT_RE.match(tokens[0]) and _is_float_token(tokens[1])
                and (current is None or not current.marked)):
            current = _RawBlock(lineno, float(tokens[1]), int(tokens[0]))
            blocks.append(current)
            continue
        if current is None:
            current = _RawBlock(lineno)
            blocks.append(current)
        current.rows.append(tokens)
        current.row_lines.append(lineno)
        current.texts.append(raw.translate(_D_EXP))
    return blocks


def _block_layout(block: _RawBlock, kind: str, path: Path):
    layouts = _SEV_LAYOUTS if kind == "sev" else _BEV_LAYOUTS
    if block.marked:
        return "nbody6"
    if not block.rows:
        return None
    first = block.rows[0]
    for lname, (ntok, ttot_col, _) in layouts.items():
        if len(first) != ntok:
            continue
        if ntok == 7 and kind == "sev":
            # 7 tokens: NBODY6 rows start with the integer NAME, old NBODY6++ rows with TTOT
            is_int = bool(_INT_RE.match(first[0]))
            if (lname == "nbody6") != is_int:
                continue
        return lname
    expected = ", ".join(f"{v[0]} ({k})" for k, v in layouts.items())
    raise ReaderError(
        f"{path}: line {block.row_lines[0]}: {len(first)} columns; a "
        f"{kind}.8{3 if kind == 'sev' else 2} row has {expected} columns"
    )


def _convert_block(block: _RawBlock, kind: str, path: Path) -> HRBlock | None:
    lname = _block_layout(block, kind, path)
    if lname is None:
        return HRBlock(tphys=block.tphys, ttot=None, name=np.zeros(0, np.int64),
                       kstar=np.zeros(0, np.int64), mass=np.zeros(0), log_luminosity=np.zeros(0),
                       log_radius=np.zeros(0), layout="empty", line=block.line,
                       complete=block.ended)
    layouts = _SEV_LAYOUTS if kind == "sev" else _BEV_LAYOUTS
    ntok, ttot_col, comps = layouts[lname]
    rows = block.rows
    bad = [i for i, r in enumerate(rows) if len(r) != ntok]
    if bad and lname == "nbody6":
        for i in bad:  # fields that touch: read the NBODY6 fixed-width FORMAT
            rows[i] = _fixed_split(block.texts[i], _FIXED[kind])
        bad = [i for i, r in enumerate(rows) if len(r) != ntok or "" in r]
    if bad:
        i = bad[0]
        raise ReaderError(
            f"{path}: line {block.row_lines[i]}: {len(rows[i])} columns, expected {ntok} "
            f"({kind} layout '{lname}' of the block starting at line {block.line}); "
            "truncated or malformed row"
        )
    try:
        arr = np.array(rows, dtype=np.float64)
    except ValueError:
        for i, r in enumerate(rows):
            for j, tok in enumerate(r):
                if not _is_float_token(tok):
                    raise ReaderError(
                        f"{path}: line {block.row_lines[i]}, column {j + 1}: {tok!r} is not a "
                        "number (Fortran writes '***' when a value overflows its field)"
                    ) from None
        raise
    if arr.ndim != 2:
        arr = arr.reshape(len(rows), ntok)
    names, kws, masses, logl, logr = [], [], [], [], []
    for (c_name, c_kw, c_m, c_l, c_r) in comps:
        names.append(arr[:, c_name])
        kws.append(arr[:, c_kw])
        masses.append(arr[:, c_m])
        logl.append(arr[:, c_l])
        logr.append(arr[:, c_r])
    name = np.concatenate(names)
    kstar = np.concatenate(kws)
    for label, values, limit in (("NAME", name, 2.0**62), ("KW", kstar, 2.0**15 - 1)):
        nonint = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > limit)
        if nonint.any():
            i = int(np.flatnonzero(nonint)[0]) % len(rows)
            raise ReaderError(f"{path}: line {block.row_lines[i]}: {label} is not an integer "
                              f"(or is out of range)")
    ttot = None
    if ttot_col is not None:
        t = arr[:, ttot_col]
        ttot = float(t[0])
        spread = np.abs(t - ttot) > 1e-4 * max(1.0, abs(ttot))
        if spread.any():
            i = int(np.flatnonzero(spread)[0])
            raise ReaderError(
                f"{path}: line {block.row_lines[i]}: TTOT {t[i]!r} differs from the block's "
                f"first row ({ttot!r}); expected one output time per block"
            )
    return HRBlock(tphys=block.tphys, ttot=ttot, name=name.astype(np.int64),
                   kstar=kstar.astype(np.int64), mass=np.concatenate(masses),
                   log_luminosity=np.concatenate(logl), log_radius=np.concatenate(logr),
                   layout=lname, line=block.line, complete=block.ended)


def read_hr_file(path, *, kind: str = "sev") -> list[HRBlock]:
    """Read an NBODY6 ``sev.83``/``fort.83`` (``kind='sev'``) or ``bev.82``/``fort.82``
    (``kind='bev'``) HR-diagram file.

    Parameters
    ----------
    path : str or os.PathLike
        The formatted file (gzip allowed).
    kind : {'sev', 'bev'}
        Single-star or binary file.

    Returns
    -------
    list of HRBlock
        One block per output time, in file order. Masses Msun; log10 L/Lsun; log10 R/Rsun.

    Raises
    ------
    ReaderError
        On rows of the wrong width, non-numeric fields, or blocks whose rows disagree in time.
    """
    if kind not in ("sev", "bev"):
        raise ValueError(f"kind must be 'sev' or 'bev', got {kind!r}")
    path = as_path(path)
    size = check_readable(path)
    if size == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected an NBODY6 {kind} HR file")
    lines = read_text(path, expected=f"an NBODY6 {kind}.8{3 if kind == 'sev' else 2} file"
                      ).splitlines()
    blocks = _segment(lines, path)
    out = []
    for b in blocks:
        hr = _convert_block(b, kind, path)
        if b.marked and b.ended and b.end_count is not None and b.end_count != len(b.rows):
            raise ReaderError(
                f"{path}: block at line {b.line}: '## END' counts {b.end_count} rows but "
                f"{len(b.rows)} were read"
            )
        out.append(hr)
    return out


# --------------------------------------------------------------------------------------------
# joining
# --------------------------------------------------------------------------------------------


def find_sibling(path, kind: str) -> list[Path]:
    """Candidate names of the ``sev.83`` (``kind='sev'``) or ``bev.82`` (``kind='bev'``) file
    written with a ``conf.3``/``OUT3`` file, existing or not, best first.

    ``conf.3_100`` -> ``sev.83_100``; ``OUT3`` -> ``fort.83``, ``sev.83``; a suffix after the
    first ``_`` is kept (``run_100`` -> ``sev.83_100``).
    """
    path = as_path(path)
    unit = "83" if kind == "sev" else "82"
    stem = f"{kind}.{unit}"
    name = path.name
    cands = []
    if "conf.3" in name:
        cands.append(name.replace("conf.3", stem, 1))
    if "OUT3" in name.upper():
        cands += [name.upper().replace("OUT3", stem), f"fort.{unit}", stem]
    if "_" in name:
        cands.append(f"{stem}_{name.split('_', 1)[1]}")
    cands += [f"fort.{unit}", stem]
    seen, out = set(), []
    for c in cands:
        if c not in seen and c != name:
            seen.add(c)
            out.append(path.parent / c)
    return out


def _time_matches(block: HRBlock, ttot: float, tphys: float) -> float:
    """Mismatch of a block's time in units of its tolerance (<= 1 means same time)."""
    if block.ttot is not None:
        return abs(block.ttot - ttot) / (1e-4 * max(1.0, abs(ttot)))
    if block.tphys is not None:
        return abs(block.tphys - tphys) / (0.051 + 1e-5 * abs(tphys))
    return np.inf


def _pick_block(blocks, ttot, tphys, check_time, path, kind):
    usable = [b for b in blocks if b.layout != "empty" or b.tphys is not None]
    if not usable:
        raise ReaderError(f"{path}: holds no {kind} rows")
    if len(usable) == 1:
        block = usable[0]
        miss = _time_matches(block, ttot, tphys)
        if check_time and np.isfinite(miss) and miss > 1:
            raise ReaderError(
                f"{path}: its output time ({_describe_time(block)}) does not match the snapshot "
                f"(TTOT = {ttot:g}, {tphys:g} Myr); pass the matching file or check_time=False"
            )
    else:
        misses = [_time_matches(b, ttot, tphys) for b in usable]
        best = int(np.argmin(misses))
        block = usable[best]
        if check_time and not misses[best] <= 1:
            times = ", ".join(_describe_time(b) for b in usable[:8])
            raise ReaderError(
                f"{path}: no block at the snapshot time (TTOT = {ttot:g}, {tphys:g} Myr); "
                f"blocks are at {times}{' ...' if len(usable) > 8 else ''}"
            )
    if not block.complete:
        raise ReaderError(f"{path}: the block at line {block.line} is truncated (no '## END')")
    return block


def _describe_time(block: HRBlock) -> str:
    if block.ttot is not None:
        return f"TTOT = {block.ttot:g}"
    if block.tphys is not None:
        return f"{block.tphys:g} Myr"
    return "unknown time"


def read_nbody6(path, *, sev=None, bev=None, index: int | None = None, missing: str = "raise",
                check_time: bool = True, time=None, name=None) -> Snapshot:
    """Read an NBODY6/NBODY6++ snapshot: ``conf.3``/``OUT3`` joined by NAME with ``sev.83``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``OUT3`` or ``conf.3_<time>`` file (Fortran unformatted; layouts in the module
        docstring).
    sev : str or os.PathLike, optional
        The single-star HR file. When None, a sibling is looked for (``conf.3_100`` ->
        ``sev.83_100``; ``OUT3`` -> ``fort.83``/``sev.83``); its absence is an error, since
        luminosities and radii are required.
    bev : str, os.PathLike or False, optional
        The binary HR file giving L and R of KS-binary components. None looks for a sibling
        (``bev.82_100``, ``fort.82``) and uses it when present; False never reads one.
    index : int, optional
        Which snapshot of a multi-snapshot ``OUT3`` file (0-based, negative from the end).
    missing : {'raise', 'drop'}
        What to do with stars of the snapshot that have no row in the HR files: raise a
        ReaderError listing them, or drop them (their number goes to ``meta['n_missing_hr']``).
    check_time : bool
        Require the HR block's time to match the snapshot's (TTOT to 1e-4, or TPHYS to 0.05 Myr).
    time : float or astropy.units.Quantity, optional
        Override the snapshot time (Gyr); default TTOT*TSTAR Myr.
    name : str, optional
        Snapshot label; default the file name.

    Returns
    -------
    Snapshot
        Positions pc (as written: not re-centred; the density centre is in ``meta['rdens_pc']``),
        velocities km/s, masses Msun (from ``conf.3``), radii Rsun, luminosities Lsun, kstar, time
        Gyr.

    Raises
    ------
    ReaderError
        For malformed, truncated or inconsistent files, a missing HR file, unmatched stars
        (``missing='raise'``) or values the Snapshot rejects; the message names the file.

    Examples
    --------
    >>> snap = read_nbody6("conf.3_100", sev="sev.83_100")     # doctest: +SKIP
    """
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop', got {missing!r}")
    path = as_path(path)
    conf = read_conf3(path, index=index)
    _check_scales(conf, path)
    ttot = conf.ttot
    tphys = ttot * conf.tstar

    n_single_and_components = conf.ntot - conf.npairs
    keep = np.zeros(conf.ntot, dtype=bool)
    keep[:n_single_and_components] = True
    bad_mass = ~np.isfinite(conf.mass) | (conf.mass < 0)
    if (bad_mass & keep).any():
        row = int(np.flatnonzero(bad_mass & keep)[0])
        raise ReaderError(
            f"{path}: BODYS({row + 1}) (NAME {conf.name[row]}) is {float(conf.mass[row])!r}; "
            "expected a mass >= 0"
        )
    massless = keep & (conf.mass == 0)
    keep &= conf.mass > 0
    idx = np.flatnonzero(keep)
    star_names = conf.name[idx]
    dup = _first_duplicate(star_names)
    if dup is not None:
        raise ReaderError(f"{path}: NAME {dup} appears more than once among the stars")

    # HR files
    if sev is None:
        cands = find_sibling(path, "sev")
        found = [c for c in cands if c.is_file()]
        if not found:
            raise ReaderError(
                f"{path}: no sev.83 file found next to it (looked for "
                f"{', '.join(c.name for c in cands)}); luminosities and radii are required: "
                "pass sev="
            )
        sev_path = found[0]
    else:
        sev_path = as_path(sev)
    blocks = [_pick_block(read_hr_file(sev_path, kind="sev"), ttot, tphys, check_time, sev_path,
                          "sev")]
    bev_path = None
    if bev is None:
        found = [c for c in find_sibling(path, "bev") if c.is_file()]
        bev_path = found[0] if found else None
    elif bev is not False:
        bev_path = as_path(bev)
    if bev_path is not None:
        bev_blocks = read_hr_file(bev_path, kind="bev")
        if any(b.name.size for b in bev_blocks):
            blocks.append(_pick_block(bev_blocks, ttot, tphys, check_time, bev_path, "bev"))

    hr_name = np.concatenate([b.name for b in blocks])
    hr_kw = np.concatenate([b.kstar for b in blocks])
    hr_logl = np.concatenate([b.log_luminosity for b in blocks])
    hr_logr = np.concatenate([b.log_radius for b in blocks])
    dup = _first_duplicate(hr_name)
    if dup is not None:
        files = " and ".join(str(p) for p in (sev_path, bev_path) if p is not None)
        raise ReaderError(f"{files}: NAME {dup} has more than one row at this time")
    order = np.argsort(hr_name, kind="stable")
    sorted_names = hr_name[order]
    if sorted_names.size:
        pos_in = np.clip(np.searchsorted(sorted_names, star_names), 0, sorted_names.size - 1)
        found = sorted_names[pos_in] == star_names
    else:
        pos_in = np.zeros(star_names.size, dtype=np.int64)
        found = np.zeros(star_names.size, dtype=bool)
    n_missing = int((~found).sum())
    if n_missing and missing == "raise":
        listed = ", ".join(str(int(n)) for n in star_names[~found][:10])
        where = f"{sev_path}" + (f" or {bev_path}" if bev_path is not None else "")
        raise ReaderError(
            f"{path}: {n_missing} of {star_names.size} stars have no row in {where} "
            f"(NAME {listed}{' ...' if n_missing > 10 else ''}); binary components are in "
            "bev.82 (pass bev=), or pass missing='drop'"
        )
    idx = idx[found]
    hr_rows = order[pos_in[found]]

    with np.errstate(over="ignore"):  # overflow -> inf, rejected by Snapshot with the column
        luminosity = 10.0 ** hr_logl[hr_rows]
        radius = 10.0 ** hr_logr[hr_rows]
    meta = {
        "source": str(path),
        "source_format": "nbody6",
        "layout": conf.layout,
        "float_bytes": conf.float_bytes,
        "sev_file": str(sev_path),
        "bev_file": str(bev_path) if bev_path is not None else None,
        "ttot_nbody": ttot,
        "tphys_myr": tphys,
        "rbar_pc": conf.rbar,
        "zmbar_msun": conf.zmbar,
        "tstar_myr": conf.tstar,
        "vstar_kms": conf.vstar,
        "rdens_pc": [float(v) * conf.rbar for v in conf.rdens],
        "nrun": conf.nrun,
        "model": conf.model,
        "npairs": conf.npairs,
        "n_centre_of_mass_dropped": conf.npairs,
        "n_massless_dropped": int(massless.sum()),
        "n_missing_hr": n_missing,
    }
    snap_time = to_gyr(tphys, where=str(path), default_unit=u.Myr) if time is None else \
        to_gyr(time, where=str(path))
    try:
        return Snapshot(
            x=conf.pos[idx, 0] * conf.rbar,
            y=conf.pos[idx, 1] * conf.rbar,
            z=conf.pos[idx, 2] * conf.rbar,
            vx=conf.vel[idx, 0] * conf.vstar,
            vy=conf.vel[idx, 1] * conf.vstar,
            vz=conf.vel[idx, 2] * conf.vstar,
            mass=conf.mass[idx] * conf.zmbar,
            radius=radius,
            luminosity=luminosity,
            kstar=hr_kw[hr_rows],
            time=snap_time,
            name=path.name if name is None else name,
            meta=meta,
        )
    except SnapshotError as exc:
        raise ReaderError(f"{path} (with {sev_path}): {exc}") from exc


def _first_duplicate(values: np.ndarray):
    if values.size < 2:
        return None
    s = np.sort(values)
    d = np.flatnonzero(s[1:] == s[:-1])
    return int(s[d[0]]) if d.size else None

