"""PeTar ASCII snapshots (``data.<index>`` files).

Layout implemented (public sources, ``code`` search corpus, repository ``lwang-astro/PeTar``)
----------------------------------------------------------------------------------------------

Header line (``tools/analysis/data.py``, class ``PeTarDataHeader``)::

    file_id  N  time                                   (external mode 'none')
    file_id  N  time  xcm ycm zcm  vxcm vycm vzcm      (external mode e.g. 'galpy')

then one particle per line. The leading columns are written by ``ParticleBase::writeAscii``
(``src/particle_base.hpp``) and, with BSE-based stellar evolution, ``StarParameter::writeAscii``
(``bse-interface/bse_interface.h``); Python column names as in ``tools/analysis/data.py``
(``SimpleParticle``, ``BaseParticle``) and ``tools/analysis/bse.py`` (``SSEStarParameter``)::

    0 mass | 1-3 pos.x,y,z | [pos_high.x,y,z if use_mpfrc] | 4-6 vel.x,y,z | 7 binary_state
    8 radius (merger radius, code length) | 9 dm | 10 t_record | 11 t_interrupt        (SE on)
    12 s_type | 13 s_mass0 | 14 s_mass | 15 s_rad [Rsun] | 16 s_mcore | 17 s_rcore | 18 s_spin
    19 s_epoch | 20 s_time [Myr] | 21 s_lum [Lsun]                          (interrupt mode bse)

followed by columns this reader does not need (``r_search``, ``id``, ``mass_bk``, ``status``,
changeover radii, accelerations, potentials, ``n_nb``; their order differs between PeTar versions).

Supported: interrupt modes ``bse``, ``mobse`` and other BSE-based modes (``bseEmp``, ``bdbse``...:
the same ``StarParameter`` columns), with external mode ``none`` or any external mode that writes
the 9-item header (detected from the header), with or without ``use_mpfrc``. Interrupt modes
``none`` and ``base`` write no luminosity, so they cannot make a Snapshot. The binary snapshot
format (``-i`` binary) is not supported.

Units: PeTar's astronomical unit set (``petar -u 1``, required with stellar evolution): masses
Msun, positions pc, velocities pc/Myr (converted: 1 pc/Myr = 0.9778 km/s), time Myr (converted to
Gyr). Stellar radius is ``s_rad`` (Rsun), luminosity ``s_lum`` (Lsun), kstar ``s_type``.
Particles of zero mass (massless remnants, kstar 15) are dropped and counted in
``meta['n_massless_dropped']``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable, read_text, to_gyr

__all__ = ["PeTarHeader", "PETAR_COLUMNS", "read_petar_header", "read_petar", "looks_like_petar"]

#: Column indices (0-based, without ``use_mpfrc``) of the PeTar particle columns this reader uses.
PETAR_COLUMNS: dict[str, int] = {
    "mass": 0,
    "pos.x": 1,
    "pos.y": 2,
    "pos.z": 3,
    "vel.x": 4,
    "vel.y": 5,
    "vel.z": 6,
    "binary_state": 7,
    "radius": 8,
    "dm": 9,
    "t_record": 10,
    "t_interrupt": 11,
    "s_type": 12,
    "s_mass0": 13,
    "s_mass": 14,
    "s_rad": 15,
    "s_mcore": 16,
    "s_rcore": 17,
    "s_spin": 18,
    "s_epoch": 19,
    "s_time": 20,
    "s_lum": 21,
}

_PC_MYR_TO_KMS = float((1 * u.pc / u.Myr).to_value(u.km / u.s))
_INT_RE = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class PeTarHeader:
    """The first line of a PeTar snapshot.

    Attributes
    ----------
    file_id : int
        Snapshot index.
    n : int
        Number of particles.
    time : float
        Snapshot time, Myr (astronomical unit set).
    pos_offset, vel_offset : tuple of float or None
        Cluster centre in the external-potential frame (pc, pc/Myr), when written.
    """

    file_id: int
    n: int
    time: float
    pos_offset: tuple[float, float, float] | None = None
    vel_offset: tuple[float, float, float] | None = None


def _float(tok: str) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def _parse_header_line(line: str) -> PeTarHeader | None:
    tokens = line.split()
    if len(tokens) not in (3, 9) or not _INT_RE.match(tokens[0]) or not _INT_RE.match(tokens[1]):
        return None
    values = [_float(t) for t in tokens[2:]]
    if any(v is None for v in values):
        return None
    n = int(tokens[1])
    if n < 0:
        return None
    if len(tokens) == 9:
        return PeTarHeader(int(tokens[0]), n, values[0], tuple(values[1:4]), tuple(values[4:7]))
    return PeTarHeader(int(tokens[0]), n, values[0])


def looks_like_petar(text: str) -> bool:
    """Whether decoded text starts like a PeTar snapshot: a header ``file_id N time [6 floats]``
    then (unless N = 0) a line of at least 8 numbers."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return False
    header = _parse_header_line(lines[0])
    if header is None:
        return False
    if len(lines) < 2:
        return header.n == 0
    tokens = lines[1].split()
    return len(tokens) >= 8 and all(_float(t) is not None for t in tokens[:8])


