"""A whole split in memory, standardised, for training (:func:`load_arrays`)."""

from __future__ import annotations

import numpy as np

from ..conventions import log_luminosity_per_pixel
from ._common import DatasetError
from .store import _as_dataset

__all__ = ["ARRAY_TARGETS", "load_arrays"]

#: Arrays :func:`load_arrays` can return, beside the per-sample coordinates.
ARRAY_TARGETS = ("flux", "mass", "ml", "log_distance", "distance_age")


def load_arrays(ds, *, standardisation: dict, targets=("flux", "mass"), dtype="float16") -> dict:
    """A whole split in memory, standardised, for training (the network's units).

    Read one zarr chunk at a time into preallocated arrays, so the peak memory is the output plus
    one chunk. The maps are smoothed log10 values with standard deviations of order 1, so
    float16 (11-bit mantissa: ~5e-4 relative) keeps them well inside the networks' errors
    (~0.05 dex) at half the memory of float32.

    Parameters
    ----------
    ds : xarray.Dataset or path
        A split.
    standardisation : dict
        Constants of the training split (:func:`standardisation`).
    targets : sequence of str, keyword-only
        Among ``'flux'`` (input maps), ``'mass'`` (log10 mass maps), ``'ml'`` (log10 M/L_V maps,
        the distance-aware target), ``'log_distance'`` (per sample), ``'distance_age'``
        (``(n, 2)`` ``[distance, age]`` with the joint or per-output constants).
    dtype : str, keyword-only
        dtype of the maps (per-sample values are float32).

    Returns
    -------
    dict
        ``name -> numpy.ndarray`` for every target, maps ``(n, H, W)``, and the physical
        ``distance`` (kpc), ``time`` (Gyr), ``field_mass`` (Msun), ``field_luminosity_v`` (Lsun)
        per sample.
    """
    ds = _as_dataset(ds)
    unknown = sorted(set(targets) - set(ARRAY_TARGETS))
    if unknown:
        raise DatasetError(f"load_arrays: unknown target(s) {unknown}; choose from "
                           f"{list(ARRAY_TARGETS)}")
    c = standardisation
    missing = [k for t in targets for k in _TARGET_KEYS[t] if k not in c]
    if missing:
        raise DatasetError(f"load_arrays: the standardisation lacks {sorted(set(missing))} "
                           "(recompute it with pidoc_core.dataset.standardisation)")
    n, ny, nx = (int(ds.sizes[k]) for k in ("sample", "y", "x"))
    d = np.asarray(ds["distance"].values, np.float64)
    t = np.asarray(ds["time"].values, np.float64)
    out = {"distance": d.astype(np.float32), "time": t.astype(np.float32),
           "field_mass": np.asarray(ds["field_mass"].values, float),
           "field_luminosity_v": np.asarray(ds["field_luminosity_v"].values, float)}
    if "log_distance" in targets:
        out["log_distance"] = ((np.log10(d) - c["log_distance_mean"]) /
                               c["log_distance_std"]).astype(np.float32)
    if "distance_age" in targets:
        both = np.stack([d, t], axis=1)
        out["distance_age"] = ((both - np.asarray(c["distance_age_mean"])) /
                               np.asarray(c["distance_age_std"])).astype(np.float32)
    maps = [k for k in ("flux", "mass", "ml") if k in targets]
    for k in maps:
        out[k] = np.empty((n, ny, nx), dtype=dtype)
    step = int(ds["flux"].encoding.get("chunks", (ds.attrs.get("chunk_size", 32),))[0] or 32)
    for start in range(0, n, step):
        sl = slice(start, min(start + step, n))
        f = np.asarray(ds["flux"][sl].values, np.float32)
        m = np.asarray(ds["mass"][sl].values, np.float32) if {"mass", "ml"} & set(maps) else None
        if "flux" in maps:
            out["flux"][sl] = (f - c["flux_mean"]) / c["flux_std"]
        if "mass" in maps:
            out["mass"][sl] = (m - c["mass_mean"]) / c["mass_std"]
        if "ml" in maps:
            logl = log_luminosity_per_pixel(f, d[sl, None, None])
            out["ml"][sl] = (m - logl - c["ml_mean"]) / c["ml_std"]
    return out


_TARGET_KEYS = {"flux": ("flux_mean", "flux_std"), "mass": ("mass_mean", "mass_std"),
                "ml": ("ml_mean", "ml_std"),
                "log_distance": ("log_distance_mean", "log_distance_std"),
                "distance_age": ("distance_age_mean", "distance_age_std")}
