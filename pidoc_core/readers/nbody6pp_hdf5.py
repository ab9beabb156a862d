"""NBODY6++GPU HDF5 snapshots: ``snap.40_<TTOT>.h5part``.

Written by ``custom_output`` / ``custom_output_facility.F`` (Long Wang, Maxwell Xu Cai; upgraded
by R. Spurzem in Aug 2021) when the code is built with HDF5 and ``KZ(46)`` > 0. Layouts implemented
(public sources, ``code`` search corpus):

One group ``Step#<i>`` per output step (attribute ``Time``, N-body units), in two layouts:

* **2021+ layout** (``nbody6ppgpu/Nbody6PPGPU-beijing: src/Main/custom_output_facility.F``):
  numbered datasets in the step group -- ``'000 Scalars'`` (the 100 values ``S_AS``: ``AS(1)`` TTOT,
  ``AS(2)`` NPAIRS, ``AS(3)`` RBAR, ``AS(4)`` ZMBAR, ``AS(5)`` N, ``AS(6)`` TSTAR, ``AS(7:9)``
  RDENS, ``AS(11)`` TSCALE, ``AS(12)`` VSTAR, ..., ``AS(68:70)`` N_SINGLE, N_BINARY, N_MERGER),
  ``'001 X1'``..``'003 X3'`` (pc), ``'004 V1'``..``'006 V3'`` (km/s), ``'023 M'`` (Msun),
  ``'026 R*'`` (Rsun), ``'027 L*'`` (Lsun), ``'028 Teff*'`` (K), ``'031 KW'``, ``'032 Name'``,
  ``'033 Type'`` (0 single, -1 KS-binary component, 1 centre of mass), then ``'101 Bin cm X1'``
  ... ``'163 Bin cm Name'`` for binaries. Since Aug 2021 the binary components are also stored as
  stars ("N_SINGLE is now NTOT ... all members"), so the star list is the ``0xx`` datasets, with
  centres of mass (Type 1) dropped; the group attribute ``N_STAR`` counts them.
* **older layout** (``nbodyx/Nbody6ppGPU: src/Main/custom_output_facility.F``): datasets ``NAM``,
  ``X1 X2 X3`` (pc), ``V1 V2 V3`` (km/s), ``M`` (Msun), ``RS`` (Rsun), ``L`` (Lsun), ``TE`` (K),
  ``RC``, ``MC``, ``KW`` for single stars (attribute ``N_SINGLE``) and a subgroup ``Binaries``
  (attribute ``N_BINARY``) with ``XC1..3`` (pc), ``VC1..3`` (km/s), ``M1 M2`` (Msun), ``XR1..3``
  (AU, relative position), ``VR1..3`` (km/s), ``RS1 RS2``, ``L1 L2``, ``TE1 TE2``, ``KW1 KW2``,
  ``NAM1 NAM2``: each binary is resolved into its two components about the centre of mass
  (``x1 = xc + m2/(m1+m2) xr``, ``x2 = xc - m1/(m1+m2) xr``).

Units are physical (pc, km/s, Msun, Rsun, Lsun) as ``custom_output`` scales them, except when
the run had ``KZ(19) = 0`` and ``KZ(12) = -1`` -- then the output is unscaled but also has no
stellar-evolution datasets, which this reader reports as a dynamics-only file it cannot scale.

``KZ(46)`` = 1 or 2 writes only the particles active at that block step (partial steps; full
steps only at ``KZ(46)`` = 3, 4 or T = 0): a partial step is recognised by its star count being
smaller than the file's full steps or than ``N`` of its scalars, and refused unless
``partial=True``.
"""

from __future__ import annotations

import re

import numpy as np
from astropy import units as u

from pidoc_core.snapshot import Snapshot, SnapshotError

from ._common import ReaderError, as_path, check_readable, to_gyr

__all__ = ["SNAP40_NEW", "SNAP40_OLD", "is_snap40", "list_steps", "read_snap40"]

#: Datasets of the 2021+ layout used here (name after the 3-digit number).
SNAP40_NEW = {"x": "X1", "y": "X2", "z": "X3", "vx": "V1", "vy": "V2", "vz": "V3", "mass": "M",
              "radius": "R*", "luminosity": "L*", "kstar": "KW", "name": "Name", "type": "Type"}
#: Datasets of the older layout used here.
SNAP40_OLD = {"x": "X1", "y": "X2", "z": "X3", "vx": "V1", "vy": "V2", "vz": "V3", "mass": "M",
              "radius": "RS", "luminosity": "L", "kstar": "KW", "name": "NAM"}
_STEP_RE = re.compile(r"^Step#(\d+)$")
_NUMBERED = re.compile(r"^(\d{3}) (.+)$")


def is_snap40(f) -> bool:
    """True when the open h5py File has ``Step#<i>`` groups at its root."""
    keys = list(f.keys())
    return bool(keys) and all(_STEP_RE.match(k) for k in keys)


