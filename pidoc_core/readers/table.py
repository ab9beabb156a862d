"""Generic star tables: ECSV, CSV, FITS, HDF5 and Parquet.

Tables are read with :meth:`astropy.table.Table.read`; HDF5 files that hold a group of 1-D datasets
instead of a table are read with h5py, and Parquet files astropy cannot read with pandas/pyarrow.
Columns are matched to the snapshot's and converted by :func:`~pidoc_core.readers.columns.map_columns`
(an explicit ``columns`` mapping, then built-in aliases; units from the file, from ``units``, or
snapshot units).

The snapshot time comes from ``time=``, else the table metadata ``time`` (any case) with
``time_unit`` (default Gyr), else 0.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from pidoc_core._atomic import atomic_path
from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable, parse_unit, to_gyr
from ._hdf5_group import read_hdf5_group as _read_hdf5_group
from .columns import COLUMN_ALIASES, LOG_ALIASES, map_columns

__all__ = [
    "TABLE_FORMATS",
    "COLUMN_ALIASES",
    "LOG_ALIASES",
    "load_table",
    "map_columns",
    "read_table",
    "write_table",
]

#: Table formats handled here.
TABLE_FORMATS: tuple[str, ...] = ("ecsv", "csv", "fits", "hdf5", "parquet")

_EXTENSIONS = {
    ".ecsv": "ecsv",
    ".csv": "csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".parquet": "parquet",
    ".pq": "parquet",
}


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def load_table(path, format: str, *, hdu=None, dataset: str | None = None) -> Table:
    """Read a star table without interpreting its columns.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    format : {'ecsv', 'csv', 'fits', 'hdf5', 'parquet'}
        Its format.
    hdu : int or str, optional
        FITS extension holding the table (default: the first table HDU).
    dataset : str, optional
        HDF5 path of the table or group (default: the first table, else the root group's
        1-D datasets).

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    ReaderError
        If the file cannot be parsed as ``format``.
    """
    path = as_path(path)
    if format not in TABLE_FORMATS:
        raise ReaderError(f"{path}: unknown table format {format!r}; expected one of "
                          f"{TABLE_FORMATS}")
    size = check_readable(path)
    if size == 0:
        raise ReaderError(f"{path}: empty file (0 bytes); expected a {format} table")
    try:
        with warnings.catch_warnings():
            # unparsable units and FITS verification notes are not fatal (units are checked
            # later); a warning that the file is truncated is
            warnings.simplefilter("ignore", category=u.UnitsWarning)
            warnings.simplefilter("ignore", category=AstropyUserWarning)
            warnings.filterwarnings("error", message=".*truncat")
            if format == "ecsv":
                return Table.read(path, format="ascii.ecsv")
            if format == "csv":
                return _read_csv(path)
            if format == "fits":
                kwargs = {} if hdu is None else {"hdu": hdu}
                return Table.read(path, format="fits", **kwargs)
            if format == "hdf5":
                return _read_hdf5(path, dataset)
            return _read_parquet(path)
    except ReaderError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a parser failure means a bad file: add context
        raise ReaderError(
            f"{path}: cannot read as {format} ({type(exc).__name__}: {_short(exc)})"
        ) from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_csv(path: Path) -> Table:
    try:
        table = Table.read(path, format="ascii.csv")
    except Exception as first:  # noqa: BLE001
        try:
            return Table.read(path, format="ascii.basic")
        except Exception:  # noqa: BLE001
            raise first from None
    if len(table.colnames) == 1 and re.search(r"\s", table.colnames[0].strip()):
        return Table.read(path, format="ascii.basic")  # whitespace-separated
    return table


def _read_hdf5(path: Path, dataset: str | None) -> Table:
    try:
        kwargs = {} if dataset is None else {"path": dataset}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)  # several tables: first is read
            return Table.read(path, format="hdf5", **kwargs)
    except ValueError as exc:
        if "no table found" not in str(exc):
            raise
    return _read_hdf5_group(path, dataset)


def _read_parquet(path: Path) -> Table:
    try:
        return Table.read(path, format="parquet")
    except (TypeError, NotImplementedError, KeyError):
        import pandas as pd

        return Table.from_pandas(pd.read_parquet(path))


# --------------------------------------------------------------------------------------------
# time and metadata
# --------------------------------------------------------------------------------------------


def _meta_lookup(meta: Mapping, *keys):
    lower = {str(k).lower(): k for k in meta}
    for key in keys:
        if key in lower:
            return lower[key], meta[lower[key]]
    return None, None


def _time_from_meta(meta: Mapping, units: Mapping, where: str) -> float:
    key, value = _meta_lookup(meta, "time")
    if key is None:
        return 0.0
    _, unit_name = _meta_lookup(meta, "time_unit", "timeunit", "tunit")
    if "time" in units:
        unit = parse_unit(units["time"], where=f"{where}: units['time']")
    elif unit_name is not None:
        unit = parse_unit(unit_name, where=f"{where}: metadata time_unit")
    else:
        unit = u.Gyr
    if isinstance(value, u.Quantity):
        return to_gyr(value, where=f"{where}: metadata time")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ReaderError(f"{where}: metadata time {value!r} is not a number") from None
    return to_gyr(value, where=f"{where}: metadata time", default_unit=unit)


_META_DROP = {"time", "time_unit", "timeunit", "tunit", "name"}


def read_table(path, *, format: str | None = None, columns=None, units=None, time=None, name=None,
               hdu=None, dataset=None) -> Snapshot:
    """Read a star table (ECSV, CSV, FITS, HDF5, Parquet) into a Snapshot.

    Parameters
    ----------
    path : str or os.PathLike
        The table file.
    format : {'ecsv', 'csv', 'fits', 'hdf5', 'parquet'}, optional
        Default: detected from the content.
    columns : mapping, optional
        ``{snapshot_name: source_name}``, e.g. ``{"mass": "m_now"}``; other columns are found by
        alias (``m``/``M`` -> mass, ``L``/``lum`` -> luminosity, ``R``/``rad`` -> radius,
        ``T``/``Teff`` -> teff, ``k*``/``kw``/``kstar``/``type`` -> kstar, ``logL`` ... as log10).
    units : mapping, optional
        ``{snapshot_name: unit}`` for source columns, e.g. ``{"x": "au", "vx": "pc/Myr"}``, and
        ``'time'`` for a metadata time. Columns without a unit in the file or here are in
        snapshot units: pc, km/s, Msun, Rsun, Lsun, K.
    time : float or astropy.units.Quantity, optional
        Snapshot time (Gyr); default the metadata ``time`` (with ``time_unit``, default Gyr), or 0.
    name : str, optional
        Default the metadata ``name``, else the file name.
    hdu : int or str, optional
        FITS extension.
    dataset : str, optional
        HDF5 path.

    Returns
    -------
    Snapshot

    Raises
    ------
    ReaderError
        If the file cannot be parsed, columns are missing or ambiguous, units do not convert,
        or the values break the Snapshot contract (NaN, mass <= 0, ...).

    Examples
    --------
    >>> snap = read_table("stars.csv", units={"x": "au", "y": "au", "z": "au"})  # doctest: +SKIP
    """
    path = as_path(path)
    if format is None:
        from ._detect import detect_format

        format = detect_format(path)
    table = load_table(path, format, hdu=hdu, dataset=dataset)
    where = str(path)
    mapped = map_columns(table, columns=columns, units=units, where=where)
    if time is None:
        time_gyr = _time_from_meta(table.meta, dict(units or {}), where)
    else:
        time_gyr = to_gyr(time, where=where)
    if name is None:
        _, meta_name = _meta_lookup(table.meta, "name")
        name = str(meta_name) if meta_name is not None else path.name
    meta = {k: v for k, v in table.meta.items() if str(k).lower() not in _META_DROP}
    meta.update(source=str(path), source_format=format)
    mapped.meta.update(meta)
    try:
        return Snapshot.from_table(mapped, time=time_gyr, name=name)
    except SnapshotError as exc:
        raise ReaderError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _format_from_path(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None or fmt == "csv":
        raise ValueError(
            f"{path}: cannot tell the format from the extension; use .ecsv, .fits, .h5/.hdf5 "
            "or .parquet, or pass format="
        )
    return fmt


def _scalar_meta(meta: Mapping) -> dict:
    out = {}
    for key, value in meta.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, int, float, str)) and not (
                isinstance(value, float) and not math.isfinite(value)):
            out[str(key)] = value
    return out


def write_table(snapshot: Snapshot, path, *, format: str | None = None,
                overwrite: bool = False) -> Path:
    """Write a snapshot as a table that :func:`read_table` (and ``read_snapshot``) reads back.

    Columns carry their units (pc, km/s, Msun, Rsun, Lsun, K); ``time`` (Gyr) and ``name`` go to
    the metadata (``TIME``, ``TIMEUNIT``, ``NAME`` header cards in FITS, where only scalar
    metadata is kept). The file is written under a temporary name in the same directory and
    renamed, so a failed write leaves nothing half-written.

    Parameters
    ----------
    snapshot : Snapshot
        The snapshot.
    path : str or os.PathLike
        Destination; its extension chooses the format unless ``format`` is given.
    format : {'ecsv', 'fits', 'hdf5', 'parquet'}, optional
        Output format.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the format is unknown.

    Examples
    --------
    >>> from pidoc_core.snapshot import Snapshot
    >>> import tempfile, pathlib
    >>> s = Snapshot(x=[0, 1], y=[0, 0], z=[0, 0], vx=[0, 0], vy=[0, 0], vz=[0, 0],
    ...              mass=[1.0, 0.5], radius=[1.0, 0.5], luminosity=[1.0, 0.05], time=12.0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_table(s, pathlib.Path(tmp) / "snap.ecsv")
    ...     print(read_table(out).time)
    12.0
    """
    path = Path(os.fspath(path))
    fmt = format.lower() if format is not None else _format_from_path(path)
    if fmt not in ("ecsv", "fits", "hdf5", "parquet"):
        raise ValueError(f"cannot write format {fmt!r}; expected ecsv, fits, hdf5 or parquet")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    table = snapshot.to_table()
    # the temporary file is ours (created empty by atomic_path): writers may overwrite it
    with atomic_path(path, suffix=".tmp") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # HIERARCH cards, YAML of meta
            if fmt == "ecsv":
                table.write(tmp, format="ascii.ecsv", overwrite=True)
            elif fmt == "fits":
                meta = _scalar_meta(table.meta)
                meta.pop("time", None)
                meta.pop("time_unit", None)
                meta.pop("name", None)
                table.meta.clear()
                table.meta.update(meta)
                table.meta["TIME"] = snapshot.time
                table.meta["TIMEUNIT"] = "Gyr"
                table.meta["NAME"] = snapshot.name
                table.write(tmp, format="fits", overwrite=True)
            elif fmt == "hdf5":
                table.write(tmp, format="hdf5", path="snapshot", serialize_meta=True,
                            overwrite=True)
            else:
                table.write(tmp, format="parquet", overwrite=True)
    return path

