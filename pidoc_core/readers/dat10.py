"""NBODY6 / McLuster ``dat.10`` initial conditions.

Layout (the NBODY6 input file of initial conditions, "a dat.10 file in N-body input format ...
produced by other programs, like mcluster" -- ``nbody6ppgpu/Nbody6PPGPU-beijing: README.md``; checked
against McLuster's ``N1k.dat.10`` from the clustertools documentation): one star per line, no
header::

    mass  x  y  z  vx  vy  vz

separated by blanks or tabs (list-directed READ accepts both). McLuster writes N-body units
(G = 1, total mass 1, the default for NBODY6 input) or, with its astrophysical-units option,
Msun, pc and km/s. Which one is recognised from the content, never guessed: N-body masses sum to
1 (to 1e-4); then the N-body mass and length units must be given (``nbody_mass`` Msun,
``nbody_length`` pc; the velocity unit follows from G = 1). ``unit_system='nbody'`` forces
N-body units and ``unit_system='physical'`` physical ones.

A ``dat.10`` holds no luminosities or radii: the snapshot is dynamics only (L = R = 0,
``meta['missing_reason']`` says so) and the imager refuses it.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable, read_text, to_gyr
from ._nbody_units import nbody_scales

__all__ = ["DAT10_COLUMNS", "looks_like_dat10", "read_dat10"]

#: Column order of a ``dat.10`` row.
DAT10_COLUMNS = ("mass", "x", "y", "z", "vx", "vy", "vz")
_SEP = re.compile(r"[ \t]+")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


def looks_like_dat10(text: str) -> bool:
    """True when the first lines of ``text`` are rows of exactly 7 blank- or tab-separated
    numbers (and not a CSV: no commas)."""
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if len(text.splitlines()) > 20:
        lines = lines[:-1]  # the last line of a 64 KiB head may be cut
    if not lines or "," in text[:4096]:
        return False
    for ln in lines:
        tokens = _SEP.split(ln.strip())
        if len(tokens) != 7 or not all(_NUMBER.match(t) for t in tokens):
            return False
    return True


def _parse(text: str, path) -> np.ndarray:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        tokens = _SEP.split(line.strip())
        if len(tokens) != 7:
            raise ReaderError(f"{path}: line {lineno}: {len(tokens)} columns, expected 7 "
                              f"({' '.join(DAT10_COLUMNS)}) for an NBODY6 dat.10 file")
        for j, tok in enumerate(tokens):
            if not _NUMBER.match(tok):
                raise ReaderError(f"{path}: line {lineno}, column {j + 1} ({DAT10_COLUMNS[j]}): "
                                  f"{tok!r} is not a number")
        rows.append([float(t.replace("D", "E").replace("d", "e")) for t in tokens])
    if not rows:
        raise ReaderError(f"{path}: no stars in the dat.10 file")
    return np.array(rows, dtype=np.float64)


def read_dat10(path, *, unit_system: str | None = None, nbody_mass=None, nbody_length=None,
               time=None, name=None) -> Snapshot:
    """Read an NBODY6/McLuster ``dat.10`` file (dynamics only).

    Parameters
    ----------
    path : str or os.PathLike
        The text file (gzip or bzip2 compression allowed).
    unit_system : {'nbody', 'physical'}, optional
        Units of the file; default: N-body when the masses sum to 1, else physical (Msun, pc,
        km/s).
    nbody_mass, nbody_length : float, optional
        The N-body mass unit (Msun; the total mass) and length unit (pc), required for N-body
        files.
    time : float or astropy.units.Quantity, optional
        Snapshot time (Gyr); default 0 (initial conditions).
    name : str, optional
        Snapshot label; default the file name.

    Returns
    -------
    Snapshot
        Positions pc, velocities km/s, masses Msun; luminosities and radii 0 with
        ``meta['missing_columns']`` and ``meta['missing_reason']``.

    Raises
    ------
    ReaderError
        For rows without 7 numbers, N-body files without their scales, or values the Snapshot
        rejects (mass <= 0, NaN).
    """
    from .nbody6 import DynamicsOnlyWarning, dynamics_only_meta

    path = as_path(path)
    if check_readable(path) == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected an NBODY6 dat.10 file")
    if unit_system not in (None, "nbody", "physical"):
        raise ReaderError(f"{path}: unit_system must be 'nbody' or 'physical', got "
                          f"{unit_system!r}")
    arr = _parse(read_text(path, expected="an NBODY6 dat.10 file"), path)
    total = float(arr[:, 0].sum())
    units = unit_system
    if units is None:
        units = "nbody" if abs(total - 1.0) <= 1e-4 else "physical"
    scale = {"mass": 1.0, "length": 1.0, "velocity": 1.0}
    if units == "nbody":
        scale = nbody_scales(nbody_mass, nbody_length, where=f"{path} (masses sum to {total:.6g})",
                             flags="nbody_mass= (Msun) and nbody_length= (pc)")
    meta = {"source": str(path), "source_format": "dat10", "units": units,
            **dynamics_only_meta(str(path), "a dat.10 holds initial conditions only: the "
                                            "stellar-evolution output of the run (a conf.3 "
                                            "with its sev.83) would supply them")}
    if units == "nbody":
        meta.update(nbody_mass_msun=scale["mass"], nbody_length_pc=scale["length"],
                    nbody_velocity_kms=scale["velocity"])
    warnings.warn(meta["missing_reason"], DynamicsOnlyWarning, stacklevel=2)
    pos = arr[:, 1:4] * scale["length"]
    vel = arr[:, 4:7] * scale["velocity"]
    try:
        return Snapshot(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], vx=vel[:, 0], vy=vel[:, 1],
                        vz=vel[:, 2], mass=arr[:, 0] * scale["mass"], radius=np.zeros(len(arr)),
                        luminosity=np.zeros(len(arr)),
                        time=0.0 if time is None else to_gyr(time, where=str(path)),
                        name=path.name if name is None else name, meta=meta)
    except SnapshotError as exc:
        raise ReaderError(f"{path}: {exc}") from exc