def _datasets(group) -> tuple[str, dict]:
    """('2021' or 'old', {short name: dataset}) of one step group."""
    import h5py

    numbered = {}
    plain = {}
    for key, item in group.items():
        if not isinstance(item, h5py.Dataset):
            continue
        m = _NUMBERED.match(key)
        if m:
            numbered[m.group(2)] = item
        else:
            plain[key] = item
    if numbered:
        return "2021", numbered
    return "old", plain


def list_steps(path) -> list[dict]:
    """The steps of a ``snap.40`` file: index, time (N-body), star count and layout, in step order.

    Raises
    ------
    ReaderError
        If the file is not an NBODY6++GPU HDF5 snapshot.
    """
    import h5py

    path = as_path(path)
    check_readable(path)
    out = []
    with h5py.File(path, "r") as f:
        if not is_snap40(f):
            raise ReaderError(f"{path}: not an NBODY6++GPU snap.40 file (expected only "
                              f"'Step#<i>' groups at the root, found {sorted(f.keys())[:6]})")
        for key in sorted(f.keys(), key=lambda k: int(_STEP_RE.match(k).group(1))):
            group = f[key]
            layout, ds = _datasets(group)
            name_key = "Name" if layout == "2021" else "NAM"
            n = int(ds[name_key].shape[0]) if name_key in ds else 0
            if layout == "old" and "Binaries" in group and "NAM1" in group["Binaries"]:
                n += 2 * int(group["Binaries"]["NAM1"].shape[0])
            scalars = np.asarray(ds["Scalars"][()], float) if "Scalars" in ds else None
            out.append({"index": int(_STEP_RE.match(key).group(1)), "group": key,
                        "time": float(np.asarray(group.attrs.get("Time", np.nan))), "n": n,
                        "layout": layout, "scalars": scalars})
    if not out:
        raise ReaderError(f"{path}: snap.40 file without steps")
    return out


def _full(steps, step) -> bool:
    n_full = max(s["n"] for s in steps)
    if step["n"] < n_full:
        return False
    sc = step["scalars"]
    if sc is not None and sc.size >= 5 and np.isfinite(sc[4]) and sc[1] >= 0:
        return step["n"] >= int(round(sc[4])) - int(round(sc[1]))  # N minus c.m. bodies
    return True


def _choose_step(steps, index, partial, path):
    full = [s for s in steps if _full(steps, s)]
    described = ", ".join(f"{s['index']} (T = {s['time']:g}, {s['n']} stars"
                          f"{'' if s in full else ', partial'})" for s in steps[:8])
    if index is None:
        if len(steps) == 1:
            step = steps[0]
        else:
            raise ReaderError(f"{path}: holds {len(steps)} steps ({described}"
                              f"{' ...' if len(steps) > 8 else ''}); pass index= (the Step#i "
                              "number, -1 for the last)")
    else:
        pool = {s["index"]: s for s in steps}
        key = steps[index]["index"] if index < 0 and -index <= len(steps) else index
        if key not in pool:
            raise ReaderError(f"{path}: no step {index}; the file has {described}")
        step = pool[key]
    if step not in full and not partial:
        raise ReaderError(
            f"{path}: Step#{step['index']} holds {step['n']} stars, fewer than a full step "
            f"({max(s['n'] for s in steps)}): a KZ(46) = 1/2 partial step with only the "
            "particles active at that block step; choose a full step with index= or pass "
            "partial=True"
        )
    return step


def _read_columns(group, layout, path):
    _, ds = _datasets(group)
    names = SNAP40_NEW if layout == "2021" else SNAP40_OLD
    for key in ("x", "y", "z", "vx", "vy", "vz", "mass", "name"):
        if names[key] not in ds:
            raise ReaderError(f"{path}: {group.name}: no dataset {names[key]!r} "
                              f"({layout} snap.40 layout); the group has {sorted(ds)[:12]}")
    cols = {k: np.asarray(ds[v][()]).astype(np.float64).ravel() for k, v in names.items()
            if v in ds}
    n = cols["name"].size
    for k, v in cols.items():
        if v.size != n:
            raise ReaderError(f"{path}: {group.name}: dataset {names[k]!r} has {v.size} values, "
                              f"{names['name']!r} has {n}; expected one value per star")
    if layout == "2021" and "type" in cols:
        keep = cols.pop("type") != 1  # drop KS centres of mass: their components are stars
        cols = {k: v[keep] for k, v in cols.items()}
    if layout == "old" and "Binaries" in group:
        cols = _add_old_binaries(cols, group["Binaries"], path)
    return cols


