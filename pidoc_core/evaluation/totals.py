"""Per-map totals (Fig. 6), radial profiles (eq. 3, Fig. 7) and distances (Table 2, Fig. 9)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..conventions import N_PIXELS, PIXEL_ARCSEC
from ._common import _CHUNK, EvaluationError, _chunk, _maps, _per_sample, _values
from .metrics import bin_edges

__all__ = ["total_mass", "total_flux", "luminosity_from_flux", "map_totals", "radial_edges",
           "pixel_radii", "radial_profile", "radial_profiles", "distance_table", "distance_pdfs"]

_PIXEL_ARCSEC = PIXEL_ARCSEC
_N_PIXELS = N_PIXELS


def _sum_linear(maps, name, chunk_size):
    m = _maps(maps, name)
    out = np.empty(m.shape[0])
    for s in range(0, m.shape[0], chunk_size):
        out[s:s + chunk_size] = np.sum(10.0 ** _chunk(m, s, s + chunk_size), axis=(1, 2))
    return out


def total_mass(mass_log10, *, chunk_size: int = _CHUNK):
    """Total mass in the field of each map: sum of 10**mass over pixels.

    Parameters
    ----------
    mass_log10 : array_like or xarray.DataArray
        log10 mass per pixel, Msun, ``(sample, y, x)`` or ``(y, x)``.

    Returns
    -------
    numpy.ndarray
        Msun, shape ``(sample,)``.

    Examples
    --------
    >>> total_mass(np.zeros((1, 4, 4))).tolist()
    [16.0]
    """
    return _sum_linear(mass_log10, "mass", chunk_size)


def total_flux(flux_log10, *, chunk_size: int = _CHUNK):
    """Total V-band flux in the field of each map, Lsun kpc^-2 (sum of 10**flux over pixels)."""
    return _sum_linear(flux_log10, "flux", chunk_size)


def luminosity_from_flux(flux, distance_kpc):
    """Absolute V-band luminosity L = F 4 pi d^2, Lsun, from a linear flux in Lsun kpc^-2.

    Examples
    --------
    >>> round(float(luminosity_from_flux(1.0 / (4 * np.pi * 100.0), 10.0)), 12)
    1.0
    """
    return np.asarray(flux, dtype=np.float64) * 4.0 * np.pi * np.asarray(distance_kpc,
                                                                         dtype=np.float64) ** 2


def map_totals(mass_true, mass_pred, flux, distance_kpc, *, chunk_size: int = _CHUNK):
    """Total mass and total M/L of each map, true and predicted (Fig. 6).

    The luminosity is the absolute V luminosity of the field with the distance known,
    L = F_total 4 pi d^2 (Sect. 4.1.3), the same for the true and predicted M/L.

    Parameters
    ----------
    mass_true, mass_pred : array_like or DataArray
        log10 mass per pixel, Msun, ``(sample, y, x)``.
    flux : array_like or DataArray
        log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)``.
    distance_kpc : array_like
        True distance of each map, kpc (scalar or ``(sample,)``).

    Returns
    -------
    xarray.Dataset
        Over ``sample``: ``mass_true``, ``mass_pred`` (Msun), ``luminosity_v`` (Lsun),
        ``ml_true``, ``ml_pred`` (Msun/Lsun).
    """
    mt = total_mass(mass_true, chunk_size=chunk_size)
    mp = total_mass(mass_pred, chunk_size=chunk_size)
    if mt.shape != mp.shape:
        raise EvaluationError(f"mass_true has {mt.size} maps, mass_pred {mp.size}")
    f = total_flux(flux, chunk_size=chunk_size)
    if f.shape != mt.shape:
        raise EvaluationError(f"flux has {f.size} maps, the masses {mt.size}")
    lum = luminosity_from_flux(f, _per_sample(distance_kpc, mt.size, "distance_kpc"))
    ds = xr.Dataset({
        "mass_true": ("sample", mt, {"units": "Msun", "long_name": "true total mass in the field"}),
        "mass_pred": ("sample", mp, {"units": "Msun", "long_name": "predicted total mass"}),
        "luminosity_v": ("sample", lum, {"units": "Lsun", "long_name": "V luminosity, F 4 pi d^2"}),
        "ml_true": ("sample", mt / lum, {"units": "Msun/Lsun", "long_name": "true M/L_V"}),
        "ml_pred": ("sample", mp / lum, {"units": "Msun/Lsun", "long_name": "predicted M/L_V"}),
    })
    return ds


# ---------------------------------------------------------------------------------------------
# radial profiles (eq. 3, Fig. 7)
# ---------------------------------------------------------------------------------------------


def radial_edges(n_bins: int = 25, r_max: float = 30.0):
    """Radial bin edges, arcsec: the paper's 25 bins of Delta r ~ 1.2" (0 to 30").

    Examples
    --------
    >>> e = radial_edges(); len(e) - 1, round(float(e[1] - e[0]), 3)
    (25, 1.2)
    """
    if n_bins < 1 or not r_max > 0:
        raise EvaluationError(f"need n_bins >= 1 and r_max > 0, got {n_bins}, {r_max}")
    return np.linspace(0.0, float(r_max), int(n_bins) + 1)


def pixel_radii(shift_x, shift_y, *, n_pixels: int = _N_PIXELS,
                pixel_arcsec: float = _PIXEL_ARCSEC):
    """Distance of every pixel centre from the cluster centre, arcsec.

    The cluster centre is the field centre plus ``(shift_x, shift_y)`` (as in the imager); pixel
    ``[j, i]`` has its centre at ``((i + 0.5) p - n p / 2, (j + 0.5) p - n p / 2)``.

    Parameters
    ----------
    shift_x, shift_y : float or array_like
        Offset of the cluster centre from the field centre, arcsec; scalars or ``(sample,)``.
    n_pixels : int
        Pixels along a side.
    pixel_arcsec : float
        Pixel side, arcsec.

    Returns
    -------
    numpy.ndarray
        ``(sample, y, x)`` radii, arcsec (``sample`` of 1 for scalar shifts).
    """
    c = (np.arange(n_pixels) + 0.5) * pixel_arcsec - n_pixels * pixel_arcsec / 2.0
    sx = np.atleast_1d(np.asarray(shift_x, dtype=float))[:, None, None]
    sy = np.atleast_1d(np.asarray(shift_y, dtype=float))[:, None, None]
    return np.hypot(c[None, None, :] - sx, c[None, :, None] - sy)


def _annulus_sums(values, radii, edges):
    """Per-sample sums and pixel counts of ``values`` in annuli: (n, nb), (n, nb)."""
    n, nb = values.shape[0], len(edges) - 1
    idx = np.searchsorted(edges, radii, side="right") - 1
    ok = (idx >= 0) & (idx < nb) & np.isfinite(values)
    lab = (np.arange(n)[:, None, None] * nb + idx)[ok]
    sums = np.bincount(lab, values[ok], minlength=n * nb).reshape(n, nb)
    counts = np.bincount(lab, minlength=n * nb).reshape(n, nb)
    return sums, counts


def radial_profile(values, shift_x, shift_y, *, edges=None, statistic: str = "mean",
                   log10_input: bool = False, pixel_arcsec: float = _PIXEL_ARCSEC,
                   chunk_size: int = _CHUNK):
    """Azimuthal profile of linear per-pixel values about the cluster centre, eq. (3).

    M(r) = sum of M_i over pixels with r - dr/2 <= r_i < r + dr/2, divided by their number.

    Parameters
    ----------
    values : array_like
        Linear per-pixel values (e.g. mass per pixel in Msun, 10**mass), ``(sample, y, x)`` or
        ``(y, x)``.
    shift_x, shift_y : float or array_like
        Cluster centre offsets from the field centre, arcsec; scalar or ``(sample,)``.
    edges : array_like, optional
        Radial edges, arcsec; default :func:`radial_edges` (25 bins of 1.2").
    statistic : {"mean", "sum"}
        Mean per pixel (eq. 3) or sum over the annulus.
    log10_input : bool
        ``values`` are log10 of the per-pixel quantity (e.g. a mass map in log10 Msun); they are
        raised to 10** chunk by chunk before averaging (the average is always linear).
    pixel_arcsec : float
        Pixel side, arcsec.

    Returns
    -------
    profile : numpy.ndarray
        ``(sample, radius)`` in the units of ``values`` (per pixel for ``"mean"``); NaN for
        annuli with no pixel in the field.
    n_pixels : numpy.ndarray
        ``(sample, radius)`` pixels in each annulus.
    """
    v = _maps(values, "values")
    n, h, w = v.shape
    if h != w:
        raise EvaluationError(f"maps must be square, got {h} x {w}")
    edges = radial_edges() if edges is None else np.asarray(edges, dtype=float)
    sx = _per_sample(shift_x, n, "shift_x")
    sy = _per_sample(shift_y, n, "shift_y")
    nb = len(edges) - 1
    sums, counts = np.zeros((n, nb)), np.zeros((n, nb), np.int64)
    for s in range(0, n, chunk_size):
        e = min(n, s + chunk_size)
        radii = pixel_radii(sx[s:e], sy[s:e], n_pixels=h, pixel_arcsec=pixel_arcsec)
        chunk = _chunk(v, s, e)
        if log10_input:
            chunk = 10.0**chunk
        sums[s:e], counts[s:e] = _annulus_sums(chunk, radii, edges)
    if statistic == "sum":
        out = np.where(counts > 0, sums, np.nan)
    elif statistic == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(counts > 0, sums / counts, np.nan)
    else:
        raise EvaluationError(f"statistic must be 'mean' or 'sum', got {statistic!r}")
    return out, counts


def radial_profiles(mass_true, mass_pred, flux, distance_kpc, shift_x, shift_y, *, edges=None,
                    pixel_arcsec: float = _PIXEL_ARCSEC):
    """Mass (eq. 3) and M/L radial profiles, true and predicted, with their ratios (Fig. 7).

    Parameters
    ----------
    mass_true, mass_pred : array_like
        log10 mass per pixel, Msun, ``(sample, y, x)``.
    flux : array_like
        log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)``.
    distance_kpc : float or array_like
        Distance of each map (kpc), to turn flux into luminosity L = F 4 pi d^2.
    shift_x, shift_y : float or array_like
        Cluster centre offsets from the field centre, arcsec.
    edges : array_like, optional
        Radial edges, arcsec (default 25 bins of 1.2").

    Returns
    -------
    xarray.Dataset
        Over ``(sample, radius)``: ``mass_true``, ``mass_pred`` (mean mass per pixel, Msun),
        ``luminosity`` (mean V luminosity per pixel, Lsun), ``ml_true``, ``ml_pred``
        (sum M / sum L in the annulus, Msun/Lsun), ``mass_ratio`` and ``ml_ratio``
        (true / predicted, as Fig. 7's lower panel), ``n_pixels``. ``radius`` is the bin centre
        (arcsec) with ``radius_lower``/``radius_upper``.
    """
    edges = radial_edges() if edges is None else np.asarray(edges, dtype=float)
    mt, mp, f = _maps(mass_true, "mass_true"), _maps(mass_pred, "mass_pred"), _maps(flux, "flux")
    n = mt.shape[0]
    if mp.shape[0] != n or f.shape[0] != n:
        raise EvaluationError(f"mass_true, mass_pred and flux must hold the same number of maps; "
                              f"got {mt.shape[0]}, {mp.shape[0]}, {f.shape[0]}")
    d = _per_sample(distance_kpc, n, "distance_kpc")
    kw = dict(edges=edges, pixel_arcsec=pixel_arcsec, log10_input=True)
    prof_t, counts = radial_profile(mt, shift_x, shift_y, **kw)
    prof_p, _ = radial_profile(mp, shift_x, shift_y, **kw)
    prof_f, _ = radial_profile(f, shift_x, shift_y, **kw)
    lum = luminosity_from_flux(prof_f, d[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        ml_t, ml_p = prof_t / lum, prof_p / lum
        data = {
            "mass_true": (("sample", "radius"), prof_t, {"units": "Msun",
                                                         "long_name": "true mean mass per pixel"}),
            "mass_pred": (("sample", "radius"), prof_p, {"units": "Msun",
                                                         "long_name": "predicted mean mass per "
                                                                      "pixel"}),
            "luminosity": (("sample", "radius"), lum, {"units": "Lsun",
                                                       "long_name": "mean V luminosity per pixel"}),
            "ml_true": (("sample", "radius"), ml_t, {"units": "Msun/Lsun",
                                                     "long_name": "true M/L_V"}),
            "ml_pred": (("sample", "radius"), ml_p, {"units": "Msun/Lsun",
                                                     "long_name": "predicted M/L_V"}),
            "mass_ratio": (("sample", "radius"), prof_t / prof_p, {"units": "1",
                                                                   "long_name": "true / predicted"
                                                                                " mass"}),
            "ml_ratio": (("sample", "radius"), ml_t / ml_p, {"units": "1",
                                                             "long_name": "true / predicted M/L"}),
            "n_pixels": (("sample", "radius"), counts),
        }
    centres = 0.5 * (edges[:-1] + edges[1:])
    return xr.Dataset(data, coords={
        "radius": ("radius", centres, {"units": "arcsec", "long_name": "radius"}),
        "radius_lower": ("radius", edges[:-1], {"units": "arcsec"}),
        "radius_upper": ("radius", edges[1:], {"units": "arcsec"}),
    })


# ---------------------------------------------------------------------------------------------
# distance (Table 2, Fig. 9)
# ---------------------------------------------------------------------------------------------


def _groups(distance_true, distance_pred, decimals):
    t = np.asarray(_values(distance_true, "distance_true"), dtype=float).ravel()
    p = np.asarray(_values(distance_pred, "distance_pred"), dtype=float).ravel()
    if t.shape != p.shape:
        raise EvaluationError(f"distance_true and distance_pred differ in size: {t.size} vs "
                              f"{p.size}")
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = np.round(t[ok], decimals), p[ok]
    return t, p, np.unique(t)


def distance_table(distance_true, distance_pred, *, decimals: int = 6):
    """Table 2: predicted distances grouped by true distance.

    Parameters
    ----------
    distance_true, distance_pred : array_like
        True and predicted distance of each map, kpc. True values are grouped after rounding to
        ``decimals``.

    Returns
    -------
    xarray.Dataset
        Over ``true_distance`` (kpc): ``count``, ``mean`` and ``std`` (population, ddof=0) of the
        predictions, ``mae`` (eq. 4 form), ``bias`` (mean - true), ``relative_mae`` (mae / true),
        all kpc except ``count`` and ``relative_mae``. ``.to_dataframe()`` gives the table.

    Examples
    --------
    >>> tab = distance_table([15, 15, 30, 30], [14, 18, 30, 32])
    >>> tab["mean"].values.tolist(), tab["mae"].values.tolist()
    ([16.0, 31.0], [2.0, 1.0])
    """
    t, p, groups = _groups(distance_true, distance_pred, decimals)
    cols = {k: [] for k in ("count", "mean", "std", "mae", "bias", "relative_mae")}
    for g in groups:
        v = p[t == g]
        cols["count"].append(v.size)
        cols["mean"].append(v.mean())
        cols["std"].append(v.std())
        cols["mae"].append(np.abs(v - g).mean())
        cols["bias"].append(v.mean() - g)
        cols["relative_mae"].append(np.abs(v - g).mean() / g if g else np.nan)
    units = {"count": "1", "relative_mae": "1"}
    return xr.Dataset(
        {k: ("true_distance", np.asarray(v), {"units": units.get(k, "kpc")})
         for k, v in cols.items()},
        coords={"true_distance": ("true_distance", groups, {"units": "kpc"})},
    )


def distance_pdfs(distance_true, distance_pred, *, edges=None, width: float = 2.0,
                  decimals: int = 6):
    """Fig. 9: PDF of the predicted distance for each true distance (normalised histograms).

    Parameters
    ----------
    distance_true, distance_pred : array_like
        True and predicted distances, kpc.
    edges : array_like, optional
        Histogram edges, kpc; default ``width``-wide bins from 0 over the data.
    width : float
        Default bin width, kpc.

    Returns
    -------
    xarray.Dataset
        ``pdf`` over ``(true_distance, distance)`` in kpc^-1 (each row integrates to 1 over the
        edges), ``count`` per row; ``distance`` is the bin centre, with ``distance_lower`` and
        ``distance_upper``.
    """
    t, p, groups = _groups(distance_true, distance_pred, decimals)
    if edges is None:
        edges = bin_edges(p, t, width=width, lo=0.0)
    edges = np.asarray(edges, dtype=float)
    pdf = np.zeros((len(groups), len(edges) - 1))
    count = np.zeros(len(groups), np.int64)
    for k, g in enumerate(groups):
        v = p[t == g]
        h, _ = np.histogram(v, bins=edges)
        count[k] = v.size
        if h.sum():
            pdf[k] = h / (h.sum() * np.diff(edges))
    return xr.Dataset(
        {"pdf": (("true_distance", "distance"), pdf, {"units": "kpc-1",
                                                      "long_name": "PDF of predicted distance"}),
         "count": ("true_distance", count)},
        coords={"true_distance": ("true_distance", groups, {"units": "kpc"}),
                "distance": ("distance", 0.5 * (edges[:-1] + edges[1:]), {"units": "kpc"}),
                "distance_lower": ("distance", edges[:-1]),
                "distance_upper": ("distance", edges[1:])},
    )
