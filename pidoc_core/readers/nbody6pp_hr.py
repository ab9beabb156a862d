"""NBODY6 / NBODY6++ / NBODY6++GPU HR-diagram files: ``sev.83`` (single stars) and ``bev.82``
(KS binaries), in every released layout.

Each layout is recognised from the file's own structure -- a ``## BEGIN`` block marker, the block
header lines, and the number of columns of its rows -- never by guessing; a row with a column
count no layout has is refused with the layouts that exist. Column names and Fortran FORMATs as in
the public sources (``code`` search corpus):

``sev.83`` (``SUBROUTINE HRPLOT``, unit 83)

=====================  =======  ===================================================================
layout                 columns  rows, FORMAT, source
=====================  =======  ===================================================================
``nbody6``             7        ``NAME KW RI M1 logL logR logTe`` -- ``(I10,I4,5F10.3)`` inside
                                ``## BEGIN NS TPHYS`` / ``## END NS`` blocks; all times appended to
                                ``fort.83`` (``nbodyx/Nbody6: Ncode/hrplot.f``)
``nbody6++``           7        ``TTOT NAME KW RI M1 logL logR`` -- ``(1P,D15.7,I8,I5,4D15.5)``
                                after an ``NS TPHYS`` line (old NBODY6++ ``hrplot.f``)
``nbody6++gpu``        9        ``TTOT I NAME KW RI M1 logL logR logTe`` --
                                ``(1X,1P,E12.5,2I8,I3,5E13.5)`` after ``NS TPHYS`` (``I8,F9.1``);
                                one file ``sev.83_<TTOT>`` per output time
                                (``nbodyx/Nbody6ppGPU`` and ``nbody6ppgpu/Nbody6PPGPU-beijing``
                                ``src/Main/hrplot.F`` up to 2021)
``nbody6++gpu-2021``   11       ``TTOT I NAME KW RI M1 logL logR logTe AGE EPOCH`` --
                                ``(1X,1P,E13.5,2I8,I3,7E13.5)`` (``hrplot.F`` of the Aug 2021
                                release; the WRITE kept as a comment in later Beijing-line
                                ``hrplot.F``, e.g. ``yuzhesong/NBODY6ppGPU``)
``nbody6++gpu-hurley`` 14       ``I NAME KW M1 logL logR X1 X2 X3 V1 V2 V3 EPOCH OSPIN`` --
                                ``(2I7,I3,3F8.3,1P,6E14.6,0P,F12.3,1P,E12.4)`` after three header
                                lines ``NS TPHYS`` / ``NC RC RBAR RTIDE RDENS(1:3)`` /
                                ``ZMBAR TURN RSCALE`` (newer builds, "Jarrod's standard output":
                                ``yuzhesong/NBODY6ppGPU``, ``jandersonb/Nbody6PPGPU-beijing``)
=====================  =======  ===================================================================

``bev.82`` (same routine, unit 82; header ``NPAIRS TPHYS``)

=====================  =======  ===================================================================
``nbody6``             17       ``NAME1 NAME2 KW1 KW2 KWCM RI ECC logP loga M1 M2 logL1 logL2 logR1
                                logR2 logTe1 logTe2`` -- ``(2I6,2I3,I4,F6.1,F6.3,10F7.3)``
``nbody6++``           16       ``TTOT NAME1 NAME2 KW1 KW2 KWCM RI ECC logP loga M1 M2 logL1 logL2
                                logR1 logR2``
``nbody6++gpu``        20       ``TTOT J1 J2 NAME1 NAME2 KW1 KW2 KWCM RI ECC logP loga M1 M2 logL1
                                logL2 logR1 logR2 logTe1 logTe2`` --
                                ``(1X,1P,E13.5,4I8,2I3,I4,6E13.5,6E13.5)``
``nbody6++gpu-2021``   24       the 20 above, then ``AGE1 AGE2 EPOCH1 EPOCH2`` --
                                ``(1X,1P,E13.5,4I8,2I3,I4,6E13.5,10E13.5)``
``nbody6++gpu-hurley`` 26       ``J1 J2 NAME1 NAME2 KW1 KW2 KWCM ECC logP loga M1 M2 logL1 logL2
                                logR1 logR2 XC1 XC2 XC3 VC1 VC2 VC3 EPOCH1 EPOCH2 OSPIN1
                                OSPIN2`` -- ``(4I7,2I3,I4,F6.3,F10.2,7F8.3,1P,6E14.6,0P,2F12.3,
                                1P,2E12.4)``
=====================  =======  ===================================================================

Units: M1 Msun, log L = log10(L/Lsun), log R = log10(R/Rsun), log Te = log10(Teff/K), TTOT N-body
time, TPHYS/AGE/EPOCH Myr. Teff is *not* taken from the files (NBODY6 writes it with a solar log Teff
of 3.7, NBODY6++ with 3.7618); the Snapshot derives it from L and R with 5772 K.

Checks that stop a silent mis-parse: integer columns must hold integers, ``KW`` must be an SSE type,
``log Te`` (where written) must equal ``0.25 (log L - 2 log R) + C`` with the code's constant
``C``, and log L, log R lie in physical ranges; a failing check names the line, column and value.
Fixed-width reading (for Fortran fields that touch) is used only when a row has *fewer*
whitespace-separated fields than its layout, and only when the fields fill the row exactly.
Rows with ``NaN`` (gfortran's output for LOG10 of a bad value) are flagged, not read as numbers;
the caller reports or drops them (``missing=``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import ReaderError, as_path, check_readable, read_text

__all__ = ["HRLayout", "HRBlock", "SEV_LAYOUTS", "BEV_LAYOUTS", "read_hr_file", "looks_like_hr"]


@dataclass(frozen=True)
class HRLayout:
    """One row layout of a ``sev.83``/``bev.82`` file.

    Attributes
    ----------
    name : str
        Layout name (see the module docstring).
    columns : tuple of str
        Column names in file order.
    widths : tuple of int or None
        Fortran field widths (for rows whose fields touch), None where not needed.
    teff_zero : tuple of float
        The constants ``C`` of ``log Te = 0.25 (log L - 2 log R) + C`` the codes used.
    """

    name: str
    columns: tuple[str, ...]
    widths: tuple[int, ...] | None = None
    teff_zero: tuple[float, ...] = (3.7, 3.761777, 3.761777537508)

    @property
    def ncol(self) -> int:
        return len(self.columns)

    def index(self, column: str) -> int:
        return self.columns.index(column)


def _cols(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SEV_COMMON = "TTOT I NAME KW RI M1 LOGL LOGR LOGTE"
_BEV_COMMON = ("TTOT J1 J2 NAME1 NAME2 KW1 KW2 KWCM RI ECC LOGP LOGA M1 M2 LOGL1 LOGL2 LOGR1 LOGR2 "
               "LOGTE1 LOGTE2")

#: ``sev.83`` layouts, keyed by name.
SEV_LAYOUTS: dict[str, HRLayout] = {
    "nbody6": HRLayout("nbody6", _cols("NAME KW RI M1 LOGL LOGR LOGTE"), (10, 4) + (10,) * 5),
    "nbody6++": HRLayout("nbody6++", _cols("TTOT NAME KW RI M1 LOGL LOGR"),
                         (15, 8, 5) + (15,) * 4),
    "nbody6++gpu": HRLayout("nbody6++gpu", _cols(_SEV_COMMON), (13, 8, 8, 3) + (13,) * 5),
    "nbody6++gpu-2021": HRLayout("nbody6++gpu-2021", _cols(_SEV_COMMON + " AGE EPOCH"),
                                 (14, 8, 8, 3) + (13,) * 7),
    "nbody6++gpu-hurley": HRLayout(
        "nbody6++gpu-hurley", _cols("I NAME KW M1 LOGL LOGR X1 X2 X3 V1 V2 V3 EPOCH OSPIN"),
        (7, 7, 3, 8, 8, 8) + (14,) * 6 + (12, 12)),
}
#: ``bev.82`` layouts, keyed by name.
BEV_LAYOUTS: dict[str, HRLayout] = {
    "nbody6": HRLayout("nbody6", _cols("NAME1 NAME2 KW1 KW2 KWCM RI ECC LOGP LOGA M1 M2 LOGL1 "
                                       "LOGL2 LOGR1 LOGR2 LOGTE1 LOGTE2"),
                       (6, 6, 3, 3, 4, 6, 6) + (7,) * 10),
    "nbody6++": HRLayout("nbody6++", _cols("TTOT NAME1 NAME2 KW1 KW2 KWCM RI ECC LOGP LOGA M1 M2 "
                                           "LOGL1 LOGL2 LOGR1 LOGR2")),
    "nbody6++gpu": HRLayout("nbody6++gpu", _cols(_BEV_COMMON), (14, 8, 8, 8, 8, 3, 3, 4)
                            + (13,) * 12),
    "nbody6++gpu-2021": HRLayout("nbody6++gpu-2021", _cols(_BEV_COMMON + " AGE1 AGE2 EPOCH1 "
                                                                         "EPOCH2"),
                                 (14, 8, 8, 8, 8, 3, 3, 4) + (13,) * 16),
    "nbody6++gpu-hurley": HRLayout(
        "nbody6++gpu-hurley",
        _cols("J1 J2 NAME1 NAME2 KW1 KW2 KWCM ECC LOGP LOGA M1 M2 LOGL1 LOGL2 LOGR1 LOGR2 XC1 XC2 "
              "XC3 VC1 VC2 VC3 EPOCH1 EPOCH2 OSPIN1 OSPIN2"),
        (7, 7, 7, 7, 3, 3, 4, 6, 10) + (8,) * 7 + (14,) * 6 + (12,) * 4),
}

_INT_COLUMNS = {"I", "NAME", "KW", "J1", "J2", "NAME1", "NAME2", "KW1", "KW2", "KWCM"}
#: Physical ranges that catch a column read in the wrong place (log10 of L/Lsun and R/Rsun).
_LOGL_RANGE = (-12.0, 9.0)
_LOGR_RANGE = (-9.0, 6.0)
_KW_RANGE = (-1, 15)

_INT_RE = re.compile(r"^[+-]?\d+$")
_D_EXP = str.maketrans({"D": "E", "d": "e"})


@dataclass(frozen=True, eq=False)
class HRBlock:
    """One output time of a ``sev.83``/``bev.82`` file: stellar properties by NAME.

    Binary rows of ``bev.82`` contribute both components (``name`` holds NAME1 then NAME2).

    Attributes
    ----------
    tphys : float or None
        Block header time, Myr (None when the block has no header).
    ttot : float or None
        Time in N-body units from the rows (None for layouts without TTOT).
    name, kstar : numpy.ndarray
        int64 star names and SSE types KW.
    mass : numpy.ndarray
        Masses, Msun.
    log_luminosity, log_radius : numpy.ndarray
        log10 L/Lsun and log10 R/Rsun (NaN where the file wrote NaN).
    valid : numpy.ndarray
        False for entries whose row holds NaN (see ``missing=`` of the reader).
    lines : numpy.ndarray
        1-based line number of each entry's row.
    layout : str
        Which row layout was read.
    line : int
        1-based line number where the block starts.
    complete : bool
        False for an NBODY6 block without its ``## END`` line (file cut off).
    header : dict
        Extra header values (``nbody6++gpu-hurley``: NC, RC, RBAR, RTIDE, RDENS, ZMBAR, TURN,
        RSCALE).
    extra : dict
        Other named per-entry columns of the layout (e.g. ``AGE``, ``EPOCH``, Myr).
    """

    tphys: float | None
    ttot: float | None
    name: np.ndarray
    kstar: np.ndarray
    mass: np.ndarray
    log_luminosity: np.ndarray
    log_radius: np.ndarray
    valid: np.ndarray
    lines: np.ndarray
    layout: str
    line: int
    complete: bool = True
    header: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


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
        self.header_lines: list[list[str]] = []


def _is_float_token(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _marker_line(text, lineno, raw, current, blocks, path):
    tokens = text[2:].split()
    if tokens and tokens[0].upper() == "BEGIN":
        if len(tokens) < 3 or not _INT_RE.match(tokens[1]) or not _is_float_token(tokens[2]):
            raise ReaderError(f"{path}: line {lineno}: malformed block header {raw.strip()!r}; "
                              "expected '## BEGIN <count> <TPHYS Myr>'")
        block = _RawBlock(lineno, float(tokens[2]), int(tokens[1]), marked=True)
        blocks.append(block)
        return block
    if tokens and tokens[0].upper() == "END":
        if current is None or not current.marked:
            raise ReaderError(f"{path}: line {lineno}: '## END' without '## BEGIN'")
        current.ended = True
        if len(tokens) > 1 and _INT_RE.match(tokens[1]):
            current.end_count = int(tokens[1])
        return None
    raise ReaderError(f"{path}: line {lineno}: unknown marker line {raw.strip()!r}")


def _segment(lines, path: Path, kind: str) -> list[_RawBlock]:
    blocks: list[_RawBlock] = []
    current = None
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("##"):
            current = _marker_line(text, lineno, raw, current, blocks, path)
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
        if _is_hurley_header(kind, current, tokens):
            current.header_lines.append(tokens)
            continue
        current.rows.append(tokens)
        current.row_lines.append(lineno)
        current.texts.append(raw.translate(_D_EXP).rstrip("\r\n"))
    return blocks


def _is_hurley_header(kind, block, tokens) -> bool:
    """The two extra header lines of the ``nbody6++gpu-hurley`` sev.83 (FORMATs 102 and 103)."""
    if kind != "sev" or block.marked or block.rows or block.declared is None:
        return False
    if not block.header_lines:
        return (len(tokens) == 7 and bool(_INT_RE.match(tokens[0]))
                and all(_is_float_token(t) for t in tokens))
    return (len(block.header_lines) == 1 and len(tokens) == 3
            and all(_is_float_token(t) for t in tokens))


def _layout_for(block: _RawBlock, kind: str, path: Path) -> HRLayout | None:
    layouts = SEV_LAYOUTS if kind == "sev" else BEV_LAYOUTS
    if block.marked:
        return layouts["nbody6"]
    if not block.rows:
        return None
    if block.header_lines:
        if len(block.header_lines) != 2:
            raise ReaderError(f"{path}: block at line {block.line}: incomplete "
                              "nbody6++gpu-hurley header (expected the lines 'NC RC RBAR RTIDE "
                              "RDENS(1:3)' and 'ZMBAR TURN RSCALE')")
        return layouts["nbody6++gpu-hurley"]
    first = block.rows[0]
    hits = [lay for lay in layouts.values() if lay.ncol == len(first)]
    if kind == "sev" and len(first) == 7:
        # 7 columns: NBODY6 rows (in '## BEGIN' blocks, handled above) start with the integer
        # NAME, old NBODY6++ rows with the time TTOT written with an exponent
        hits = [layouts["nbody6++"]] if not _INT_RE.match(first[0]) else []
    if kind == "sev" and len(first) == 14:
        hits = []  # the 14-column layout always comes with its two extra header lines
    if len(hits) == 1:
        return hits[0]
    expected = "; ".join(f"{lay.ncol} ({lay.name})" for lay in layouts.values())
    raise ReaderError(
        f"{path}: line {block.row_lines[0]}: {len(first)} columns, which is no released "
        f"{kind}.8{3 if kind == 'sev' else 2} layout; expected {expected} columns (the "
        "14-column sev.83 layout after its 3-line header, the 7-column NBODY6 one inside "
        "'## BEGIN' blocks)"
    )


def _fixed_split(line: str, widths) -> list[str] | None:
    """Fields of a Fortran fixed-width row, or None when the widths do not fill the row."""
    out, pos = [], 0
    for w in widths:
        out.append(line[pos:pos + w].strip())
        pos += w
    if line[pos:].strip() or any(not f for f in out):
        return None
    return out


def _check_widths(block: _RawBlock, lay: HRLayout, kind: str, path: Path) -> None:
    for i, row in enumerate(block.rows):
        if len(row) == lay.ncol:
            continue
        fixed = None
        if len(row) < lay.ncol and lay.widths is not None:
            fixed = _fixed_split(block.texts[i], lay.widths)
        if fixed is None:
            raise ReaderError(
                f"{path}: line {block.row_lines[i]}: {len(row)} columns, expected {lay.ncol} "
                f"({kind} layout '{lay.name}' of the block starting at line {block.line}: "
                f"{' '.join(lay.columns)}); truncated, malformed or extra columns"
            )
        block.rows[i] = fixed


def _to_array(block: _RawBlock, lay: HRLayout, path: Path) -> np.ndarray:
    for i, row in enumerate(block.rows):
        for j, tok in enumerate(row):
            column = lay.columns[j]
            if column in _INT_COLUMNS:
                ok = bool(_INT_RE.match(tok))
            else:
                ok = _is_float_token(tok)
            if not ok:
                what = "an integer" if column in _INT_COLUMNS else "a number"
                raise ReaderError(
                    f"{path}: line {block.row_lines[i]}, column {j + 1} ({column}): {tok!r} is "
                    f"not {what} ('{lay.name}' layout; Fortran writes '***' when a value "
                    "overflows its field)"
                )
    return np.array(block.rows, dtype=np.float64).reshape(len(block.rows), lay.ncol)


def _check_values(arr, lay: HRLayout, block: _RawBlock, path: Path) -> None:
    """Range and Stefan-Boltzmann checks that catch columns read in the wrong place."""
    def fail(mask, column, rule):
        i = int(np.flatnonzero(mask)[0])
        value = float(arr[i, lay.index(column)])
        raise ReaderError(
            f"{path}: line {block.row_lines[i]}, column {lay.index(column) + 1} ({column}): "
            f"{value!r} {rule}; the row does not fit the '{lay.name}' layout "
            f"({' '.join(lay.columns)})"
        )

    for suffix in ("", "1", "2"):
        if f"KW{suffix}" not in lay.columns:
            continue
        kw = arr[:, lay.index(f"KW{suffix}")]
        bad = (kw < _KW_RANGE[0]) | (kw > _KW_RANGE[1])
        if bad.any():
            fail(bad, f"KW{suffix}", f"is not an SSE stellar type {_KW_RANGE[0]}..{_KW_RANGE[1]}")
        logl = arr[:, lay.index(f"LOGL{suffix}")]
        logr = arr[:, lay.index(f"LOGR{suffix}")]
        mass = arr[:, lay.index(f"M{suffix or '1'}" if suffix != "2" else "M2")]
        with np.errstate(invalid="ignore"):
            for column, values, (lo, hi) in ((f"LOGL{suffix}", logl, _LOGL_RANGE),
                                             (f"LOGR{suffix}", logr, _LOGR_RANGE)):
                bad = np.isfinite(values) & ((values < lo) | (values > hi))
                if bad.any():
                    fail(bad, column, f"is outside {lo:g}..{hi:g} (log10 of solar units)")
            bad = np.isfinite(mass) & (mass < 0)
            if bad.any():
                fail(bad, f"M{suffix or '1'}" if suffix != "2" else "M2", "is a negative mass")
            if f"LOGTE{suffix}" in lay.columns:
                te = arr[:, lay.index(f"LOGTE{suffix}")]
                base = 0.25 * (logl - 2.0 * logr)
                miss = np.min([np.abs(te - base - c) for c in lay.teff_zero], axis=0)
                bad = np.isfinite(miss) & (miss > 0.003)
                if bad.any():
                    fail(bad, f"LOGTE{suffix}", "does not equal 0.25 (log L - 2 log R) + C with "
                         f"C in {lay.teff_zero}, as hrplot writes it")


def _components(lay: HRLayout) -> list[tuple[str, str, str, str, str]]:
    if "NAME" in lay.columns:
        return [("NAME", "KW", "M1", "LOGL", "LOGR")]
    return [("NAME1", "KW1", "M1", "LOGL1", "LOGR1"), ("NAME2", "KW2", "M2", "LOGL2", "LOGR2")]


def _block_ttot(arr, lay, block, path):
    if "TTOT" not in lay.columns:
        return None
    t = arr[:, lay.index("TTOT")]
    ttot = float(t[0])
    spread = np.abs(t - ttot) > 1e-4 * max(1.0, abs(ttot))
    if spread.any():
        i = int(np.flatnonzero(spread)[0])
        raise ReaderError(f"{path}: line {block.row_lines[i]}: TTOT {t[i]!r} differs from the "
                          f"block's first row ({ttot!r}); expected one output time per block")
    return ttot


def _empty_block(block: _RawBlock) -> HRBlock:
    z = np.zeros(0)
    return HRBlock(tphys=block.tphys, ttot=None, name=z.astype(np.int64),
                   kstar=z.astype(np.int64), mass=z, log_luminosity=z, log_radius=z,
                   valid=z.astype(bool), lines=z.astype(np.int64), layout="empty",
                   line=block.line, complete=block.ended)


def _convert_block(block: _RawBlock, kind: str, path: Path) -> HRBlock:
    lay = _layout_for(block, kind, path)
    if lay is None:
        return _empty_block(block)
    _check_widths(block, lay, kind, path)
    arr = _to_array(block, lay, path)
    _check_values(arr, lay, block, path)
    comps = _components(lay)
    cols = {key: np.concatenate([arr[:, lay.index(c[k])] for c in comps])
            for k, key in enumerate(("name", "kstar", "mass", "logl", "logr"))}
    lines = np.tile(np.asarray(block.row_lines, dtype=np.int64), len(comps))
    valid = np.isfinite(cols["mass"]) & np.isfinite(cols["logl"]) & np.isfinite(cols["logr"])
    extra = {}
    for column in lay.columns:
        if column.rstrip("12") in ("AGE", "EPOCH") and column[-1] not in "12":
            extra[column] = arr[:, lay.index(column)]
    if any(c in lay.columns for c in ("AGE1", "EPOCH1")):
        for base in ("AGE", "EPOCH"):
            if f"{base}1" in lay.columns:
                extra[base] = np.concatenate([arr[:, lay.index(f"{base}1")],
                                              arr[:, lay.index(f"{base}2")]])
    header = {}
    if block.header_lines:
        h1, h2 = (np.array(h, dtype=float) for h in block.header_lines)
        header = dict(NC=int(h1[0]), RC=h1[1], RBAR=h1[2], RTIDE=h1[3], RDENS=h1[4:7].tolist(),
                      ZMBAR=h2[0], TURN=h2[1], RSCALE=h2[2])
    return HRBlock(tphys=block.tphys, ttot=_block_ttot(arr, lay, block, path),
                   name=cols["name"].astype(np.int64), kstar=cols["kstar"].astype(np.int64),
                   mass=cols["mass"], log_luminosity=cols["logl"], log_radius=cols["logr"],
                   valid=valid, lines=lines, layout=lay.name, line=block.line,
                   complete=block.ended, header=header, extra=extra)


def read_hr_file(path, *, kind: str = "sev") -> list[HRBlock]:
    """Read an NBODY6-family ``sev.83``/``fort.83`` (``kind='sev'``) or ``bev.82``/``fort.82``
    (``kind='bev'``) HR-diagram file, in any layout of the module docstring.

    Parameters
    ----------
    path : str or os.PathLike
        The formatted file (gzip or bzip2 compression allowed).
    kind : {'sev', 'bev'}
        Single-star or binary file.

    Returns
    -------
    list of HRBlock
        One block per output time, in file order. Masses Msun; log10 L/Lsun; log10 R/Rsun.

    Raises
    ------
    ReaderError
        On rows of a column count no layout has, non-numeric fields, values that break the
        layout's checks, or blocks whose rows disagree in time; the message names the line and
        column.
    """
    if kind not in ("sev", "bev"):
        raise ValueError(f"kind must be 'sev' or 'bev', got {kind!r}")
    path = as_path(path)
    size = check_readable(path)
    what = f"an NBODY6 {kind}.8{3 if kind == 'sev' else 2} file"
    if size == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected {what}")
    lines = read_text(path, expected=what).splitlines()
    out = []
    for b in _segment(lines, path, kind):
        hr = _convert_block(b, kind, path)
        if b.marked and b.ended and b.end_count is not None and b.end_count != len(b.rows):
            raise ReaderError(f"{path}: block at line {b.line}: '## END' counts {b.end_count} "
                              f"rows but {len(b.rows)} were read")
        out.append(hr)
    return out


def looks_like_hr(text: str) -> str | None:
    """'sev' or 'bev' when ``text`` (the start of a file) is an NBODY6-family HR file, else None.

    Recognised by structure: an NBODY6 ``## BEGIN`` marker, or a 2-value ``N TPHYS`` header line
    followed by a row whose column count is that of a ``sev.83`` or ``bev.82`` layout.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    if lines[0].startswith("## BEGIN"):
        body = [ln for ln in lines[1:4] if not ln.startswith("##")]
        n = len(body[0].split()) if body else 7
        return "bev" if n == 17 else "sev"
    head = lines[0].translate(_D_EXP).split()
    if len(head) != 2 or not _INT_RE.match(head[0]) or not _is_float_token(head[1]) \
            or len(lines) < 2:
        return None
    n = len(lines[1].split())
    if n in (7, 9, 11) or (n == 7 and len(lines) > 2 and len(lines[2].split()) == 3):
        return "sev"
    if n in (16, 17, 20, 24, 26):
        return "bev"
    return None