def _add_old_binaries(cols, bgroup, path):
    need = ["XC1", "XC2", "XC3", "VC1", "VC2", "VC3", "XR1", "XR2", "XR3", "VR1", "VR2", "VR3",
            "M1", "M2", "NAM1", "NAM2"]
    if "NAM1" not in bgroup or bgroup["NAM1"].shape[0] == 0:
        return cols
    missing = [k for k in need if k not in bgroup]
    if missing:
        raise ReaderError(f"{path}: {bgroup.name}: no dataset(s) {missing}")
    b = {k: np.asarray(bgroup[k][()], np.float64).ravel() for k in bgroup.keys()
         if hasattr(bgroup[k], "shape")}
    m1, m2 = b["M1"], b["M2"]
    f1, f2 = m2 / (m1 + m2), -m1 / (m1 + m2)
    au = float((1 * u.au).to_value(u.pc))
    comp = {"mass": (m1, m2), "name": (b["NAM1"], b["NAM2"])}
    for axis, k in enumerate(("x", "y", "z")):
        xc, xr = b[f"XC{axis + 1}"], b[f"XR{axis + 1}"] * au
        comp[k] = (xc + f1 * xr, xc + f2 * xr)
    for axis, k in enumerate(("vx", "vy", "vz")):
        vc, vr = b[f"VC{axis + 1}"], b[f"VR{axis + 1}"]
        comp[k] = (vc + f1 * vr, vc + f2 * vr)
    for k, (one, two) in (("radius", ("RS1", "RS2")), ("luminosity", ("L1", "L2")),
                          ("kstar", ("KW1", "KW2"))):
        if k in cols and one in b and two in b:
            comp[k] = (b[one], b[two])
    out = {}
    for k, v in cols.items():
        if k not in comp:
            raise ReaderError(f"{path}: {bgroup.name}: no {k} for the binary components")
        out[k] = np.concatenate([v, comp[k][0], comp[k][1]])
    return out


def read_snap40(path, *, index: int | None = None, partial: bool = False, time=None,
                name=None) -> Snapshot:
    """Read one step of an NBODY6++GPU ``snap.40_<t>.h5part`` HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file (either layout of the module docstring).
    index : int, optional
        The ``Step#<i>`` number (negative counts from the last step); required when the file
        holds more than one step.
    partial : bool
        Accept a ``KZ(46)`` partial step (only the particles active at that step).
    time : float or astropy.units.Quantity, optional
        Override the snapshot time (Gyr); default ``Time`` x TSTAR (Myr) when the step has its
        scalars, else the error asks for ``time=``.
    name : str, optional
        Snapshot label; default the file name and step.

    Returns
    -------
    Snapshot
        Positions pc, velocities km/s, masses Msun, radii Rsun, luminosities Lsun, kstar, time
        Gyr; ``meta`` holds the step, its layout and scalings.

    Raises
    ------
    ReaderError
        If the file is not a snap.40 file, the step is missing or partial, datasets are
        missing or of unequal length, the step has no stellar-evolution datasets, or values
        break the Snapshot contract.
    """
    import h5py

    path = as_path(path)
    steps = list_steps(path)
    step = _choose_step(steps, index, partial, path)
    with h5py.File(path, "r") as f:
        group = f[step["group"]]
        cols = _read_columns(group, step["layout"], path)
    if "luminosity" not in cols or "radius" not in cols:
        raise ReaderError(
            f"{path}: {step['group']} has no stellar-evolution datasets (R*/L* or RS/L): the run "
            "had KZ(12) <= 0, so luminosities and radii are missing and, with KZ(19) = 0 and "
            "KZ(12) = -1, positions are unscaled N-body values; read the conf.3 file of the "
            "same time with its sev.83 instead"
        )
    sc = step["scalars"]
    meta = {"source": str(path), "source_format": "nbody6-hdf5", "layout": step["layout"],
            "step": step["index"], "ttot_nbody": step["time"], "n_stars": int(cols["mass"].size)}
    if sc is not None and sc.size >= 12:
        meta.update(rbar_pc=float(sc[2]), zmbar_msun=float(sc[3]), tstar_myr=float(sc[5]),
                    vstar_kms=float(sc[11]), rdens_pc=[float(v) * float(sc[2]) for v in sc[6:9]])
    if time is not None:
        snap_time = to_gyr(time, where=str(path))
    elif "tstar_myr" in meta:
        snap_time = to_gyr(step["time"] * meta["tstar_myr"], where=str(path), default_unit=u.Myr)
    else:
        raise ReaderError(f"{path}: {step['group']} (older layout) stores the time only in "
                          f"N-body units (Time = {step['time']:g}); pass time= (Gyr)")
    keep = cols["mass"] > 0  # massless ghosts of mergers
    meta["n_massless_dropped"] = int((~keep).sum())
    try:
        return Snapshot(
            **{k: cols[k][keep] for k in ("x", "y", "z", "vx", "vy", "vz", "mass", "radius",
                                          "luminosity")},
            kstar=cols["kstar"][keep] if "kstar" in cols else None, time=snap_time,
            name=f"{path.name}:{step['group']}" if name is None else name, meta=meta)
    except SnapshotError as exc:
        raise ReaderError(f"{path}: {step['group']}: {exc}") from exc

