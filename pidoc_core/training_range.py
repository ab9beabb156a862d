"""The field-luminosity range of a training set, measured from the set itself (paper Fig. 10).

Chardin & Bianchini (2021, Sect. 5, Fig. 10) compare an observed cluster's V-band luminosity in
the 40" field with the field luminosities of their training maps at the same distance and age:
a field brighter than every old training field is read by the networks as a young cluster. This
module measures that range from a training split (a store of :mod:`pidoc_core.dataset`), per age
bin and per distance, as a JSON-serialisable dict that a model keeps in its provenance under
``"training_luminosity_range"``, and looks a (distance, age) up in it (the range check of
:mod:`pidoc_core.observations.range` uses it).

The record (``kind == "pidoc-training-luminosity-range"``, ``version == 1``):

- ``age_edges_gyr``: edges of the age bins, Gyr (n_age + 1);
- ``distance_kpc``: the distinct training distances, kpc (n_distance);
- ``count``: maps per (age bin, distance), n_age x n_distance;
- ``min_lsun``, ``max_lsun``, ``p_lo_lsun``, ``p_hi_lsun``: field luminosity (Lsun) per
  (age bin, distance), ``None`` where a cell has no map; ``percentiles`` gives the two
  percentiles of ``p_lo``/``p_hi``;
- ``bounds``: ``"minmax"`` or ``"percentile"``, the pair :func:`luminosity_bounds` uses;
- ``luminosity_v_lsun``, ``distance_kpc_range``, ``age_min_gyr``: a single overall pair for
  ages >= ``age_min_gyr`` and distances within ``distance_kpc_range`` (the paper's statement
  "ages > 11 Gyr at 10-40 kpc"), kept so that readers of the older one-pair form still work;
- ``n_maps``, ``psf_fwhm_arcsec``, ``source``: what was measured.

Luminosities in Lsun, distances in kpc, ages in Gyr.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["RANGE_KIND", "DEFAULT_AGE_EDGES_GYR", "OLD_AGE_GYR", "measure_luminosity_range",
           "luminosity_range_from_arrays", "luminosity_bounds", "is_measured_range"]

#: ``kind`` of a measured range record.
RANGE_KIND = "pidoc-training-luminosity-range"
#: Default age bins, Gyr: 1 Gyr wide over 0-14 Gyr.
DEFAULT_AGE_EDGES_GYR = tuple(float(a) for a in range(15))
#: Age above which a cluster counts as old (the paper's Fig. 10 test: ages > 11 Gyr), Gyr.
OLD_AGE_GYR = 11.0
_VERSION = 1


def _edges(age_edges_gyr):
    try:
        edges = np.asarray(age_edges_gyr, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"age_edges_gyr must be numbers, got {age_edges_gyr!r}") from None
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) \
            or np.any(np.diff(edges) <= 0):
        raise ValueError("age_edges_gyr must be at least 2 finite, increasing ages (Gyr), got "
                         f"{age_edges_gyr!r}")
    return edges


def _cell_list(values):
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in values]


def luminosity_range_from_arrays(luminosity_v_lsun, time_gyr, distance_kpc, *,
                                 age_edges_gyr=DEFAULT_AGE_EDGES_GYR, percentiles=(1.0, 99.0),
                                 bounds="minmax", age_min_gyr=OLD_AGE_GYR,
                                 distance_kpc_range=(10.0, 40.0), psf_fwhm_arcsec=None,
                                 source="arrays") -> dict:
    """The measured range record from per-map arrays (see the module notes for its keys).

    Parameters
    ----------
    luminosity_v_lsun, time_gyr, distance_kpc : array_like
        Field V-band luminosity (Lsun), age (Gyr) and distance (kpc) of each map; same length.
    age_edges_gyr : sequence of float, keyword-only
        Edges of the age bins, Gyr; a map on the last edge belongs to the last bin, maps outside
        the edges are not counted.
    percentiles : (float, float), keyword-only
        Percentiles (0-100) of the ``p_lo_lsun``/``p_hi_lsun`` pair.
    bounds : {'minmax', 'percentile'}, keyword-only
        Which pair the range check uses.
    age_min_gyr : float, keyword-only
        Lower age of the overall pair ``luminosity_v_lsun``, Gyr.
    distance_kpc_range : (float, float), keyword-only
        Distances of the overall pair, kpc.
    psf_fwhm_arcsec : sequence of float, optional
        Seeing of the maps, recorded as is.
    source : str, keyword-only
        Where the arrays come from.

    Returns
    -------
    dict
        JSON-serialisable (lists, floats, ints, None and str only).

    Examples
    --------
    >>> rec = luminosity_range_from_arrays([100.0, 300.0, 200.0], [12.2, 12.7, 3.0],
    ...                                    [10.0, 10.0, 10.0])
    >>> rec["min_lsun"][12], rec["max_lsun"][12], rec["luminosity_v_lsun"]
    ([100.0], [300.0], [100.0, 300.0])
    """
    lum = np.asarray(luminosity_v_lsun, dtype=float).ravel()
    age = np.asarray(time_gyr, dtype=float).ravel()
    dist = np.asarray(distance_kpc, dtype=float).ravel()
    if not lum.size == age.size == dist.size:
        raise ValueError(f"luminosity_v_lsun, time_gyr and distance_kpc must have one value per "
                         f"map, got {lum.size}, {age.size} and {dist.size}")
    if bounds not in ("minmax", "percentile"):
        raise ValueError(f"bounds must be 'minmax' or 'percentile', got {bounds!r}")
    p_lo, p_hi = (float(p) for p in percentiles)
    if not 0.0 <= p_lo < p_hi <= 100.0:
        raise ValueError(f"percentiles must be two increasing values in 0-100, got {percentiles!r}")
    edges = _edges(age_edges_gyr)
    ok = np.isfinite(lum) & np.isfinite(age) & np.isfinite(dist) & (lum > 0)
    lum, age, dist = lum[ok], age[ok], dist[ok]
    distances = np.unique(np.round(dist, 9))
    bins = np.searchsorted(edges, age, side="right") - 1
    bins[age == edges[-1]] = edges.size - 2
    shape = (edges.size - 1, distances.size)
    stats = {k: np.full(shape, np.nan) for k in ("min", "max", "p_lo", "p_hi")}
    count = np.zeros(shape, dtype=int)
    d_index = np.searchsorted(distances, np.round(dist, 9))
    for i in range(shape[0]):
        for j in range(shape[1]):
            cell = lum[(bins == i) & (d_index == j)]
            count[i, j] = cell.size
            if cell.size:
                stats["min"][i, j], stats["max"][i, j] = cell.min(), cell.max()
                stats["p_lo"][i, j], stats["p_hi"][i, j] = np.percentile(cell, [p_lo, p_hi])
    d_lo, d_hi = (float(v) for v in distance_kpc_range)
    old = (age >= float(age_min_gyr)) & (dist >= d_lo) & (dist <= d_hi)
    overall = [float(lum[old].min()), float(lum[old].max())] if old.any() else None
    return {
        "kind": RANGE_KIND, "version": _VERSION,
        "age_edges_gyr": edges.tolist(), "distance_kpc": distances.tolist(),
        "count": count.tolist(),
        "min_lsun": _cell_list(stats["min"]), "max_lsun": _cell_list(stats["max"]),
        "p_lo_lsun": _cell_list(stats["p_lo"]), "p_hi_lsun": _cell_list(stats["p_hi"]),
        "percentiles": [p_lo, p_hi], "bounds": bounds,
        "luminosity_v_lsun": overall, "distance_kpc_range": [d_lo, d_hi],
        "age_min_gyr": float(age_min_gyr), "n_maps": int(lum.size),
        "psf_fwhm_arcsec": None if psf_fwhm_arcsec is None else
        sorted({float(p) for p in np.asarray(psf_fwhm_arcsec, float).ravel()}),
        "source": str(source),
    }


def measure_luminosity_range(train, *, age_edges_gyr=DEFAULT_AGE_EDGES_GYR,
                             percentiles=(1.0, 99.0), bounds="minmax", age_min_gyr=OLD_AGE_GYR,
                             distance_kpc_range=(10.0, 40.0)) -> dict:
    """Measure the field-luminosity range of a training split, per age bin and distance.

    Reads only the per-map totals (``field_luminosity_v``, Lsun) and the ``time`` (Gyr),
    ``distance`` (kpc) and ``psf_fwhm`` (arcsec) coordinates, never the maps.

    Parameters
    ----------
    train : str, os.PathLike or xarray.Dataset
        A training split: a store path (opened with :func:`pidoc_core.dataset.open_dataset`) or
        an opened dataset.
    age_edges_gyr, percentiles, bounds, age_min_gyr, distance_kpc_range
        As :func:`luminosity_range_from_arrays`.

    Returns
    -------
    dict
        The range record, to store as ``provenance["training_luminosity_range"]``.

    Raises
    ------
    ValueError
        If the dataset lacks ``field_luminosity_v``, ``time`` or ``distance``.
    """
    import xarray as xr

    if isinstance(train, xr.Dataset):
        ds, source = train, str(train.attrs.get("store", "an opened dataset"))
    else:
        from .dataset import open_dataset

        ds, source = open_dataset(train), str(train)
    missing = [k for k in ("field_luminosity_v", "time", "distance") if k not in ds.variables]
    if missing:
        raise ValueError(f"train lacks {missing}; expected a pi-DOC dataset split with "
                         "field_luminosity_v (Lsun) and the time (Gyr) and distance (kpc) "
                         "coordinates")
    split = ds.attrs.get("split")
    psf = ds["psf_fwhm"].values if "psf_fwhm" in ds.variables else None
    return luminosity_range_from_arrays(
        np.asarray(ds["field_luminosity_v"].values), np.asarray(ds["time"].values),
        np.asarray(ds["distance"].values), age_edges_gyr=age_edges_gyr, percentiles=percentiles,
        bounds=bounds, age_min_gyr=age_min_gyr, distance_kpc_range=distance_kpc_range,
        psf_fwhm_arcsec=psf, source=f"measured from {source}"
        + (f" (split {split})" if split else ""))


def is_measured_range(record) -> bool:
    """True when ``record`` is a per-age, per-distance range of :func:`measure_luminosity_range`."""
    return isinstance(record, Mapping) and record.get("kind") == RANGE_KIND


def _cells(record, key):
    return np.array([[np.nan if v is None else float(v) for v in row] for row in record[key]],
                    dtype=float).reshape(len(record["age_edges_gyr"]) - 1,
                                         len(record["distance_kpc"]))


def _along_distance(lo, hi, distances, d):
    """log-log interpolation of the per-distance bounds at ``d`` over the distances with data."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return math.nan, math.nan
    x = np.log(distances[ok])
    xd = math.log(min(max(d, distances[ok][0]), distances[ok][-1]))
    return (float(np.exp(np.interp(xd, x, np.log(lo[ok])))),
            float(np.exp(np.interp(xd, x, np.log(hi[ok])))))


