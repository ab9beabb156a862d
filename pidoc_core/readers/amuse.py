"""AMUSE HDF5 particle sets (``write_set_to_file(particles, 'x.hdf5', 'amuse')``).

Layout of AMUSE's HDF5 store version 2 (``amusecode/amuse: src/amuse/io/store_v2.py``): a group
``AMUSE_INF`` (attribute ``version`` "2.0") and a group ``data`` holding one group per stored
version, named ``0000000001``, ``0000000002``, ... (the last is the current set). Each particle
group has attributes ``type`` = 'particles' and ``number_of_particles``, collection attributes
with a ``<name>_unit`` twin (e.g. ``timestamp``/``timestamp_unit``), a ``keys`` dataset and a
group ``attributes`` with one dataset per particle attribute (``mass``, ``x``, ``y``, ``z``,
``vx``, ``vy``, ``vz``, ``radius``, ``luminosity``, ``temperature``, ``stellar_type``...). Each
dataset's attribute ``units`` is ``none`` or the unit's ``to_simple_form().reference_string()``,
e.g. ``(3.0856775814913674e+16 * system.get('si').base('length'))`` or
``system.get('nbody').base('mass')``.

The unit strings are parsed without ``eval``: the base units of the ``si`` system map to astropy's
SI units, those of the ``nbody`` system to N-body units that ``nbody_mass`` (Msun) and
``nbody_length`` (pc) scale (G = 1); factors, products, quotients and powers are combined with
:mod:`astropy.units`. Vector attributes (``position``, ``velocity``, shape (N, 3)) are split.
Without ``luminosity`` and ``radius`` the snapshot is dynamics only (the imager refuses it).
"""

from __future__ import annotations

import ast
import re
import warnings

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable, to_gyr
from ._nbody_units import nbody_scales

__all__ = ["is_amuse", "parse_amuse_unit", "read_amuse"]

_SI_BASES = {"length": u.m, "mass": u.kg, "time": u.s, "current": u.A, "temperature": u.K,
             "amount": u.mol, "luminous_intensity": u.cd}
_NBODY = {q: u.def_unit(f"nbody_{q}") for q in ("length", "mass", "time")}
_BASE_RE = re.compile(r"system\.get\('(\w+)'\)\.base\('(\w+)'\)")
_TARGET = {"x": u.pc, "y": u.pc, "z": u.pc, "vx": u.km / u.s, "vy": u.km / u.s,
           "vz": u.km / u.s, "mass": u.Msun, "radius": u.Rsun, "luminosity": u.Lsun,
           "teff": u.K}
_SOURCES = {"teff": "temperature", "kstar": "stellar_type"}


def is_amuse(f) -> bool:
    """True when the open h5py File is an AMUSE store (``AMUSE_INF`` and ``data`` groups)."""
    return "AMUSE_INF" in f and "data" in f


def _evaluate(node, where):
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, where)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name) and node.id.startswith("BASE_"):
        system, quantity = node.id[5:].split("__")
        if system == "si" and quantity in _SI_BASES:
            return _SI_BASES[quantity]
        if system == "nbody" and quantity in _NBODY:
            return _NBODY[quantity]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, where)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.Pow)):
        left, right = _evaluate(node.left, where), _evaluate(node.right, where)
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        return left ** right
    raise ReaderError(f"{where}: unsupported element {ast.dump(node)[:60]} in an AMUSE unit")


