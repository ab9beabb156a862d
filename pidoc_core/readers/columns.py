"""Matching a star table's columns to the snapshot's: explicit mapping, aliases, units.

Columns are matched by an explicit ``columns`` mapping, then by built-in aliases
(:data:`COLUMN_ALIASES`, :data:`LOG_ALIASES`) and 3-vector columns. Columns carrying astropy
units are converted; columns without units are taken to be in snapshot units (pc, km/s, Msun,
Rsun, Lsun, K), unless ``units`` says otherwise. A column name with a bracketed unit,
``"x [au]"`` or ``"mass (Msun)"``, gives that unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from astropy import units as u
from astropy.table import MaskedColumn, Table

from pidoc_core.snapshot import COLUMNS, OPTIONAL_COLUMNS

from ._common import ReaderError, parse_unit

__all__ = ["COLUMN_ALIASES", "LOG_ALIASES", "map_columns"]

_SNAPSHOT_UNITS: dict[str, u.UnitBase] = {**COLUMNS, **OPTIONAL_COLUMNS}

#: Built-in aliases: (names matched exactly, names matched after lower-casing and dropping
#: spaces, ``_``, ``.`` and ``-``). Single letters match exactly only (``r`` is not a radius).
COLUMN_ALIASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "x": (("x", "X"), ("posx", "xpos", "positionx", "px")),
    "y": (("y", "Y"), ("posy", "ypos", "positiony", "py")),
    "z": (("z", "Z"), ("posz", "zpos", "positionz", "pz")),
    "vx": ((), ("vx", "velx", "xvel", "velocityx", "vxkms")),
    "vy": ((), ("vy", "vely", "yvel", "velocityy", "vykms")),
    "vz": ((), ("vz", "velz", "zvel", "velocityz", "vzkms")),
    "mass": (("m", "M"), ("mass", "mt", "mstar", "smass", "currentmass")),
    "radius": (("R",), ("radius", "rad", "rstar", "srad", "stellarradius")),
    "luminosity": (("L",), ("lum", "luminosity", "lbol", "lstar", "slum")),
    "teff": (("T",), ("teff", "tef", "effectivetemperature")),
    "kstar": ((), ("kstar", "k*", "kw", "type", "ktype", "stype", "stellartype", "startype")),
}
#: Aliases of columns holding log10 of a quantity (converted with 10**value).
LOG_ALIASES: dict[str, tuple[str, ...]] = {
    "luminosity": ("logl", "log10l", "loglum", "log10lum", "logluminosity"),
    "radius": ("logr", "log10r", "lograd", "log10rad", "logradius"),
    "teff": ("logt", "logte", "logteff", "log10teff", "log10t"),
}
#: Vector columns split into x, y, z.
_VECTOR_ALIASES = {
    ("x", "y", "z"): ("pos", "position", "positions", "xyz", "r"),
    ("vx", "vy", "vz"): ("vel", "velocity", "velocities", "v", "vxyz"),
}

_UNIT_IN_NAME = re.compile(r"^\s*(?P<name>[^\[\(]+?)\s*[\[\(]\s*(?P<unit>[^\]\)]+?)\s*[\]\)]\s*$")
def _norm(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", str(name)).lower()



def _unit_of(column) -> u.UnitBase | None:
    unit = getattr(column, "unit", None)
    if unit is None or unit == u.dimensionless_unscaled:
        return None
    return unit


def _is_numeric(column) -> bool:
    return np.asarray(getattr(column, "value", column)).dtype.kind in "fiub"


def _find_alias(table: Table, target: str, used: set, where: str):
    exact, normed = COLUMN_ALIASES[target]
    hits = [c for c in table.colnames if c not in used and
            (c in exact or (_norm(c) in normed and len(_norm(c)) > 1))]
    if target in OPTIONAL_COLUMNS:  # an optional column found by alias must be numeric
        hits = [c for c in hits if _is_numeric(table[c]) and table[c].ndim == 1]
    if len(hits) > 1:
        raise ReaderError(
            f"{where}: columns {hits} could all be {target!r}; name one with columns="
            f"{{{target!r}: ...}}"
        )
    return hits[0] if hits else None


def _find_log_alias(table: Table, target: str, used: set, where: str):
    names = LOG_ALIASES.get(target, ())
    hits = [c for c in table.colnames if c not in used and _norm(c) in names]
    if len(hits) > 1:
        raise ReaderError(f"{where}: columns {hits} could all be log10 {target!r}; name one with "
                          f"columns=")
    return hits[0] if hits else None


def _split_units_in_names(table: Table) -> tuple[Table, dict[str, str]]:
    """Rename ``"x [au]"`` to ``x`` with unit au (only for columns without a unit).

    Returns the table and the old -> new names."""
    renames = {}
    for name in table.colnames:
        m = _UNIT_IN_NAME.match(name)
        if not m or _unit_of(table[name]) is not None:
            continue
        try:
            unit = u.Unit(m.group("unit").strip(), parse_strict="raise")
        except ValueError:
            continue
        new = m.group("name").strip()
        if new in table.colnames or new in renames.values():
            continue
        renames[name] = (new, unit)
    if not renames:
        return table, {}
    table = table.copy(copy_data=False)
    for old, (new, unit) in renames.items():
        table.rename_column(old, new)
        table[new].unit = unit
    return table, {old: new for old, (new, _) in renames.items()}


def _column_values(column, target: str, where: str) -> np.ndarray:
    if isinstance(column, MaskedColumn) or hasattr(column, "mask"):
        mask = np.asarray(getattr(column, "mask", False))
        if mask.any():
            row = int(np.flatnonzero(mask.reshape(len(column), -1).any(axis=1))[0])
            raise ReaderError(f"{where}: column {target!r} has a missing value at row {row}")
    values = np.asarray(getattr(column, "value", column))
    if values.dtype.kind not in "fiub":
        raise ReaderError(
            f"{where}: column {target!r} is not numeric (dtype {values.dtype}); expected numbers"
        )
    return values.astype(np.float64)


def _check_mapping(table: Table, columns: dict, units: dict, where: str) -> None:
    """Unknown snapshot names in ``columns``/``units`` and mapped columns absent from the table."""
    known = set(_SNAPSHOT_UNITS)
    for key in columns:
        if key not in known:
            raise ReaderError(f"{where}: columns= key {key!r} is not a snapshot column; expected "
                              f"one of {sorted(known)}")
    for key in units:
        if key not in known | {"time"}:
            raise ReaderError(f"{where}: units= key {key!r} is not a snapshot column; expected "
                              f"one of {sorted(known | {'time'})}")
    for key, src in columns.items():
        if src not in table.colnames:
            raise ReaderError(f"{where}: column {src!r} (given for {key!r}) is not in the table; "
                              f"it has {table.colnames}")


def _choose_columns(table: Table, columns: dict, where: str) -> dict:
    """Snapshot name -> (source column, holds log10, vector component or None): the given
    mapping first, then exact names, aliases, log aliases and 3-vector columns."""
    chosen: dict[str, tuple[str, bool, int | None]] = {
        target: (src, False, None) for target, src in columns.items()}
    used = set(columns.values())
    for target in _SNAPSHOT_UNITS:
        if target in chosen:
            continue
        if target in table.colnames and target not in used and table[target].ndim == 1:
            chosen[target] = (target, False, None)
            used.add(target)
            continue
        hit = _find_alias(table, target, used, where)
        if hit is not None:
            chosen[target] = (hit, False, None)
            used.add(hit)
            continue
        hit = _find_log_alias(table, target, used, where)
        if hit is not None:
            chosen[target] = (hit, True, None)
            used.add(hit)
    for comps, names in _VECTOR_ALIASES.items():
        if any(c in chosen for c in comps):
            continue
        hits = [c for c in table.colnames if c not in used and _norm(c) in names
                and table[c].ndim == 2 and table[c].shape[1] == 3]
        if len(hits) == 1:
            for i, comp in enumerate(comps):
                chosen[comp] = (hits[0], False, i)
            used.add(hits[0])
    missing = [c for c in COLUMNS if c not in chosen]
    if missing:
        raise ReaderError(
            f"{where}: no column for {missing} (required: {list(COLUMNS)}); the table has "
            f"{table.colnames}; map names with columns={{'mass': 'your_name', ...}}"
        )
    return chosen


def _from_log(values, unit, src: str, target: str, given_unit: bool, where: str):
    """Linear values and unit of a column holding log10 of ``target``."""
    if isinstance(unit, u.FunctionUnitBase) and unit.physical_unit != u.dimensionless_unscaled:
        quantity = u.Quantity(values, unit).physical  # e.g. dex(Lsun)
        return quantity.value, quantity.unit
    if unit is None or isinstance(unit, u.FunctionUnitBase) or given_unit:
        with np.errstate(over="ignore"):  # overflow -> inf, rejected by Snapshot
            values = 10.0 ** values  # plain log10; units[target] is the linear unit
        return values, (None if isinstance(unit, u.FunctionUnitBase) else unit)
    raise ReaderError(f"{where}: column {src!r} looks like log10 {target} but has "
                      f"unit {unit}; expected no unit or dex")


def _converted(table: Table, target: str, how: tuple, units: dict, where: str):
    """One snapshot column from its source: values (with their unit where known)."""
    src, is_log, comp = how
    column = table[src]
    if comp is not None:
        values = _column_values(column, target, where)[:, comp]
    else:
        if column.ndim != 1:
            raise ReaderError(f"{where}: column {src!r} (for {target!r}) has shape "
                              f"{column.shape}; expected one value per star")
        values = _column_values(column, target, where)
    unit = _unit_of(column)
    if target in units:
        unit = parse_unit(units[target], where=f"{where}: units[{target!r}]")
    if is_log:
        values, unit = _from_log(values, unit, src, target, target in units, where)
    if target == "kstar":
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 32767)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ReaderError(f"{where}: column {src!r} (kstar) has {float(values[row])!r} at "
                              f"row {row}; expected an integer SSE type")
        return values.astype(np.int64)
    if unit is None:
        return values
    try:
        unit.to(_SNAPSHOT_UNITS[target])
    except u.UnitConversionError:
        raise ReaderError(
            f"{where}: column {src!r} (for {target!r}) has unit {unit}, which does not "
            f"convert to {_SNAPSHOT_UNITS[target]}"
        ) from None
    except (ValueError, TypeError):
        raise ReaderError(f"{where}: column {src!r} has an unrecognised unit "
                          f"{unit!r}") from None
    return values * unit


def map_columns(table: Table, *, columns: Mapping[str, str] | None = None,
                units: Mapping[str, object] | None = None, where: str = "table") -> Table:
    """Rename and convert a table's columns to the snapshot's names and units.

    Parameters
    ----------
    table : astropy.table.Table
        Source table.
    columns : mapping, optional
        ``{snapshot_name: source_name}``; names not given are found by alias.
    units : mapping, optional
        ``{snapshot_name: unit}``: the unit of that source column (replacing any unit in the
        file). ``'time'`` gives the unit of a metadata time.
    where : str
        Context (file name) for error messages.

    Returns
    -------
    astropy.table.Table
        Columns named as :data:`pidoc_core.snapshot.COLUMNS` (plus ``teff``/``kstar`` when
        found), as Quantities where a unit is known, plain floats (snapshot units) otherwise.

    Raises
    ------
    ReaderError
        For unknown names in ``columns``/``units``, a mapped column absent from the table,
        ambiguous aliases, missing required columns, non-numeric or masked values, invalid units.
    """
    columns = dict(columns or {})
    units = dict(units or {})
    _check_mapping(table, columns, units, where)
    table, renamed = _split_units_in_names(table)
    columns = {key: renamed.get(src, src) for key, src in columns.items()}
    chosen = _choose_columns(table, columns, where)
    out = Table()
    for target in (*COLUMNS, *OPTIONAL_COLUMNS):
        if target in chosen:
            out[target] = _converted(table, target, chosen[target], units, where)
    return out
