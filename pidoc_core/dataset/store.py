"""Reading dataset stores: :func:`open_dataset`, :func:`concat_splits`, :func:`completion`,
:func:`select`, :func:`dataset_info`, and the training split's constants (:func:`standardisation`,
:func:`training_mass_to_light`)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..conventions import LOG10_4PI
from ._common import (_COORDS, _STRING_COORDS, DatasetError, _is_store, _read_attrs, _read_done,
                      _store_path, _strs)

__all__ = ["open_dataset", "concat_splits", "completion", "select", "standardisation",
           "training_mass_to_light", "dataset_info"]


def completion(path) -> tuple[int, int]:
    """``(chunks done, chunks in total)`` of a dataset store, from its ``done`` markers."""
    p = _store_path(path)
    if not _is_store(p):
        raise DatasetError(f"{p}: no dataset store here (no zarr.json)")
    _read_attrs(p)
    done = _read_done(p)
    return int(done.sum()), int(done.size)


def open_dataset(path, *, allow_incomplete: bool = False, chunks="auto-zarr") -> xr.Dataset:
    """Open a dataset store lazily.

    Parameters
    ----------
    path : str or os.PathLike
        The zarr store written by :func:`write_dataset`.
    allow_incomplete : bool
        Open a store whose build has not finished, with a warning; its unwritten maps read as NaN
        and a boolean per-sample coordinate ``complete`` tells which samples are written.
    chunks : optional
        ``'auto-zarr'`` (default): dask arrays with the store's chunks; ``None``: xarray's lazy
        backend arrays without dask (indexing reads only the chunks it needs).

    Returns
    -------
    xarray.Dataset
        ``flux``/``mass`` and the field totals lazily; the per-sample coordinates in memory (so
        ``ds.where(ds.distance == 50, drop=True)`` and boolean ``isel`` work).

    Raises
    ------
    DatasetError
        Not a pi-DOC dataset store, or an incomplete one (without ``allow_incomplete``).
    """
    p = _store_path(path)
    if not _is_store(p):
        raise DatasetError(f"{p}: no dataset store here (no zarr.json)")
    _read_attrs(p)
    kwargs = {} if chunks == "auto-zarr" else {"chunks": chunks}
    ds = xr.open_zarr(str(p), consolidated=False, **kwargs)
    done = np.asarray(ds["done"].values).astype(bool)
    ds = ds.drop_vars("done")
    if not done.all():
        message = (f"{p}: incomplete store, {int(done.sum())} of {done.size} chunks written; "
                   "run the same build again to resume it")
        if not allow_incomplete:
            raise DatasetError(message + " (or pass allow_incomplete=True)")
        warnings.warn(message, stacklevel=2)
        cs = int(ds.attrs["chunk_size"])
        ds = ds.assign_coords(complete=("sample", np.repeat(done, cs)[: ds.sizes["sample"]]))
    loaded = {}
    for name in _COORDS:
        values = ds[name].values
        if name in _STRING_COORDS:
            values = _strs(values)
        loaded[name] = ("sample", values, ds[name].attrs)
    return ds.assign_coords(loaded)


def concat_splits(paths) -> xr.Dataset:
    """Several complete stores of one split as one dataset (e.g. the ``wide`` and ``wide-extra``
    presets' ``train.zarr``: more runs for the same networks).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Stores written by :func:`write_dataset` with the same split (stores of
        :func:`~pidoc_core.dataset.build_dataset`, split 'custom', join any) and the same
        imager set-up (map size, pixel scale, smoothing, photometry).

    Returns
    -------
    xarray.Dataset
        As :func:`open_dataset`, samples in the order of ``paths`` and numbered again from 0;
        attributes ``split``, ``chunk_size``, ``imager_setup_json`` (shared), ``store`` (the
        paths joined by ' + ') and ``stores_json`` (each store's path, plan digest and size).

    Raises
    ------
    DatasetError
        No path, an incomplete store, or stores of different splits or imager set-ups (named).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("concat_splits: no store given")
    parts = [open_dataset(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    for key in ("split", "imager_setup_json"):
        values = {str(p): ds.attrs.get(key) for p, ds in zip(paths, parts)}
        if len(set(values.values()) - ({"custom"} if key == "split" else set())) > 1:
            raise DatasetError(f"concat_splits: the stores differ in {key}: "
                               + "; ".join(f"{p}: {v}" for p, v in values.items()))
    ds = xr.concat(parts, dim="sample", data_vars="all", coords="different", compat="equals",
                   combine_attrs="drop")
    ds = ds.assign_coords(sample=np.arange(ds.sizes["sample"]))
    splits = {d.attrs.get("split") for d in parts} - {"custom"}
    ds.attrs = {"split": splits.pop() if splits else "custom",
                "chunk_size": int(parts[0].attrs.get("chunk_size", 32)),
                "imager_setup_json": parts[0].attrs.get("imager_setup_json"),
                "store": " + ".join(str(p) for p in paths),
                "stores_json": json.dumps([{"path": str(p), "plan_sha256": d.attrs.get(
                    "plan_sha256"), "n_samples": int(d.sizes["sample"])}
                    for p, d in zip(paths, parts)])}
    return ds


def _as_dataset(ds) -> xr.Dataset:
    if isinstance(ds, xr.Dataset):
        return ds
    if isinstance(ds, (str, os.PathLike)):
        return open_dataset(ds)
    raise DatasetError(f"expected an xarray Dataset or a store path, got {type(ds).__name__}")


def select(ds: xr.Dataset, **conditions) -> xr.Dataset:
    """Samples whose coordinates match all ``conditions``.

    Each condition is a per-sample coordinate name with a value or a list of values; floats
    match to 1e-9 (relative).

    Examples
    --------
    >>> ds = xr.Dataset(coords={"distance": ("sample", [10.0, 50.0, 50.0]),
    ...                         "run": ("sample", ["a", "b", "a"])})
    >>> select(ds, distance=50, run="a").sizes["sample"]
    1
    """
    mask = np.ones(ds.sizes["sample"], dtype=bool)
    for name, wanted in conditions.items():
        if name not in ds.coords or ds[name].dims != ("sample",):
            raise DatasetError(f"select: {name!r} is not a per-sample coordinate; choose from "
                               f"{[c for c in ds.coords if ds[c].dims == ('sample',)]}")
        values = np.asarray(ds[name].values)
        wanted = np.atleast_1d(np.asarray(wanted))
        if values.dtype.kind in "fi" and wanted.dtype.kind in "fiu":
            hit = np.isclose(values[:, None], wanted[None, :].astype(float), rtol=1e-9,
                             atol=1e-12).any(axis=1)
        else:
            hit = np.isin(_strs(values), _strs(wanted))
        mask &= hit
    return ds.isel(sample=mask)


def standardisation(train_ds, *, joint_distance_age: bool = True,
                    allow_other_split: bool = False) -> dict:
    """Standardisation constants of a training set, in :class:`pidoc_core.model.PiDOC`'s keys.

    Computed chunk by chunk (dask), in float64, over every pixel of every sample.

    Parameters
    ----------
    train_ds : xarray.Dataset or path
        The training split.
    joint_distance_age : bool
        One mean and std over all distance (kpc) and age (Gyr) values together, the published
        v0.1 convention (29.63, 32.40); False gives one per output, ``[distance, age]``.
    allow_other_split : bool
        Accept a store whose ``split`` attribute is 'val' or 'test' (refused by default: the
        constants must come from the training split only).

    Returns
    -------
    dict
        ``flux_mean``, ``flux_std`` (log10 Lsun kpc-2), ``mass_mean``, ``mass_std`` (log10 Msun),
        ``distance_age_mean``, ``distance_age_std``; for the distance-aware mass network also
        ``ml_mean``, ``ml_std`` (log10 M/L_V per pixel, log10(Msun/Lsun)) and
        ``log_distance_mean``, ``log_distance_std`` (log10 kpc, over samples).
    """
    import dask

    ds = _as_dataset(train_ds)
    split = ds.attrs.get("split", "custom")
    if split in ("val", "test") and not allow_other_split:
        raise DatasetError(f"standardisation: this is the {split!r} split; constants must come "
                           "from the training split only (allow_other_split=True to override)")
    if ds.sizes.get("sample", 0) == 0:
        raise DatasetError("standardisation: the dataset has no samples")
    f = ds["flux"].astype(np.float64)
    m = ds["mass"].astype(np.float64)
    ml = m - f - (LOG10_4PI + 2.0 * np.log10(ds["distance"]))  # log10 M/L_V per pixel
    fm, fs, mm, ms, mlm, mls = dask.compute(f.mean().data, f.std().data, m.mean().data,
                                            m.std().data, ml.mean().data, ml.std().data)
    d = np.asarray(ds["distance"].values, float)
    t = np.asarray(ds["time"].values, float)
    if joint_distance_age:
        both = np.concatenate([d, t])
        dam, das = float(both.mean()), float(both.std())
    else:
        dam, das = [float(d.mean()), float(t.mean())], [float(d.std()), float(t.std())]
    out = dict(flux_mean=float(fm), flux_std=float(fs), mass_mean=float(mm), mass_std=float(ms),
               distance_age_mean=dam, distance_age_std=das, ml_mean=float(mlm),
               ml_std=float(mls), log_distance_mean=float(np.log10(d).mean()),
               log_distance_std=float(np.log10(d).std()))
    for k in ("flux_std", "mass_std", "ml_std"):
        if not out[k] > 0:
            raise DatasetError(f"standardisation: {k} is {out[k]!r}; the maps are constant")
    return out


def training_mass_to_light(field_mass, field_luminosity_v=None, *, how: str = "mean") -> float:
    """The training set's mean V-band mass-to-light ratio Upsilon, Msun/Lsun.

    Parameters
    ----------
    field_mass : array_like or xarray.Dataset
        Total mass in the field of each training map, Msun; or a dataset with variables or
        coordinates ``field_mass`` (Msun) and ``field_luminosity_v`` (Lsun).
    field_luminosity_v : array_like, optional
        Total V luminosity in the field of each map, Lsun (not needed with a dataset).
    how : {"mean", "ratio"}
        ``"mean"``: mean over maps of field_mass / field_luminosity_v; ``"ratio"``: sum of masses
        over sum of luminosities (luminosity-weighted).

    Returns
    -------
    float
        Upsilon, Msun/Lsun.

    Examples
    --------
    >>> training_mass_to_light([2.0, 6.0], [1.0, 2.0])
    2.5
    >>> training_mass_to_light([2.0, 6.0], [1.0, 2.0], how="ratio")
    2.6666666666666665
    """
    if isinstance(field_mass, xr.Dataset):
        ds = field_mass
        missing = [k for k in ("field_mass", "field_luminosity_v") if k not in ds.variables]
        if missing:
            raise DatasetError(f"training dataset lacks {missing}: need linear field totals "
                                  "field_mass (Msun) and field_luminosity_v (Lsun)")
        field_mass, field_luminosity_v = ds["field_mass"].values, ds["field_luminosity_v"].values
    if field_luminosity_v is None:
        raise DatasetError("field_luminosity_v is needed with array field masses")
    m = np.asarray(field_mass, dtype=float).ravel()
    lum = np.asarray(field_luminosity_v, dtype=float).ravel()
    if m.shape != lum.shape or not m.size:
        raise DatasetError(f"field_mass ({m.size}) and field_luminosity_v ({lum.size}) must "
                              "have one value per map")
    ok = np.isfinite(m) & np.isfinite(lum) & (lum > 0)
    if not ok.any():
        raise DatasetError("no map with a finite mass and a positive luminosity")
    if how == "mean":
        return float(np.mean(m[ok] / lum[ok]))
    if how == "ratio":
        return float(m[ok].sum() / lum[ok].sum())
    raise DatasetError(f"how must be 'mean' or 'ratio', got {how!r}")


def dataset_info(path) -> dict:
    """A summary of a store: sizes, coordinate ranges, completeness, provenance.

    Works on incomplete stores (it reads the ``done`` markers and the plan, not the maps).
    """
    p = _store_path(path)
    done_n, total = completion(p)
    ds = xr.open_zarr(str(p), consolidated=False)
    info = {
        "path": str(p),
        "split": ds.attrs.get("split"),
        "n_samples": int(ds.sizes["sample"]),
        "map_shape": (int(ds.sizes["y"]), int(ds.sizes["x"])),
        "chunk_size": int(ds.attrs.get("chunk_size", 0)),
        "chunks_done": done_n,
        "chunks_total": total,
        "complete": done_n == total,
        "seed": ds.attrs.get("seed"),
        "code_version": ds.attrs.get("code_version"),
        "plan_sha256": ds.attrs.get("plan_sha256"),
        "runs": {},
        "ranges": {},
        "size_bytes": sum(f.stat().st_size for f in p.rglob("*") if f.is_file()),
    }
    runs, counts = np.unique(_strs(ds["run"].values), return_counts=True)
    info["runs"] = {str(r): int(c) for r, c in zip(runs, counts)}
    for name in ("time", "distance", "psf_fwhm", "shift_x", "shift_y", "rotation"):
        v = np.asarray(ds[name].values, float)
        info["ranges"][name] = {"min": float(v.min()), "max": float(v.max()),
                                "n_distinct": int(np.unique(v).size),
                                "units": ds[name].attrs.get("units", "")}
    los, c = np.unique(_strs(ds["line_of_sight"].values), return_counts=True)
    info["lines_of_sight"] = {str(a): int(b) for a, b in zip(los, c)}
    combos = set(zip(_strs(ds["run"].values).tolist(), ds["time"].values.tolist(),
                     ds["distance"].values.tolist(), ds["psf_fwhm"].values.tolist()))
    info["n_combinations"] = len(combos)
    info["n_snapshots"] = len({c[:2] for c in combos})
    info["repeat_factor"] = info["n_samples"] / max(len(combos), 1)
    info["maps_per_snapshot"] = info["n_samples"] / max(info["n_snapshots"], 1)
    return info
