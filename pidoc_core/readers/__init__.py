"""Snapshot readers: one entry point, :func:`read_snapshot`, for every N-body format.

Formats (see each module's docstring for the file layouts and their sources):

* ``'ecsv'``, ``'csv'``, ``'fits'``, ``'hdf5'``, ``'parquet'`` -- star tables
  (:mod:`pidoc_core.readers.table`), with column aliases and unit conversion;
* ``'nbody6'`` -- NBODY6 ``OUT3`` / NBODY6++(GPU) ``conf.3_<t>`` joined with ``sev.83`` and
  ``bev.82`` in every released layout (:mod:`pidoc_core.readers.nbody6`,
  :mod:`~pidoc_core.readers.conf3`, :mod:`~pidoc_core.readers.nbody6pp_hr`);
* ``'nbody6-hdf5'`` -- NBODY6++GPU ``snap.40_<t>.h5part`` (:mod:`pidoc_core.readers.nbody6pp_hdf5`);
* ``'amuse'`` -- AMUSE HDF5 particle sets with their units (:mod:`pidoc_core.readers.amuse`);
* ``'dat10'`` -- NBODY6 / McLuster ``dat.10`` initial conditions (:mod:`pidoc_core.readers.dat10`);
* ``'petar'`` -- PeTar ASCII ``data.<i>`` snapshots (:mod:`pidoc_core.readers.petar`).

Text and Fortran files may be gzip- or bzip2-compressed (recognised by their magic bytes).

Every problem with a file raises :class:`ReaderError` (a
:class:`~pidoc_core.snapshot.SnapshotError`) whose message names the file.
:func:`write_table` writes a snapshot that :func:`read_snapshot` reads back.
"""

from __future__ import annotations

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable
from ._detect import FORMATS, detect_format
from .amuse import read_amuse
from .dat10 import read_dat10
from .nbody6 import read_nbody6
from .nbody6pp_hdf5 import read_snap40
from .petar import read_petar
from .table import TABLE_FORMATS, read_table, write_table

__all__ = ["FORMATS", "OPTIONS", "ReaderError", "detect_format", "read_snapshot", "write_table"]

_ALIASES = {
    "nbody6": "nbody6",
    "nbody6++": "nbody6",
    "nbody6pp": "nbody6",
    "nbody6++gpu": "nbody6",
    "conf3": "nbody6",
    "conf.3": "nbody6",
    "out3": "nbody6",
    "nbody6-hdf5": "nbody6-hdf5",
    "nbody6pp-hdf5": "nbody6-hdf5",
    "snap40": "nbody6-hdf5",
    "snap.40": "nbody6-hdf5",
    "h5part": "nbody6-hdf5",
    "amuse": "amuse",
    "dat10": "dat10",
    "dat.10": "dat10",
    "mcluster": "dat10",
    "petar": "petar",
    "ecsv": "ecsv",
    "ascii.ecsv": "ecsv",
    "csv": "csv",
    "ascii.csv": "csv",
    "fits": "fits",
    "hdf5": "hdf5",
    "h5": "hdf5",
    "parquet": "parquet",
}

#: Keyword options each format accepts beyond columns/units/time/name.
OPTIONS: dict[str, set[str]] = {
    "nbody6": {"sev", "bev", "index", "missing", "check_time"},
    "nbody6-hdf5": {"index", "partial"},
    "amuse": {"nbody_mass", "nbody_length"},
    "dat10": {"unit_system", "nbody_mass", "nbody_length"},
    "petar": {"interrupt_mode", "use_mpfrc"},
    **{fmt: set() for fmt in TABLE_FORMATS},
    "fits": {"hdu"},
    "hdf5": {"dataset"},
}


_READERS = {"nbody6-hdf5": read_snap40, "amuse": read_amuse, "dat10": read_dat10}


