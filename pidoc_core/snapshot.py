"""The star table every snapshot source produces.

A :class:`Snapshot` holds one instant of a star cluster: phase-space coordinates, masses and the
stellar properties the imager needs. Every reader and the embedded evolution source return one, and
every later stage (imager, datasets) only reads it.

Units are fixed: positions in pc, velocities in km/s, masses in Msun, radii in Rsun, bolometric
luminosities in Lsun, effective temperatures in K and the snapshot time in Gyr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from astropy import units as u
from astropy.table import Table

from .errors import PidocError

__all__ = [
    "COLUMNS",
    "OPTIONAL_COLUMNS",
    "SnapshotError",
    "Snapshot",
    "teff_from_luminosity_radius",
    "DARK_KSTAR",
    "KSTAR_RANGE",
]

#: Required columns and their units.
COLUMNS: dict[str, u.UnitBase] = {
    "x": u.pc,
    "y": u.pc,
    "z": u.pc,
    "vx": u.km / u.s,
    "vy": u.km / u.s,
    "vz": u.km / u.s,
    "mass": u.Msun,
    "radius": u.Rsun,
    "luminosity": u.Lsun,
}
#: Optional columns and their units (``teff`` is derived when absent, ``kstar`` stays absent).
OPTIONAL_COLUMNS: dict[str, u.UnitBase] = {"teff": u.K, "kstar": u.dimensionless_unscaled}

#: SSE stellar types (Hurley et al. 2000) that emit no light: neutron star, black hole, massless
#: remnant. White dwarfs (10-12) keep their (faint) light.
DARK_KSTAR: tuple[int, ...] = (13, 14, 15)

#: Accepted range of SSE stellar types (Hurley et al. 2000 use 0-15; codes add -1 for special cases).
KSTAR_RANGE: tuple[int, int] = (-1, 20)

#: Nominal solar effective temperature (IAU 2015 Resolution B3), K.
TEFF_SUN_K = 5772.0


class SnapshotError(PidocError):
    """A star table or snapshot file violates the Snapshot contract."""


def teff_from_luminosity_radius(luminosity, radius):
    """Effective temperature from the Stefan-Boltzmann law.

    Parameters
    ----------
    luminosity : array_like
        Bolometric luminosity, Lsun.
    radius : array_like
        Stellar radius, Rsun.

    Returns
    -------
    numpy.ndarray
        Teff in K, ``5772 K (L / R**2)**0.25``; 0 where the luminosity is 0.

    Examples
    --------
    >>> float(teff_from_luminosity_radius(1.0, 1.0))
    5772.0
    """
    lum = np.asarray(luminosity, dtype=float)
    rad = np.asarray(radius, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        teff = TEFF_SUN_K * (lum / rad**2) ** 0.25
    return np.where(lum > 0, teff, 0.0)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One instant of a star cluster: a validated table of stars.

    Parameters
    ----------
    x, y, z : array_like
        Positions, pc.
    vx, vy, vz : array_like
        Velocities, km/s.
    mass : array_like
        Current stellar masses, Msun (> 0).
    radius : array_like
        Stellar radii, Rsun (>= 0).
    luminosity : array_like
        Bolometric luminosities, Lsun (>= 0).
    teff : array_like, optional
        Effective temperatures, K. Derived from ``luminosity`` and ``radius`` when omitted.
    kstar : array_like of int, optional
        SSE stellar type (Hurley et al. 2000); None when the source does not give it.
    time : float
        Snapshot time, Gyr.
    name : str
        A label for the snapshot (run name).

    Raises
    ------
    SnapshotError
        If columns differ in length, hold non-finite values, masses are not positive, radii or
        luminosities are negative, or a luminous star has zero radius and no Teff. The message
        names the column and the first bad row.

    Examples
    --------
    >>> s = Snapshot(x=[0, 1], y=[0, 0], z=[0, 0], vx=[0, 0], vy=[0, 0], vz=[0, 0],
    ...              mass=[1.0, 0.5], radius=[1.0, 0.5], luminosity=[1.0, 0.05], time=12.0)
    >>> len(s), round(float(s.teff[0]))
    (2, 5772)
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    mass: np.ndarray
    radius: np.ndarray
    luminosity: np.ndarray
    teff: np.ndarray | None = None
    kstar: np.ndarray | None = None
    time: float = 0.0
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {}
        for col in (*COLUMNS, "teff", "kstar"):
            value = getattr(self, col)
            if value is None:
                continue
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise SnapshotError(f"column {col!r} is not numeric: {exc}") from None
            if col == "kstar" and arr.ndim == 1:
                bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < KSTAR_RANGE[0]) | (
                    arr > KSTAR_RANGE[1])
                if bad.any():
                    row = _first_bad(bad)
                    raise SnapshotError(
                        f"column 'kstar' must hold integer SSE types in {KSTAR_RANGE[0]}..."
                        f"{KSTAR_RANGE[1]}; row {row} has {arr[row]!r}"
                    )
                arr = arr.astype(np.int16)
            if arr.ndim != 1:
                raise SnapshotError(f"column {col!r} must be one-dimensional, got shape {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, col, arr)
            lengths[col] = arr.size
        if len(set(lengths.values())) > 1:
            raise SnapshotError(f"columns have unequal lengths: {lengths}")
        for col in lengths:
            arr = getattr(self, col)
            if col != "kstar" and not np.all(np.isfinite(arr)):
                raise SnapshotError(
                    f"column {col!r} has a non-finite value at row {_first_bad(~np.isfinite(arr))}: "
                    f"{arr[~np.isfinite(arr)][0]!r}"
                )
        checks = (
            ("mass", self.mass <= 0, "must be > 0 Msun"),
            ("radius", self.radius < 0, "must be >= 0 Rsun"),
            ("luminosity", self.luminosity < 0, "must be >= 0 Lsun"),
        )
        for col, bad, rule in checks:
            if bad.any():
                row = _first_bad(bad)
                raise SnapshotError(f"column {col!r} {rule}; row {row} has {getattr(self, col)[row]!r}")
        if self.teff is None:
            bad = (self.luminosity > 0) & (self.radius == 0)
            if bad.any():
                raise SnapshotError(
                    f"column 'radius' is 0 for a luminous star at row {_first_bad(bad)}; "
                    "Teff cannot be derived (give a 'teff' column)"
                )
            teff = teff_from_luminosity_radius(self.luminosity, self.radius)
            teff.setflags(write=False)
            object.__setattr__(self, "teff", teff)
        elif (self.teff < 0).any():
            row = _first_bad(self.teff < 0)
            raise SnapshotError(f"column 'teff' must be >= 0 K; row {row} has {self.teff[row]!r}")
        try:
            object.__setattr__(self, "time", float(self.time))
        except (TypeError, ValueError):
            raise SnapshotError(f"time must be a number of Gyr, got {self.time!r}") from None
        if not np.isfinite(self.time):
            raise SnapshotError(f"time must be finite, got {self.time!r}")
        object.__setattr__(self, "name", str(self.name))

    def __len__(self) -> int:
        return int(self.mass.size)

    def __repr__(self) -> str:
        return (
            f"Snapshot(name={self.name!r}, time={self.time:g} Gyr, n_stars={len(self)}, "
            f"mass={self.mass.sum():.4g} Msun, luminosity={self.luminosity.sum():.4g} Lsun)"
        )

    @property
    def positions(self) -> np.ndarray:
        """Positions as an (N, 3) array, pc."""
        return np.column_stack([self.x, self.y, self.z])

    @property
    def velocities(self) -> np.ndarray:
        """Velocities as an (N, 3) array, km/s."""
        return np.column_stack([self.vx, self.vy, self.vz])

    @property
    def is_dark(self) -> np.ndarray:
        """Boolean mask of dark remnants (NS, BH, massless remnants) by ``kstar``; all False
        when the snapshot has no ``kstar`` column."""
        if self.kstar is None:
            return np.zeros(len(self), dtype=bool)
        return np.isin(self.kstar, DARK_KSTAR)

    def columns(self) -> dict[str, np.ndarray]:
        """The star columns present in this snapshot, as a name -> array mapping."""
        names = [*COLUMNS, "teff"] + (["kstar"] if self.kstar is not None else [])
        return {name: getattr(self, name) for name in names}

    def select(self, mask) -> Snapshot:
        """A new snapshot with the stars where ``mask`` is True (or the given indices)."""
        return Snapshot(**{k: v[mask] for k, v in self.columns().items()}, time=self.time,
                        name=self.name, meta=dict(self.meta))

    @cached_property
    def density_centre(self) -> np.ndarray:
        """Density centre of the cluster (Casertano & Hut 1985), pc.

        The local density of each star is estimated from its 6 nearest neighbours,
        rho_j = sum of the 5 inner neighbours' masses / (4/3 pi r_6**3); the centre is the
        rho-weighted mean position. Computed once per snapshot with a k-d tree.

        Returns
        -------
        numpy.ndarray
            (3,) array of x, y, z in pc.
        """
        from scipy.spatial import cKDTree

        pos = self.positions
        if len(self) < 8:
            return np.average(pos, axis=0, weights=self.mass)
        scale = float(np.abs(pos).max())
        if scale > 1e100:  # distances and their cubes would overflow: use the largest coordinate
            return Snapshot(**{**self.columns(), "x": self.x / scale, "y": self.y / scale,
                               "z": self.z / scale}).density_centre * scale
        tree = cKDTree(pos)
        dist, idx = tree.query(pos, k=7)
        r6 = dist[:, 6]
        neighbour_mass = self.mass[idx[:, 1:6]].sum(axis=1)
        with np.errstate(divide="ignore"):
            rho = neighbour_mass / (4.0 / 3.0 * np.pi * r6**3)
        finite = np.isfinite(rho)
        if not finite.all():  # coincident stars: give them the largest finite density
            rho = np.where(finite, rho, rho[finite].max() if finite.any() else 1.0)
        return np.average(pos, axis=0, weights=rho)

    def to_table(self) -> Table:
        """The snapshot as an astropy Table with units; ``time`` and ``name`` in ``meta``."""
        units = {**COLUMNS, **OPTIONAL_COLUMNS}
        table = Table()
        for name, values in self.columns().items():
            unit = units[name]
            table[name] = values if unit is u.dimensionless_unscaled else values * unit
        table.meta.update(self.meta)
        table.meta["time"] = self.time
        table.meta["time_unit"] = "Gyr"
        table.meta["name"] = self.name
        return table

    @classmethod
    def from_table(cls, table: Table, *, time=None, name=None) -> Snapshot:
        """Build a snapshot from an astropy Table.

        Columns with units are converted to the snapshot's units; columns without units are taken
        to be in them already.

        Parameters
        ----------
        table : astropy.table.Table
            Must hold the columns of :data:`COLUMNS`; ``teff`` and ``kstar`` are optional.
        time : float or astropy.units.Quantity, optional
            Snapshot time (Gyr); defaults to ``table.meta['time']`` or 0.
        name : str, optional
            Defaults to ``table.meta['name']`` or ''.

        Raises
        ------
        SnapshotError
            If a required column is missing or has a unit that does not convert.
        """
        missing = [c for c in COLUMNS if c not in table.colnames]
        if missing:
            raise SnapshotError(
                f"table lacks required column(s) {missing}; it has {table.colnames}"
            )
        units = {**COLUMNS, **OPTIONAL_COLUMNS}
        values = {}
        for col, unit in units.items():
            if col not in table.colnames:
                continue
            column = table[col]
            if getattr(column, "unit", None) is not None and unit is not u.dimensionless_unscaled:
                try:
                    values[col] = u.Quantity(column).to_value(unit)
                except u.UnitConversionError:
                    raise SnapshotError(
                        f"column {col!r} has unit {column.unit}, which does not convert to {unit}"
                    ) from None
            else:
                values[col] = np.asarray(column)
        meta = {k: v for k, v in table.meta.items() if k not in ("time", "time_unit", "name")}
        if time is None:
            time = table.meta.get("time", 0.0)
        if isinstance(time, u.Quantity):
            time = time.to_value(u.Gyr)
        if name is None:
            name = table.meta.get("name", "")
        return cls(**values, time=time, name=name, meta=meta)

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray], *, time=0.0, name="", meta=None):
        """Build a snapshot from a mapping of column name to array (snapshot units)."""
        known = {*COLUMNS, *OPTIONAL_COLUMNS}
        return cls(**{k: v for k, v in columns.items() if k in known}, time=time, name=name,
                   meta=dict(meta or {}))
