"""The literature catalogue: the paper's Table 3 with Harris (2010) centres and E(B-V)."""

from __future__ import annotations

from importlib import resources

from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ._common import CATALOGUE_PATH, ObservationInputError

__all__ = ["load_catalogue", "cluster", "resolve_centre"]

def _norm_name(name: str) -> str:
    s = "".join(str(name).lower().split())
    s = s.replace("palomar", "pal").replace("messier", "m")
    return s


def load_catalogue() -> Table:
    """The paper's Table 3 (17 globular clusters) with centre coordinates, as an astropy Table.

    Columns (units in the table): ``name``, ``alt_name``, ``ra``, ``dec`` (deg, J2000, Harris 2010),
    ``ra_hms``, ``dec_dms`` (as printed by Harris), ``l_fov`` (Lsun, the paper's FoV luminosity),
    ``distance`` (kpc), ``r_c``, ``r_h`` (arcmin), ``fe_h`` (dex) (Harris 2010), ``age`` (Gyr,
    VandenBerg et al. 2013; masked where the paper has none), ``ml_v``, ``ml_v_err`` (Msun/Lsun,
    Baumgardt et al. 2020), ``pidoc_distance`` (kpc), ``pidoc_age`` (Gyr), ``pidoc_ml_v``
    (Msun/Lsun), ``pidoc_log_mass`` (dex(Msun)) (π-DOC v0.1 as published), ``ebv`` (mag, Harris
    2010) and ``coord_ref``. Each column's ``description`` names its source; ``meta`` holds the
    references.

    Examples
    --------
    >>> t = load_catalogue()
    >>> len(t), t["distance"].unit
    (17, Unit("kpc"))
    """
    ref = resources.files("pidoc_core").joinpath("data", "paper_table3.ecsv")
    with resources.as_file(ref) as path:
        return Table.read(path, format="ascii.ecsv")


def cluster(name: str):
    """One row of :func:`load_catalogue` by name: ``"NGC 5053"``, ``"ngc5053"``, ``"Palomar 11"``,
    ``"M 68"``...

    Raises
    ------
    ObservationInputError
        For a name not in the catalogue, listing the names it holds.

    Examples
    --------
    >>> row = cluster("ngc5053")
    >>> str(row["name"]), float(row["distance"])
    ('NGC 5053', 17.4)
    """
    table = load_catalogue()
    key = _norm_name(name)
    for row in table:
        if key in (_norm_name(row["name"]), _norm_name(row["alt_name"] or "-")):
            return row
    raise ObservationInputError(
        f"cluster {name!r} is not in the catalogue {CATALOGUE_PATH.name}; it holds "
        f"{', '.join(table['name'])}"
    )


def resolve_centre(centre=None, cluster_name: str | None = None) -> tuple[SkyCoord, str | None]:
    """(SkyCoord, cluster name or None) from a centre or a catalogue name (exactly one).

    ``centre`` may be a SkyCoord, or a pair (RA, Dec): numbers in degrees, Quantities, or strings
    (sexagesimal RA in hours when it has ':' or 'h', e.g. ``("13:16:27.09", "+17:42:00.9")``).
    """
    if (centre is None) == (cluster_name is None):
        raise ObservationInputError("give exactly one of a centre (RA, Dec) or a cluster name")
    if cluster_name is not None:
        row = cluster(cluster_name)
        return SkyCoord(float(row["ra"]) * u.deg, float(row["dec"]) * u.deg, frame="icrs"), str(
            row["name"])
    if isinstance(centre, SkyCoord):
        return centre.icrs if centre.frame.name != "icrs" else centre, None
    try:
        ra, dec = centre
    except (TypeError, ValueError):
        raise ObservationInputError(
            f"centre must be a SkyCoord or a pair (RA, Dec), got {centre!r}") from None
    try:
        if isinstance(ra, str) and any(c in ra for c in ":hH "):
            return SkyCoord(ra, str(dec), unit=(u.hourangle, u.deg), frame="icrs"), None
        ra = ra if isinstance(ra, u.Quantity) else float(ra) * u.deg
        dec = dec if isinstance(dec, u.Quantity) else float(dec) * u.deg
        return SkyCoord(ra, dec, frame="icrs"), None
    except (ValueError, TypeError, u.UnitsError) as exc:
        raise ObservationInputError(f"cannot read centre {centre!r}: {exc}") from None