def read_petar_header(path) -> PeTarHeader:
    """Read the header line of a PeTar ASCII snapshot.

    Raises
    ------
    ReaderError
        If the first line is not ``file_id N time`` or ``file_id N time`` plus 6 offsets.
    """
    path = as_path(path)
    if check_readable(path) == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected a PeTar snapshot")
    line = read_text(path, expected="a PeTar ASCII snapshot").split("\n", 1)[0]
    header = _parse_header_line(line)
    if header is None:
        raise ReaderError(
            f"{path}: line 1 is {line.strip()[:80]!r}; expected a PeTar header 'file_id N time' "
            "(or with 6 more numbers: the centre position and velocity in external mode)"
        )
    return header


def _particle_rows(path, header, ncols_needed: int, interrupt_mode, use_mpfrc) -> np.ndarray:
    """The particle rows of a PeTar snapshot as a float array, checked against the header's N
    and the columns the interrupt mode needs."""
    body = read_text(path, expected="a PeTar ASCII snapshot").split("\n", 1)
    try:
        data = np.loadtxt(io.StringIO(body[1] if len(body) > 1 else ""), dtype=np.float64,
                          ndmin=2, comments=None)
    except ValueError as exc:
        raise ReaderError(f"{path}: malformed particle rows (rows counted after the header "
                          f"line): {exc}") from None
    nrows = data.shape[0] if data.size else 0
    if nrows != header.n:
        raise ReaderError(
            f"{path}: header says N = {header.n} particles but {nrows} rows follow "
            f"({'truncated file' if nrows < header.n else 'extra rows'})"
        )
    if nrows and data.shape[1] < ncols_needed:
        raise ReaderError(
            f"{path}: particle rows have {data.shape[1]} columns; interrupt mode "
            f"{interrupt_mode!r}{' with use_mpfrc' if use_mpfrc else ''} needs at least "
            f"{ncols_needed} (s_lum is column {ncols_needed})"
        )
    return data if nrows else np.zeros((0, ncols_needed))


