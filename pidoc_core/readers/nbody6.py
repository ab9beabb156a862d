"""NBODY6-family snapshots: ``conf.3``/``OUT3`` joined with the ``sev.83`` (and ``bev.82``) files.

File layouts implemented (read from the public sources, in the ``code`` search corpus)
---------------------------------------------------------------------------------------

``OUT3`` / ``conf.3_<time>`` -- the Fortran unformatted snapshots of ``SUBROUTINE OUTPUT`` (NBODY6
and NBODY6++GPU layouts, ``AS`` scalings, binaries and massless entries) are read and documented by
:mod:`pidoc_core.readers.conf3`.

``sev.83`` / ``bev.82`` -- the HR files written by ``SUBROUTINE HRPLOT`` at the same output times;
every released layout (NBODY6 ``fort.83``, old NBODY6++, NBODY6++GPU 9/11/14-column ``sev.83`` and
20/24/26-column ``bev.82``) is read by :mod:`pidoc_core.readers.nbody6pp_hr`, which documents them.
``bev.82`` gives L and R of the KS-binary components (they are not in ``sev.83``).

Without HR files (``sev=False``) the snapshot is *dynamics only*: positions, velocities and masses
are read, luminosities and radii are set to 0 and ``meta['missing_columns']`` /
``meta['missing_reason']`` say so and name the file that would supply them; the imager refuses
such a snapshot.

Stars are joined by NAME. The HR block is chosen by time: rows' TTOT when given, else the block
header's TPHYS (Myr, written with one decimal).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, to_gyr
from .conf3 import Conf3, check_scales, count_conf3, read_conf3
from .nbody6pp_hr import HRBlock, read_hr_file

__all__ = [
    "Conf3",
    "HRBlock",
    "DynamicsOnlyWarning",
    "read_conf3",
    "count_conf3",
    "read_hr_file",
    "read_nbody6",
    "find_sibling",
    "dynamics_only_meta",
]


# --------------------------------------------------------------------------------------------
# joining
# --------------------------------------------------------------------------------------------


def find_sibling(path, kind: str) -> list[Path]:
    """Candidate names of the ``sev.83`` (``kind='sev'``) or ``bev.82`` (``kind='bev'``) file
    written with a ``conf.3``/``OUT3`` file, existing or not, best first.

    ``conf.3_100`` -> ``sev.83_100``; ``OUT3`` -> ``fort.83``, ``sev.83``; a suffix after the
    first ``_`` is kept (``run_100`` -> ``sev.83_100``); compressed copies (``.gz``, ``.bz2``)
    come after the plain names.
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
    cands += [c + ext for c in list(cands) for ext in (".gz", ".bz2")]
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