def parse_amuse_unit(text, *, where: str = "unit"):
    """An astropy unit (or None for ``none``) from an AMUSE ``reference_string``.

    Parameters
    ----------
    text : str or bytes
        E.g. ``(3.0856775814913674e+16 * system.get('si').base('length'))``.
    where : str
        Context for error messages.

    Returns
    -------
    astropy.units.UnitBase or None
        SI-based unit, or one built from ``nbody_length``/``nbody_mass``/``nbody_time`` units.

    Raises
    ------
    ReaderError
        If the string holds anything but numbers, base units of the ``si`` or ``nbody``
        systems, ``*``, ``/`` and ``**``.

    Examples
    --------
    >>> round(parse_amuse_unit("(3.0856775814913674e+16 * system.get('si').base('length'))")
    ...       .to("pc"), 9)
    1.0
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = str(text).strip()
    if text in ("none", "") or text.startswith("no_system.get("):
        return None  # unitless, or an enumeration such as stellar_type
    expr = _BASE_RE.sub(lambda m: f"BASE_{m.group(1)}__{m.group(2)}", text)
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise ReaderError(f"{where}: AMUSE unit string {text!r} does not parse") from None
    value = _evaluate(tree, f"{where}: {text!r}")
    if not isinstance(value, u.UnitBase):
        value = u.Unit(value * u.dimensionless_unscaled)
    return value


def _last_version(f, path):
    data = f["data"]
    versions = sorted(k for k in data.keys() if k.isdigit())
    if not versions:
        raise ReaderError(f"{path}: AMUSE store without a stored set in 'data'")
    group = data[versions[-1]]
    # a particle set has 'keys' and 'attributes'; a grid has 'shape' instead of 'keys'. (The
    # string attribute 'type' is not read: libhdf5 can hang on a damaged variable-length string.)
    if "attributes" not in group or "keys" not in group:
        raise ReaderError(f"{path}: data/{versions[-1]} is not an AMUSE particle set (expected "
                          "'keys' and 'attributes'; an AMUSE grid has 'shape')")
    return versions[-1], group


def _attributes(group, path) -> dict:
    out = {}
    for key, ds in group["attributes"].items():
        if not hasattr(ds, "shape"):
            continue
        unit = parse_amuse_unit(ds.attrs.get("units", "none"),
                                where=f"{path}: attribute {key!r}")
        values = np.asarray(ds[()], dtype=np.float64) if ds.dtype.kind in "fiub" else None
        if values is None:
            continue
        if values.ndim == 2 and values.shape[1] == 3 and key in ("position", "velocity"):
            names = ("x", "y", "z") if key == "position" else ("vx", "vy", "vz")
            for i, n in enumerate(names):
                out.setdefault(n, (values[:, i], unit))
        elif values.ndim == 1:
            out[key] = (values, unit)
    return out


def _convert(attrs, target, scale, path):
    values, unit = attrs[target if target in attrs else _SOURCES.get(target, target)]
    if target == "kstar":
        return values
    if unit is None:
        raise ReaderError(f"{path}: AMUSE attribute {target!r} has no unit; expected one "
                          f"convertible to {_TARGET[target]}")
    if any(base in _NBODY.values() for base in unit.decompose().bases):
        if scale is None:
            raise ReaderError(f"{path}: attribute {target!r} is in N-body units ({unit}); pass "
                              "nbody_mass= (Msun) and nbody_length= (pc) to scale them")
        unit = unit.decompose(bases=list(_NBODY.values()))
        factor = unit.scale
        for base, power in zip(unit.bases, unit.powers):
            factor = factor * scale[base] ** power
        unit = factor
    try:
        return (values * unit).to_value(_TARGET[target])
    except u.UnitConversionError:
        raise ReaderError(f"{path}: AMUSE attribute {target!r} has unit {unit}, which does not "
                          f"convert to {_TARGET[target]}") from None


def _timestamp(group, path):
    if "timestamp" not in group.attrs or "timestamp_unit" not in group.attrs:
        return 0.0
    unit = parse_amuse_unit(group.attrs["timestamp_unit"], where=f"{path}: timestamp")
    if unit is None or any(b in _NBODY.values() for b in unit.decompose().bases):
        return None
    return to_gyr(float(group.attrs["timestamp"]) * unit, where=f"{path}: timestamp")


def read_amuse(path, *, nbody_mass=None, nbody_length=None, time=None, name=None) -> Snapshot:
    """Read the last particle set stored in an AMUSE HDF5 file, with its units.

    Parameters
    ----------
    path : str or os.PathLike
        The AMUSE HDF5 store.
    nbody_mass, nbody_length : float, optional
        N-body mass unit (Msun) and length unit (pc) for attributes stored in N-body units.
    time : float or astropy.units.Quantity, optional
        Snapshot time (Gyr); default the set's ``timestamp`` (0 when it has none).
    name : str, optional
        Snapshot label; default the file name.

    Returns
    -------
    Snapshot
        Positions pc, velocities km/s, masses Msun, radii Rsun, luminosities Lsun (Teff K and
        kstar when stored as ``temperature``/``stellar_type``).

    Raises
    ------
    ReaderError
        If the store holds no particle set, required attributes are missing, units do not
        parse or convert, or N-body units come without their scales.
    """
    import h5py

    from .nbody6 import DynamicsOnlyWarning, dynamics_only_meta

    path = as_path(path)
    check_readable(path)
    with h5py.File(path, "r") as f:
        if not is_amuse(f):
            raise ReaderError(f"{path}: not an AMUSE HDF5 store (no AMUSE_INF and data groups)")
        version, group = _last_version(f, path)
        attrs = _attributes(group, path)
        stamp = _timestamp(group, path)
    missing = [k for k in ("x", "y", "z", "vx", "vy", "vz", "mass") if k not in attrs]
    if missing:
        raise ReaderError(f"{path}: data/{version}: no attribute(s) {missing}; it has "
                          f"{sorted(attrs)}")
    nbody = any(unit is not None and any(b in _NBODY.values() for b in unit.decompose().bases)
                for _, unit in attrs.values())
    scale = None
    if nbody and nbody_mass is not None and nbody_length is not None:
        s = nbody_scales(nbody_mass, nbody_length, where=str(path),
                         flags="nbody_mass= (Msun) and nbody_length= (pc)")
        scale = {_NBODY["mass"]: s["mass"] * u.Msun, _NBODY["length"]: s["length"] * u.pc,
                 _NBODY["time"]: s["time"] * u.Myr}
    cols = {k: _convert(attrs, k, scale, path) for k in _TARGET
            if k in attrs or _SOURCES.get(k) in attrs}
    if "stellar_type" in attrs:
        cols["kstar"] = _convert(attrs, "kstar", scale, path)
    meta = {"source": str(path), "source_format": "amuse", "amuse_version": version}
    if "luminosity" not in cols or "radius" not in cols:
        meta.update(dynamics_only_meta(str(path), "the particle set of a stellar-evolution "
                                                  "code (attributes luminosity and radius) "
                                                  "would supply them"))
        warnings.warn(meta["missing_reason"], DynamicsOnlyWarning, stacklevel=2)
        cols["luminosity"] = cols["radius"] = np.zeros(cols["mass"].size)
        cols.pop("teff", None)
    if time is not None:
        snap_time = to_gyr(time, where=str(path))
    elif stamp is None:
        raise ReaderError(f"{path}: the set's timestamp is in N-body units; pass time= (Gyr)")
    else:
        snap_time = stamp
    try:
        return Snapshot.from_columns(cols, time=snap_time,
                                     name=path.name if name is None else name, meta=meta)
    except SnapshotError as exc:
        raise ReaderError(f"{path}: {exc}") from exc