def _checked_types_and_masses(path, col, off: int, interrupt_mode, use_mpfrc):
    """SSE types and masses of the particles, checked; the massive ones to keep."""
    kstar = col("s_type")
    bad = ~np.isfinite(kstar) | (kstar != np.round(kstar)) | (kstar < 0) | (kstar > 15)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ReaderError(
            f"{path}: particle row {row + 1} (file line {row + 2}), column "
            f"{PETAR_COLUMNS['s_type'] + off + 1} (s_type) is {kstar[row]!r}; expected an SSE "
            "type 0-15: is the file from a BSE-based interrupt mode, and is use_mpfrc right?"
        )
    mass = col("mass")
    bad = ~np.isfinite(mass) | (mass < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ReaderError(
            f"{path}: particle row {row + 1} (file line {row + 2}), column 1 (mass) is "
            f"{mass[row]!r}; expected a mass >= 0 Msun"
        )
    keep = mass > 0
    # PeTar sets the particle mass from the star's current mass (s_mass) at each evolution
    # step: if most disagree, the columns are not where this layout puts them
    if keep.any():
        s_mass = col("s_mass")[keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            mismatch = np.median(np.abs(s_mass / mass[keep] - 1.0))
        if not mismatch <= 1e-3:
            raise ReaderError(
                f"{path}: column {PETAR_COLUMNS['s_mass'] + off + 1} (s_mass) does not match "
                f"column 1 (mass) (median relative difference {mismatch:.3g}); the columns do "
                f"not follow the PeTar layout for interrupt mode {interrupt_mode!r}"
                f"{' with' if use_mpfrc else ' without'} use_mpfrc"
            )
    return kstar, mass, keep


def read_petar(path, *, interrupt_mode: str = "bse", use_mpfrc: bool = False, time=None,
               name=None) -> Snapshot:
    """Read a PeTar ASCII snapshot written with BSE-based stellar evolution.

    Parameters
    ----------
    path : str or os.PathLike
        The ``data.<index>`` file (gzip allowed).
    interrupt_mode : str
        PeTar's configured interrupt mode; must be BSE-based ('bse', 'mobse', 'bseEmp', ...),
        since only those write stellar luminosities and radii.
    use_mpfrc : bool
        True if PeTar was built with ``use_mpfrc`` (3 extra position columns after ``pos``).
    time : float or astropy.units.Quantity, optional
        Override the snapshot time (Gyr); default the header time (Myr) in Gyr.
    name : str, optional
        Snapshot label; default the file name.

    Returns
    -------
    Snapshot
        Positions pc, velocities km/s (from pc/Myr), masses Msun, radii Rsun (``s_rad``),
        luminosities Lsun (``s_lum``), kstar (``s_type``), time Gyr. The header's centre offsets,
        when present, go to ``meta['pos_offset_pc']`` and ``meta['vel_offset_kms']``; positions
        are kept relative to that centre, as written.

    Raises
    ------
    ReaderError
        If the header is malformed, the particle count differs from the header's N (truncated
        file), rows have too few or inconsistent columns, ``s_type`` is not an SSE type, or the
        Snapshot rejects the values.

    Examples
    --------
    >>> snap = read_petar("data.10")              # doctest: +SKIP
    """
    if "bse" not in str(interrupt_mode).lower():
        raise ReaderError(
            f"{path}: interrupt mode {interrupt_mode!r} writes no stellar luminosities or radii; "
            "only BSE-based modes ('bse', 'mobse', ...) can give a Snapshot"
        )
    path = as_path(path)
    header = read_petar_header(path)
    off = 3 if use_mpfrc else 0
    ncols_needed = PETAR_COLUMNS["s_lum"] + 1 + off
    data = _particle_rows(path, header, ncols_needed, interrupt_mode, use_mpfrc)

    def col(key: str) -> np.ndarray:
        i = PETAR_COLUMNS[key]
        if key not in ("mass", "pos.x", "pos.y", "pos.z"):
            i += off
        return data[:, i]

    kstar, mass, keep = _checked_types_and_masses(path, col, off, interrupt_mode, use_mpfrc)
    meta = {
        "source": str(path),
        "source_format": "petar",
        "file_id": header.file_id,
        "time_myr": header.time,
        "interrupt_mode": str(interrupt_mode),
        "n_massless_dropped": int((~keep).sum()),
    }
    if header.pos_offset is not None:
        meta["pos_offset_pc"] = list(header.pos_offset)
        meta["vel_offset_kms"] = [v * _PC_MYR_TO_KMS for v in header.vel_offset]
    snap_time = to_gyr(header.time, where=str(path), default_unit=u.Myr) if time is None else \
        to_gyr(time, where=str(path))
    try:
        return Snapshot(
            x=col("pos.x")[keep], y=col("pos.y")[keep], z=col("pos.z")[keep],
            vx=col("vel.x")[keep] * _PC_MYR_TO_KMS,
            vy=col("vel.y")[keep] * _PC_MYR_TO_KMS,
            vz=col("vel.z")[keep] * _PC_MYR_TO_KMS,
            mass=mass[keep],
            radius=col("s_rad")[keep],
            luminosity=col("s_lum")[keep],
            kstar=kstar[keep].astype(np.int64),
            time=snap_time,
            name=Path(path).name if name is None else name,
            meta=meta,
        )
    except SnapshotError as exc:
        raise ReaderError(f"{path}: {exc} (row numbers count kept particles)") from exc