def _pick_block(blocks, ttot, tphys, check_time, path, kind, snapshot):
    usable = [b for b in blocks if b.layout != "empty" or b.tphys is not None]
    if not usable:
        raise ReaderError(f"{path}: holds no {kind} rows")
    if len(usable) == 1:
        block = usable[0]
        miss = _time_matches(block, ttot, tphys)
        if check_time and np.isfinite(miss) and miss > 1:
            raise ReaderError(
                f"{path}: its output time ({_describe_time(block)}) does not match the snapshot "
                f"{snapshot.name} (TTOT = {ttot:g}, {tphys:g} Myr); pass the matching file or "
                "check_time=False"
            )
    else:
        misses = [_time_matches(b, ttot, tphys) for b in usable]
        best = int(np.argmin(misses))
        block = usable[best]
        if check_time and not misses[best] <= 1:
            times = ", ".join(_describe_time(b) for b in usable[:8])
            raise ReaderError(
                f"{path}: no block at the time of {snapshot.name} (TTOT = {ttot:g}, "
                f"{tphys:g} Myr); "
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


class DynamicsOnlyWarning(UserWarning):
    """A snapshot was read without luminosities and radii (dynamics only)."""


def dynamics_only_meta(source: str, remedy: str) -> dict:
    """The ``meta`` entries that mark a dynamics-only snapshot.

    Parameters
    ----------
    source : str
        The file read.
    remedy : str
        Which file would supply L and R, as a sentence for the message.
    """
    reason = (f"{source}: luminosities and radii are missing (dynamics only: positions, "
              f"velocities and masses were read); {remedy}")
    return {"missing_columns": ["luminosity", "radius", "teff", "kstar"],
            "missing_reason": reason}


def _hr_path(path: Path, sev) -> Path | None:
    if sev is False:
        return None
    if sev is not None:
        return as_path(sev)
    cands = find_sibling(path, "sev")
    found = [c for c in cands if c.is_file()]
    if not found:
        raise ReaderError(
            f"{path}: no sev.83 file found next to it (looked for "
            f"{', '.join(c.name for c in cands if c.suffix not in ('.gz', '.bz2'))} and their "
            ".gz/.bz2 copies); luminosities and "
            "radii come from it: pass sev= (the sev.83 file written at the same time), or "
            "sev=False to read the dynamics only"
        )
    return found[0]


def _bev_path(path: Path, bev, sev_path) -> Path | None:
    if bev is False or sev_path is None:
        return None
    if bev is not None:
        return as_path(bev)
    found = [c for c in find_sibling(path, "bev") if c.is_file()]
    return found[0] if found else None


def _hr_blocks(path, sev_path, bev_path, ttot, tphys, check_time):
    blocks = [_pick_block(read_hr_file(sev_path, kind="sev"), ttot, tphys, check_time, sev_path,
                          "sev", path)]
    if bev_path is not None:
        bev_blocks = read_hr_file(bev_path, kind="bev")
        if any(b.name.size for b in bev_blocks):
            blocks.append(_pick_block(bev_blocks, ttot, tphys, check_time, bev_path, "bev", path))
    return blocks


def _star_rows(conf: Conf3, path: Path):
    """Indices of the stars to keep (singles and KS components with mass > 0) and the count of
    massless entries dropped."""
    keep = np.zeros(conf.ntot, dtype=bool)
    keep[:conf.ntot - conf.npairs] = True
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
    dup = _first_duplicate(conf.name[idx])
    if dup is not None:
        raise ReaderError(f"{path}: NAME {dup} appears more than once among the stars")
    return idx, int(massless.sum())


def _describe_hr(blocks, sev_path, bev_path):
    return " and ".join(str(p) for p in (sev_path, bev_path) if p is not None)


def _join(path, conf, idx, blocks, sev_path, bev_path, missing):
    """Match the stars ``idx`` of ``conf`` with HR rows by NAME; returns (idx, hr arrays, counts)."""
    hr = {k: np.concatenate([getattr(b, k) for b in blocks])
          for k in ("name", "kstar", "mass", "log_luminosity", "log_radius", "valid", "lines")}
    hr["file"] = np.concatenate([np.full(b.name.size, k) for k, b in enumerate(blocks)])
    paths = [sev_path, bev_path]
    files = _describe_hr(blocks, sev_path, bev_path)
    dup = _first_duplicate(hr["name"])
    if dup is not None:
        raise ReaderError(f"{files}: NAME {dup} has more than one row at this time")
    star_names = conf.name[idx]
    order = np.argsort(hr["name"], kind="stable")
    sorted_names = hr["name"][order]
    pos = np.clip(np.searchsorted(sorted_names, star_names), 0, max(sorted_names.size - 1, 0))
    found = sorted_names[pos] == star_names if sorted_names.size else np.zeros(idx.size, bool)
    rows = order[pos] if sorted_names.size else np.zeros(idx.size, np.int64)
    nan_rows = found & ~hr["valid"][rows]
    n_missing, n_nan = int((~found).sum()), int(nan_rows.sum())
    if missing == "raise" and n_nan:
        i = int(np.flatnonzero(nan_rows)[0])
        raise ReaderError(
            f"{paths[hr['file'][rows[i]]]}: line {int(hr['lines'][rows[i]])}: NAME "
            f"{int(star_names[i])} has NaN in its "
            f"mass, log L or log R ({n_nan} such star(s)); pass missing='drop' to drop them"
        )
    if missing == "raise" and n_missing:
        listed = ", ".join(str(int(n)) for n in star_names[~found][:10])
        raise ReaderError(
            f"{path}: {n_missing} of {star_names.size} stars have no row in {files} "
            f"(NAME {listed}{' ...' if n_missing > 10 else ''}); binary components are in "
            "bev.82 (pass bev=), or pass missing='drop'"
        )
    use = found & ~nan_rows
    hr_rows = rows[use]
    _check_masses(conf, idx[use], hr, hr_rows, paths)
    return idx[use], {k: v[hr_rows] for k, v in hr.items()}, n_missing, n_nan


def _check_masses(conf, idx, hr, hr_rows, paths):
    """HRPLOT writes M1 = BODY*ZMBAR: a mismatch means the HR columns were not read as written
    (or the file belongs to another run or time)."""
    if not idx.size:
        return
    m_conf = conf.mass[idx] * conf.zmbar
    m_hr = hr["mass"][hr_rows]
    bad = np.abs(m_hr - m_conf) > 2e-3 * m_conf + 1e-3
    if bad.sum() > max(1, 0.01 * idx.size):
        i = int(np.flatnonzero(bad)[0])
        raise ReaderError(
            f"{paths[hr['file'][hr_rows[i]]]}: line {int(hr['lines'][hr_rows[i]])}: mass {float(m_hr[i]):.6g} Msun of "
            f"NAME {int(conf.name[idx[i]])} differs from BODY*ZMBAR = {float(m_conf[i]):.6g} Msun "
            f"of the conf.3 file ({int(bad.sum())} of {idx.size} stars differ); the HR file is "
            "from another run or time, or its columns are not in the documented order"
        )


def _meta(path, conf, sev_path, bev_path, tphys, n_massless, n_missing, n_nan, blocks):
    meta = {
        "source": str(path),
        "source_format": "nbody6",
        "layout": conf.layout,
        "float_bytes": conf.float_bytes,
        "sev_file": str(sev_path) if sev_path is not None else None,
        "bev_file": str(bev_path) if bev_path is not None else None,
        "hr_layouts": [b.layout for b in blocks],
        "ttot_nbody": conf.ttot,
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
        "n_massless_dropped": n_massless,
        "n_missing_hr": n_missing,
        "n_nan_hr_dropped": n_nan,
    }
    if sev_path is None:
        meta.update(dynamics_only_meta(
            str(path), f"the NBODY6 sev.83 (and bev.82) file written at TTOT = {conf.ttot:g} "
                       f"({find_sibling(path, 'sev')[0].name}) would supply them: pass sev="))
    return meta


# read_nbody6: ~87 lines, ~47 of them the docstring (each option and its units), ~40 code
def read_nbody6(path, *, sev=None, bev=None, index: int | None = None, missing: str = "raise",
                check_time: bool = True, time=None, name=None) -> Snapshot:
    """Read an NBODY6/NBODY6++ snapshot: ``conf.3``/``OUT3`` joined by NAME with ``sev.83``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``OUT3`` or ``conf.3_<time>`` file (Fortran unformatted, gzip/bzip2 allowed; layouts
        in the module docstring).
    sev : str, os.PathLike or False, optional
        The single-star HR file (any layout of :mod:`~pidoc_core.readers.nbody6pp_hr`). When
        None, a sibling is looked for (``conf.3_100`` -> ``sev.83_100``; ``OUT3`` ->
        ``fort.83``/``sev.83``) and its absence is an error. False reads the dynamics only:
        luminosities and radii are 0 and ``meta['missing_reason']`` says so (a
        :class:`DynamicsOnlyWarning` is issued).
    bev : str, os.PathLike or False, optional
        The binary HR file giving L and R of KS-binary components. None looks for a sibling
        (``bev.82_100``, ``fort.82``) and uses it when present; False never reads one.
    index : int, optional
        Which snapshot of a multi-snapshot ``OUT3`` file (0-based, negative from the end).
    missing : {'raise', 'drop'}
        Stars without a usable HR row -- no row at all, or a row holding NaN: raise a
        ReaderError naming them (and the line), or drop them (counted in
        ``meta['n_missing_hr']`` and ``meta['n_nan_hr_dropped']``).
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
        (``missing='raise'``), HR masses that disagree with BODY*ZMBAR, or values the Snapshot
        rejects; the message names the file.

    Examples
    --------
    >>> snap = read_nbody6("conf.3_100", sev="sev.83_100")     # doctest: +SKIP
    """
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop', got {missing!r}")
    path = as_path(path)
    conf = read_conf3(path, index=index)
    check_scales(conf, path)
    tphys = conf.ttot * conf.tstar
    idx, n_massless = _star_rows(conf, path)
    sev_path = _hr_path(path, sev)
    bev_path = _bev_path(path, bev, sev_path)
    blocks, n_missing, n_nan = [], 0, 0
    if sev_path is None:
        hr = None
    else:
        blocks = _hr_blocks(path, sev_path, bev_path, conf.ttot, tphys, check_time)
        idx, hr, n_missing, n_nan = _join(path, conf, idx, blocks, sev_path, bev_path, missing)
    meta = _meta(path, conf, sev_path, bev_path, tphys, n_massless, n_missing, n_nan, blocks)
    if hr is None:
        warnings.warn(meta["missing_reason"], DynamicsOnlyWarning, stacklevel=2)
        luminosity = radius = np.zeros(idx.size)
        kstar = None
    else:
        with np.errstate(over="ignore"):  # overflow -> inf, rejected by Snapshot with the column
            luminosity = 10.0 ** hr["log_luminosity"]
            radius = 10.0 ** hr["log_radius"]
        kstar = hr["kstar"]
    snap_time = to_gyr(tphys, where=str(path), default_unit=u.Myr) if time is None else \
        to_gyr(time, where=str(path))
    try:
        return Snapshot(
            x=conf.pos[idx, 0] * conf.rbar, y=conf.pos[idx, 1] * conf.rbar,
            z=conf.pos[idx, 2] * conf.rbar, vx=conf.vel[idx, 0] * conf.vstar,
            vy=conf.vel[idx, 1] * conf.vstar, vz=conf.vel[idx, 2] * conf.vstar,
            mass=conf.mass[idx] * conf.zmbar, radius=radius, luminosity=luminosity, kstar=kstar,
            time=snap_time, name=path.name if name is None else name, meta=meta,
        )
    except SnapshotError as exc:
        where = f"{path} (with {sev_path})" if sev_path is not None else str(path)
        raise ReaderError(f"{where}: {exc}") from exc


def _first_duplicate(values: np.ndarray):
    if values.size < 2:
        return None
    s = np.sort(values)
    d = np.flatnonzero(s[1:] == s[:-1])
    return int(s[d[0]]) if d.size else None