def luminosity_bounds(record, distance_kpc: float, age_gyr: float | None = None) -> dict:
    """The training field-luminosity range at one distance and age, from a measured record.

    Within each age bin the lower and upper bounds are interpolated linearly in log L and
    log d between the training distances (clamped outside them). With ``age_gyr`` the bounds are
    interpolated linearly in age between the centres of the bins with maps (clamped at the
    first and last); without it, the range is the envelope of the bins at or above
    ``record["age_min_gyr"]`` (old clusters, as in the paper's Fig. 10 test).

    Parameters
    ----------
    record : dict
        From :func:`measure_luminosity_range`.
    distance_kpc : float
        Distance, kpc (> 0).
    age_gyr : float, optional
        Age, Gyr.

    Returns
    -------
    dict
        ``lo`` and ``hi`` (Lsun; NaN when the record has no maps), ``ages_gyr`` (the age span
        used), ``distance_clamped`` (True when ``distance_kpc`` lies outside the training
        distances), ``bounds`` (``"minmax"`` or ``"percentile"``).

    Examples
    --------
    >>> rec = luminosity_range_from_arrays([100.0, 400.0, 1000.0, 4000.0], [12.5] * 4,
    ...                                    [10.0, 10.0, 40.0, 40.0])
    >>> b = luminosity_bounds(rec, 20.0, 12.5)
    >>> round(b["lo"]), round(b["hi"])
    (316, 1265)
    """
    if not is_measured_range(record):
        raise ValueError("record must be a measured range (kind "
                         f"{RANGE_KIND!r}), got {type(record).__name__}")
    d = float(distance_kpc)
    if not (math.isfinite(d) and d > 0):
        raise ValueError(f"distance_kpc must be positive and finite, got {distance_kpc!r}")
    pair = ("min_lsun", "max_lsun") if record.get("bounds", "minmax") == "minmax" \
        else ("p_lo_lsun", "p_hi_lsun")
    lo, hi = _cells(record, pair[0]), _cells(record, pair[1])
    distances = np.asarray(record["distance_kpc"], dtype=float)
    edges = np.asarray(record["age_edges_gyr"], dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    per_bin = np.array([_along_distance(lo[i], hi[i], distances, d) for i in range(centres.size)])
    have = np.isfinite(per_bin).all(axis=1)
    out = dict(lo=math.nan, hi=math.nan, ages_gyr=None, bounds=record.get("bounds", "minmax"),
               distance_clamped=bool(distances.size == 0 or not distances[0] <= d <= distances[-1]))
    if age_gyr is None or not math.isfinite(float(age_gyr)):
        sel = have & (edges[1:] > float(record.get("age_min_gyr", OLD_AGE_GYR)))
        if sel.any():
            out.update(lo=float(per_bin[sel, 0].min()), hi=float(per_bin[sel, 1].max()),
                       ages_gyr=(float(edges[:-1][sel].min()), float(edges[1:][sel].max())))
        return out
    if have.any():
        a = float(age_gyr)
        c = centres[have]
        out.update(lo=float(np.exp(np.interp(a, c, np.log(per_bin[have, 0])))),
                   hi=float(np.exp(np.interp(a, c, np.log(per_bin[have, 1])))),
                   ages_gyr=(a, a))
    return out