# read_snapshot: ~88 lines, ~48 of them the docstring (each option and its units), ~40 code
def read_snapshot(path, format: str | None = None, *, columns=None, units=None, time=None,
                  name=None, **options) -> Snapshot:
    """Read one snapshot of a star cluster from a file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    format : str, optional
        One of :data:`FORMATS` (``'ecsv'``, ``'csv'``, ``'fits'``, ``'hdf5'``, ``'parquet'``,
        ``'nbody6'``, ``'nbody6-hdf5'``, ``'amuse'``, ``'dat10'``, ``'petar'``) or an alias;
        guessed from the content when None (see :func:`detect_format`).
    columns : mapping, optional
        Tables only: ``{snapshot_name: file_column}``; others are found by alias (``m``/``M``,
        ``L``/``lum``, ``R``/``rad``, ``T``/``Teff``, ``k*``/``kw``/``kstar``/``type``, ...).
    units : mapping, optional
        Tables only: ``{snapshot_name: unit}`` of file columns (e.g. ``{"x": "au"}``) and
        ``'time'`` for the metadata time. Columns with astropy units are converted; columns
        without are in snapshot units (pc, km/s, Msun, Rsun, Lsun, K).
    time : float or astropy.units.Quantity, optional
        Override the snapshot time, Gyr.
    name : str, optional
        Snapshot label.
    **options
        Format-specific keywords (:data:`OPTIONS`): ``sev``, ``bev``, ``index``, ``missing``,
        ``check_time`` (nbody6, see :func:`~pidoc_core.readers.nbody6.read_nbody6`); ``index``,
        ``partial`` (nbody6-hdf5); ``nbody_mass``, ``nbody_length`` (amuse, dat10: N-body mass
        unit in Msun and length unit in pc); ``unit_system`` (dat10); ``interrupt_mode``,
        ``use_mpfrc`` (petar); ``hdu`` (fits), ``dataset`` (hdf5).

    Returns
    -------
    Snapshot
        Positions pc, velocities km/s, masses Msun, radii Rsun, luminosities Lsun, Teff K,
        time Gyr.

    Raises
    ------
    ReaderError
        If the file is missing, empty, of unknown format, truncated or malformed, lacks required
        columns, or holds values the Snapshot rejects (NaN, mass <= 0, ...). The message names
        the file, the field or column and what was expected.
    TypeError
        If an option does not apply to the format given explicitly.

    Examples
    --------
    >>> snap = read_snapshot("conf.3_100", format="nbody6", sev="sev.83_100")   # doctest: +SKIP
    >>> snap = read_snapshot("stars.ecsv")                                     # doctest: +SKIP
    """
    p = as_path(path)
    explicit = format is not None
    if explicit:
        key = str(format).lower()
        if key not in _ALIASES:
            raise ReaderError(f"{p}: unknown format {format!r}; expected one of "
                              f"{sorted(set(_ALIASES.values()))}")
        fmt = _ALIASES[key]
        check_readable(p)
    else:
        fmt = detect_format(p)
    bad = sorted(set(options) - OPTIONS[fmt])
    if fmt not in TABLE_FORMATS and (columns is not None or units is not None):
        bad = ["columns" if columns is not None else "units", *bad]
    if bad:
        message = (f"option(s) {bad} do not apply to format {fmt!r}"
                   f"{'' if explicit else ' (detected from the content of ' + str(p) + ')'}; "
                   f"it accepts {sorted(OPTIONS[fmt])}")
        if explicit:
            raise TypeError(message)
        raise ReaderError(f"{p}: {message}")
    try:
        if fmt == "nbody6":
            return read_nbody6(p, time=time, name=name, **options)
        if fmt == "petar":
            return read_petar(p, time=time, name=name, **options)
        if fmt in _READERS:
            return _READERS[fmt](p, time=time, name=name, **options)
        return read_table(p, format=fmt, columns=columns, units=units, time=time, name=name,
                          **options)
    except ReaderError:
        raise
    except SnapshotError as exc:
        raise ReaderError(f"{p}: {exc}") from exc
    except (MemoryError, RecursionError) as exc:
        raise ReaderError(f"{p}: cannot read as {fmt}: {type(exc).__name__}") from exc
    except Exception as exc:  # noqa: BLE001 -- a library failure deep in a parser is a bad file
        raise ReaderError(f"{p}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from exc

