"""Statistics of the paper's Section 4 and simple baselines, on plain numpy/xarray arrays.

Everything here is a pure function of arrays (or a small estimator class); nothing plots. The
conventions are those of :mod:`pidoc_core.imager` and :meth:`pidoc_core.model.PiDOC.predict`:

- mass maps: log10 of the mass per pixel, Msun, dims ``(sample, y, x)``;
- flux maps: log10 of the per-pixel V-band flux F = L_V / (4 pi d^2), Lsun kpc^-2;
- 160 x 160 pixels of 0.25"; pixel centres in arcsec from the field centre; the cluster centre is
  at the field centre plus ``(shift_x, shift_y)`` arcsec;
- distances kpc, ages Gyr, radii arcsec.

What the paper computes (Chardin & Bianchini 2021, Sect. 4) and where it is here:

==========================================  ===============================================
paper                                        here
==========================================  ===============================================
eq. (1) R^2                                  :func:`r2_score`
Fig. 5 true-vs-predicted pixel histogram,    :func:`pixel_residual_statistics` (maps, chunked)
mu = P(r | predicted), xi = P(r | true)      :func:`residual_statistics` (1-D values)
eq. (2) mean percentage error per bin        ``mu_mpe`` / ``xi_mpe`` of those, summarised by
                                             :func:`bin_summary`
Fig. 6 total mass and total M/L              :func:`map_totals` + :func:`residual_statistics`
eq. (3) mass profile, Fig. 7 M/L profile     :func:`radial_profile`, :func:`radial_profiles`
eq. (4) age MAE per bin, Fig. 8              :func:`residual_statistics` (``kind="linear"``)
Fig. 9 distance PDFs, Table 2                :func:`distance_pdfs`, :func:`distance_table`
all headline numbers, with the paper's       :func:`summary`, :data:`PAPER_RESULTS`
==========================================  ===============================================

Baselines on the same maps: a constant mass-to-light ratio (:func:`training_mass_to_light`,
:func:`constant_ml_mass`) and gradient-boosted trees on photometric features for age and distance
(:func:`photometric_features`, :class:`GBTBaseline`); :func:`baseline_predictions` runs both.

Choices the paper does not state, made here and documented where they apply: bin widths (0.1 dex
for pixel masses, 0.05 dex for totals, 1 Gyr for ages), which side the per-bin errors are
conditioned on (the predicted value, as the paper's left-hand "recovery" histograms), and the
exclusion of empty (floored) true pixels from the pixel statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import xarray as xr

from .imager import MASS_FLOOR

__all__ = [
    "EvaluationError",
    "PAPER_RESULTS",
    "FEATURE_NAMES",
    "LOG_MASS_FLOOR",
    "bin_edges",
    "r2_score",
    "percentage_error",
    "residual_statistics",
    "pixel_residual_statistics",
    "bin_summary",
    "total_mass",
    "total_flux",
    "luminosity_from_flux",
    "map_totals",
    "radial_edges",
    "pixel_radii",
    "radial_profile",
    "radial_profiles",
    "distance_table",
    "distance_pdfs",
    "training_mass_to_light",
    "constant_ml_mass",
    "photometric_features",
    "GBTBaseline",
    "baseline_predictions",
    "summary",
]

#: log10 of the imager's mass floor (Msun): true pixels at or below it hold no mass.
LOG_MASS_FLOOR = math.log10(MASS_FLOOR)
#: Names (and units) of the columns of :func:`photometric_features`.
FEATURE_NAMES = (
    "log10_total_flux",  # log10(Lsun kpc^-2)
    "log10_r50",  # log10(arcsec), radius enclosing half the field's flux
    "concentration_r90_r50",  # dimensionless
    "log10_central_sb",  # log10(Lsun kpc^-2 arcsec^-2), mean within 1"
    "log10_r20",  # log10(arcsec)
)
_PIXEL_ARCSEC = 0.25
_N_PIXELS = 160
_CHUNK = 256  # maps per chunk in streamed statistics


class EvaluationError(ValueError):
    """Inputs the evaluation cannot use; the message names the argument and what is expected."""


def _src(section, where, quote):
    return {"section": section, "where": where, "quote": quote}


#: Numbers quoted in Chardin & Bianchini (2021, MNRAS 504, 5656), with where they are in the text.
#: Keys match the rows of :func:`summary`. Percentages in per cent, ages Gyr, distances kpc.
PAPER_RESULTS: dict[str, dict] = {
    # Sect. 4.1.2, paragraph after eq. (2): per-pixel mass, bins of predicted mass (Fig. 5).
    "pixel_mpe_mean": {"value": 27.4, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)",
        "We report an average percentage error of 27.4 per cent over all mass bins")},
    "pixel_mpe_min": {"value": 13.7, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "with a minimum value of 13.7 per cent")},
    "pixel_mpe_max": {"value": 95.0, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "and a maximum values of 95.0 per cent")},
    "pixel_mpe_mean_excl_low": {"value": 17.6, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)",
        "If we exclude these low mass bins [log10(M/Msun) < -1], we obtain a mean error of "
        "17.6 per cent")},
    "pixel_mpe_min_excl_low": {"value": 13.7, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "with a minimum and a maximum of 13.7 per cent")},
    "pixel_mpe_max_excl_low": {"value": 22.1, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "and 22.1 per cent, respectively")},
    # Sect. 4.1.3, last paragraph: totals per map (Fig. 6).
    "total_mass_mpe_mean": {"value": 15.6, "unit": "%", **_src(
        "4.1.3", "last paragraph",
        "an average percentage error for the total mass estimate of 15.6 per cent over all the "
        "bins")},
    "total_mass_mpe_min": {"value": 6.2, "unit": "%", **_src(
        "4.1.3", "last paragraph", "with a minimum value of 6.2 per cent")},
    "total_mass_mpe_max": {"value": 43.5, "unit": "%", **_src(
        "4.1.3", "last paragraph", "and a maximum value of 43.5 per cent")},
    "total_ml_mpe_mean": {"value": 11.8, "unit": "%", **_src(
        "4.1.3", "last paragraph", "For Mtot/Ltot, we obtain a mean error of 11.8 per cent")},
    "total_ml_mpe_min": {"value": 5.1, "unit": "%", **_src(
        "4.1.3", "last paragraph", "with a minimum of 5.1 per cent error")},
    "total_ml_mpe_max": {"value": 18.1, "unit": "%", **_src(
        "4.1.3", "last paragraph", "and a maximum of 18.1 per cent")},
    # Sect. 4.2.1, paragraph after eq. (4) (Fig. 8).
    "age_mae_mean": {"value": 1.26, "unit": "Gyr", **_src(
        "4.2.1", "paragraph after eq. (4)",
        "an average value of the mean absolute error of 1.26 Gyr over all age bins")},
    "age_mae_min": {"value": 0.33, "unit": "Gyr", **_src(
        "4.2.1", "paragraph after eq. (4)", "with a minimum value of 0.33 Gyr")},
    "age_mae_max": {"value": 1.64, "unit": "Gyr", **_src(
        "4.2.1", "paragraph after eq. (4)", "and a maximum value of 1.64 Gyr")},
    # Sect. 4.2.2, Table 2 (Fig. 9); test maps at 15, 30, 60, 80 kpc.
    **{f"distance_{stat}_{d}": {"value": v, "unit": "kpc", **_src(
        "4.2.2", "Table 2", f"Real distance {d} kpc: {label} {v} kpc")}
       for d, row in {15: (20.3, 5.0, 5.6), 30: (35.2, 8.3, 7.4), 60: (60.6, 8.8, 6.5),
                      80: (77.6, 7.9, 6.0)}.items()
       for stat, label, v in zip(("mean", "std", "mae"),
                                 ("mean predicted distance", "standard deviation",
                                  "mean absolute error"), row)},
    # Sect. 3.2, Fig. 3: R^2 of eq. (1) on the *validation* set (training curves), not the test.
    "mass_r2": {"value": 0.95, "unit": "", **_src(
        "3.2", "discussion of Fig. 3 (validation set)",
        "saturating values of ~0.95 and ~0.98 for the encoder-decoder and the CNN")},
    "age_distance_r2": {"value": 0.98, "unit": "", **_src(
        "3.2", "discussion of Fig. 3 (validation set)",
        "saturating values of ~0.95 and ~0.98 for the encoder-decoder and the CNN")},
    # Abstract (rounded, and the age differs from Sect. 4.2.1's 1.26 Gyr).
    "abstract_pixel_error": {"value": 27.0, "unit": "%", **_src(
        "Abstract", "", "predict the mass distribution with a mean error per pixel of 27 per "
        "cent")},
    "abstract_age_accuracy": {"value": 1.5, "unit": "Gyr", **_src(
        "Abstract", "", "and the age and distance with an accuracy of 1.5 Gyr and 6 kpc")},
    "abstract_distance_accuracy": {"value": 6.0, "unit": "kpc", **_src(
        "Abstract", "", "and the age and distance with an accuracy of 1.5 Gyr and 6 kpc")},
    "abstract_ml_error": {"value": 12.0, "unit": "%", **_src(
        "Abstract", "", "the mass-to-light profile and its global value with a mean error of "
        "12 per cent")},
    # Sect. 4.1: speed of the encoder-decoder.
    "mass_prediction_time": {"value": 0.070, "unit": "s per map", **_src(
        "4.1", "first paragraph",
        "The prediction of a single mass map takes about 70 ms on a single Intel Xeon CPU at "
        "2.70 GHz")},
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _values(a, name):
    """numpy float array of an array-like or DataArray (computing dask arrays)."""
    if isinstance(a, xr.Dataset):
        raise EvaluationError(f"{name}: pass a DataArray or an array, not a Dataset")
    arr = np.asarray(a.values if isinstance(a, xr.DataArray) else a)
    if arr.dtype.kind not in "fiu":
        raise EvaluationError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _maps(a, name):
    """A stack of maps (n, H, W) as an indexable (numpy or DataArray) without loading it all."""
    if isinstance(a, xr.Dataset):
        raise EvaluationError(f"{name}: pass a DataArray (e.g. ds['{name}']), not a Dataset")
    if not isinstance(a, xr.DataArray):
        a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise EvaluationError(f"{name} must be a map (y, x) or maps (sample, y, x); got shape "
                              f"{tuple(a.shape)}")
    return a


def _chunk(a, start, stop):
    return np.asarray(a[start:stop], dtype=np.float64)


def _per_sample(v, n, name):
    arr = np.asarray(v.values if isinstance(v, xr.DataArray) else v, dtype=np.float64)
    arr = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr.reshape(-1)
    if arr.shape != (n,):
        raise EvaluationError(f"{name} must have one value per map ({n}); got {arr.shape[0]}")
    return arr


def bin_edges(*arrays, width: float, lo: float | None = None, hi: float | None = None):
    """Bin edges aligned on multiples of ``width`` covering the finite values of ``arrays``.

    Parameters
    ----------
    *arrays : array_like
        Values to cover, in the units of ``width``.
    width : float
        Bin width (> 0).
    lo, hi : float, optional
        Fixed ends instead of the data's (rounded outwards to multiples of ``width``).

    Returns
    -------
    numpy.ndarray
        Increasing edges, at least two.

    Examples
    --------
    >>> bin_edges([0.12, 0.96], width=0.25)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    if not width > 0:
        raise EvaluationError(f"bin width must be > 0, got {width!r}")
    if lo is None or hi is None:
        finite = [np.asarray(a, dtype=float) for a in arrays]
        finite = [a[np.isfinite(a)] for a in finite]
        finite = [a for a in finite if a.size]
        if not finite:
            raise EvaluationError("no finite values to bin")
        lo = min(float(a.min()) for a in finite) if lo is None else lo
        hi = max(float(a.max()) for a in finite) if hi is None else hi
    i0 = math.floor(lo / width)
    while i0 * width > lo:
        i0 -= 1
    i1 = max(math.ceil(hi / width), i0 + 1)
    while i1 * width < hi:
        i1 += 1
    return np.arange(i0, i1 + 1) * width


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination, the paper's eq. (1): 1 - sum (y_p - y_t)^2 / sum (y_t - <y_t>)^2.

    Parameters
    ----------
    y_true, y_pred : array_like
        Same shape, any units (the same for both); flattened. Non-finite pairs are skipped.

    Returns
    -------
    float
        R^2 (1 for a perfect prediction; NaN when y_true is constant).

    Notes
    -----
    The paper writes eq. (1) as two expressions, sum (y_p - <y_t>)^2 / sum (y_t - <y_t>)^2 and
    1 - sum (y_p - y_t)^2 / sum (y_t - <y_t>)^2; they agree only for a least-squares fit. The second
    (the usual definition, and the Keras metric of Fig. 3) is used.

    Examples
    --------
    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    t = np.asarray(_values(y_true, "y_true"), dtype=np.float64).ravel()
    p = np.asarray(_values(y_pred, "y_pred"), dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise EvaluationError(f"y_true and y_pred differ in size: {t.size} vs {p.size}")
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    ss_tot = float(np.sum((t - t.mean()) ** 2)) if t.size else 0.0
    if ss_tot == 0:
        return float("nan")
    return 1.0 - float(np.sum((p - t) ** 2)) / ss_tot


def percentage_error(true, pred, *, kind: str = "log", denominator: str = "predicted"):
    """Per-value percentage error |M_p - M_t| / M_p x 100 of the paper's eq. (2).

    Parameters
    ----------
    true, pred : array_like
        True and predicted values; log10 of a positive quantity (e.g. log10 Msun) when
        ``kind="log"``, the quantity itself when ``kind="linear"``.
    kind : {"log", "linear"}
        Whether the values are log10 of the quantity.
    denominator : {"predicted", "true"}
        ``"predicted"`` is eq. (2) as printed (error relative to the prediction: what a user
        holding a prediction needs); ``"true"`` divides by the true value.

    Returns
    -------
    numpy.ndarray
        Percentage errors, per cent.

    Examples
    --------
    A prediction 0.1 dex high is 25.9 % above the truth but 20.6 % of the prediction:

    >>> float(percentage_error(0.0, 0.1, denominator="true").round(1))
    25.9
    >>> float(percentage_error(0.0, 0.1).round(1))
    20.6
    """
    t = np.asarray(true, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if kind == "log":
        r = p - t
        if denominator == "predicted":
            return 100.0 * np.abs(1.0 - 10.0 ** (-r))
        if denominator == "true":
            return 100.0 * np.abs(10.0**r - 1.0)
    elif kind == "linear":
        with np.errstate(divide="ignore", invalid="ignore"):
            if denominator == "predicted":
                return 100.0 * np.abs(p - t) / np.abs(p)
            if denominator == "true":
                return 100.0 * np.abs(p - t) / np.abs(t)
    else:
        raise EvaluationError(f"kind must be 'log' or 'linear', got {kind!r}")
    raise EvaluationError(f"denominator must be 'predicted' or 'true', got {denominator!r}")


# ---------------------------------------------------------------------------------------------
# residual statistics conditioned on either axis (Figs 5, 6, 8)
# ---------------------------------------------------------------------------------------------


class _Side:
    """Per-bin accumulators of residuals conditioned on one axis."""

    def __init__(self, edges, residual_edges):
        nb = len(edges) - 1
        self.edges = edges
        self.count = np.zeros(nb, np.int64)
        self.sum = np.zeros(nb)
        self.sumsq = np.zeros(nb)
        self.abs = np.zeros(nb)
        self.pct = np.zeros(nb)
        self.residual_edges = residual_edges
        self.rhist = None if residual_edges is None else np.zeros((nb, len(residual_edges) - 1),
                                                                  np.int64)
        self.kept = []  # (bin, residual) pairs for exact percentiles

    def add(self, idx, r, pct):
        """Add residuals ``r`` and percentage errors ``pct`` of values in bins ``idx`` (-1: none)."""
        nb = len(self.edges) - 1
        ok = idx >= 0
        idx, r, pct = idx[ok], r[ok], pct[ok]
        self.count += np.bincount(idx, minlength=nb)
        self.sum += np.bincount(idx, r, minlength=nb)
        self.sumsq += np.bincount(idx, r * r, minlength=nb)
        self.abs += np.bincount(idx, np.abs(r), minlength=nb)
        self.pct += np.bincount(idx, pct, minlength=nb)
        if self.rhist is None:
            self.kept.append((idx, r))
        else:
            re = self.residual_edges
            nr = len(re) - 1
            j = np.clip(((r - re[0]) * (nr / (re[-1] - re[0]))).astype(np.int64), 0, nr - 1)
            self.rhist += np.bincount(idx * nr + j, minlength=self.rhist.size).reshape(
                self.rhist.shape)

    def result(self, percentiles):
        with np.errstate(invalid="ignore", divide="ignore"):
            n = self.count.astype(float)
            mean = self.sum / n
            std = np.sqrt(np.maximum(self.sumsq / n - mean**2, 0.0))
            mae = self.abs / n
            mpe = self.pct / n
        q = np.full((len(n), len(percentiles)), np.nan)
        if self.rhist is None:
            if self.kept:
                idx = np.concatenate([k[0] for k in self.kept])
                r = np.concatenate([k[1] for k in self.kept])
                order = np.argsort(idx, kind="stable")
                idx, r = idx[order], r[order]
                bounds = np.searchsorted(idx, np.arange(len(n) + 1))
                for b in range(len(n)):
                    if bounds[b + 1] > bounds[b]:
                        q[b] = np.percentile(r[bounds[b]:bounds[b + 1]], percentiles)
        else:
            re = self.residual_edges
            cum = np.cumsum(self.rhist, axis=1)
            for b in np.flatnonzero(self.count):
                target = np.asarray(percentiles, dtype=float) / 100.0 * cum[b, -1]
                k = np.minimum(np.searchsorted(cum[b], target, side="left"), len(re) - 2)
                prev = np.where(k > 0, cum[b, k - 1], 0)
                frac = np.clip((target - prev) / np.maximum(self.rhist[b, k], 1), 0.0, 1.0)
                q[b] = re[k] + frac * (re[k + 1] - re[k])
        return dict(count=self.count, mean=mean, std=std, mae=mae, mpe=mpe, percentiles=q)


class _Accumulator:
    def __init__(self, edges, residual_edges, kind, denominator):
        self.edges = np.asarray(edges, dtype=float)
        if self.edges.ndim != 1 or len(self.edges) < 2 or np.any(np.diff(self.edges) <= 0):
            raise EvaluationError(f"edges must be at least two increasing values, got {edges!r}")
        self.mu = _Side(self.edges, residual_edges)  # conditioned on the predicted value
        self.xi = _Side(self.edges, residual_edges)  # conditioned on the true value
        nb = len(self.edges) - 1
        self.hist = np.zeros((nb, nb), np.int64)  # (pred_bin, true_bin)
        self.kind, self.denominator = kind, denominator
        self.n = 0
        self.n_outside = 0
        self.st = self.st2 = self.sr2 = 0.0

    def _bin(self, x):
        """Bin index of each value, -1 outside the edges (the last bin is closed)."""
        nb = len(self.edges) - 1
        idx = np.searchsorted(self.edges, x, side="right") - 1
        idx[x == self.edges[-1]] = nb - 1
        idx[(idx < 0) | (idx >= nb)] = -1
        return idx

    def add(self, t, p):
        ok = np.isfinite(t) & np.isfinite(p)
        t, p = t[ok], p[ok]
        r = p - t
        pct = percentage_error(t, p, kind=self.kind, denominator=self.denominator)
        ip, it = self._bin(p), self._bin(t)
        self.mu.add(ip, r, pct)
        self.xi.add(it, r, pct)
        both = (ip >= 0) & (it >= 0)
        nb = len(self.edges) - 1
        self.hist += np.bincount(ip[both] * nb + it[both], minlength=nb * nb).reshape(nb, nb)
        self.n += t.size
        self.n_outside += int(t.size - both.sum())
        self.st += float(t.sum())
        self.st2 += float((t * t).sum())
        self.sr2 += float((r * r).sum())

    def dataset(self, percentiles, attrs):
        centres = 0.5 * (self.edges[:-1] + self.edges[1:])
        mu, xi = self.mu.result(percentiles), self.xi.result(percentiles)
        ss_tot = self.st2 - self.st**2 / self.n if self.n else 0.0
        r2 = 1.0 - self.sr2 / ss_tot if ss_tot > 0 else float("nan")
        data = {"histogram": (("pred_bin", "true_bin"), self.hist)}
        for side, res, dim in (("mu", mu, "pred_bin"), ("xi", xi, "true_bin")):
            for key in ("count", "mean", "std", "mae", "mpe"):
                data[f"{side}_{key}"] = ((dim,), res[key])
            data[f"{side}_percentiles"] = ((dim, "percentile"), res["percentiles"])
        ds = xr.Dataset(
            data,
            coords={
                "pred_bin": ("pred_bin", centres), "true_bin": ("true_bin", centres),
                "pred_lower": ("pred_bin", self.edges[:-1]),
                "pred_upper": ("pred_bin", self.edges[1:]),
                "true_lower": ("true_bin", self.edges[:-1]),
                "true_upper": ("true_bin", self.edges[1:]),
                "percentile": ("percentile", np.asarray(percentiles, dtype=float)),
            },
            attrs={**attrs, "kind": self.kind, "denominator": self.denominator,
                   "n_values": self.n, "n_outside_edges": self.n_outside, "r2": r2,
                   "residual": "predicted - true"},
        )
        units = attrs.get("units", "")
        runits = "dex" if self.kind == "log" else units
        for v in ("mu_mean", "mu_std", "mu_mae", "mu_percentiles", "xi_mean", "xi_std",
                  "xi_mae", "xi_percentiles"):
            ds[v].attrs["units"] = runits
        for v in ("mu_mpe", "xi_mpe"):
            ds[v].attrs.update(units="%", long_name="mean percentage error, eq. (2)")
        ds["mu_mean"].attrs["long_name"] = "mean residual given the prediction (mu)"
        ds["xi_mean"].attrs["long_name"] = "mean residual given the truth (xi)"
        ds["histogram"].attrs["long_name"] = "number of values per (predicted, true) cell"
        return ds


def residual_statistics(true, pred, *, edges=None, width: float | None = None,
                        kind: str = "log", denominator: str = "predicted",
                        percentiles=(16, 50, 84), quantity: str = "", units: str = ""):
    """True-vs-predicted histogram and residual statistics conditioned on either axis.

    The statistics of Figs 5, 6 and 8: for residuals r = predicted - true, per bin of the
    predicted value (mu = P(r | predicted), the paper's "recovery uncertainty", left histograms)
    and per bin of the true value (xi = P(r | true), the "learning error", bottom histograms):
    count, mean, standard deviation, percentiles, mean absolute error (eq. 4) and mean percentage
    error (eq. 2). Percentiles are exact here (the values are held in memory); for stacks of maps
    use :func:`pixel_residual_statistics`.

    Parameters
    ----------
    true, pred : array_like
        True and predicted values of the same shape (flattened), e.g. log10 total mass per map
        (log10 Msun) or age per map (Gyr). Pairs with a non-finite value are skipped.
    edges : array_like, optional
        Bin edges on both axes, in the units of the values. Default: ``width``-wide bins.
    width : float, optional
        Bin width for the default edges (0.05 for ``kind="log"``, else 1.0 -- e.g. 1 Gyr).
    kind : {"log", "linear"}
        ``"log"``: values are log10 of a positive quantity (residuals in dex); ``"linear"``.
    denominator : {"predicted", "true"}
        Of the percentage error; see :func:`percentage_error`.
    percentiles : sequence of float
        Percentiles of the residual per bin, in per cent.
    quantity, units : str
        Stored in the attributes (for plot labels).

    Returns
    -------
    xarray.Dataset
        ``histogram`` (pred_bin, true_bin): counts; ``mu_count, mu_mean, mu_std, mu_mae, mu_mpe``
        (pred_bin) and ``mu_percentiles`` (pred_bin, percentile); the same ``xi_*`` over true_bin.
        Residual statistics in dex (log) or the value's units; ``*_mpe`` in per cent; empty bins
        NaN. Coordinates: bin centres and ``*_lower``/``*_upper`` edges. Attributes: ``r2``
        (eq. 1 over all pairs), ``n_values``, ``n_outside_edges``, ``quantity``, ``units``,
        ``kind``, ``denominator``.

    Examples
    --------
    >>> st = residual_statistics([1.0, 2.0, 3.0], [1.1, 2.1, 3.1], edges=[0.5, 1.5, 2.5, 3.5])
    >>> st.mu_mean.values.round(3).tolist(), round(st.attrs["r2"], 2)
    ([0.1, 0.1, 0.1], 0.98)
    """
    t = np.asarray(_values(true, "true"), dtype=np.float64).ravel()
    p = np.asarray(_values(pred, "pred"), dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise EvaluationError(f"true and pred differ in size: {t.size} vs {p.size}")
    if edges is None:
        edges = bin_edges(t, p, width=width or (0.05 if kind == "log" else 1.0))
    acc = _Accumulator(edges, None, kind, denominator)
    acc.add(t, p)
    return acc.dataset(percentiles, {"quantity": quantity, "units": units})


def pixel_residual_statistics(mass_true, mass_pred, *, edges=None, width: float = 0.1,
                              true_floor: float | None = LOG_MASS_FLOOR,
                              denominator: str = "predicted", percentiles=(16, 50, 84),
                              residual_resolution: float = 0.005,
                              residual_range=(-5.0, 5.0), chunk_size: int = _CHUNK):
    """Pixel-by-pixel statistics of Fig. 5 over stacks of mass maps, streamed in chunks.

    Parameters
    ----------
    mass_true, mass_pred : array_like or xarray.DataArray
        log10 of the mass per pixel, Msun, dims ``(sample, y, x)`` (or one map ``(y, x)``);
        DataArrays (also dask-backed) are read ``chunk_size`` maps at a time.
    edges : array_like, optional
        Bin edges in log10 Msun; default ``width``-wide bins over the data.
    width : float
        Default bin width, dex (the paper does not give its binning).
    true_floor : float or None
        Pixels whose true value is at or below this (log10 Msun) are left out: the imager
        floors empty pixels at log10(1e-8 Msun), which are no measurement. None keeps all.
    denominator : {"predicted", "true"}
        Of eq. (2); see :func:`percentage_error`.
    percentiles : sequence of float
        Residual percentiles per bin, per cent. Computed from a histogram of residuals of
        ``residual_resolution`` dex over ``residual_range`` (residuals beyond it count in its
        end bins), so they are exact to ``residual_resolution``.
    chunk_size : int
        Maps per chunk.

    Returns
    -------
    xarray.Dataset
        As :func:`residual_statistics`; residuals in dex, ``*_mpe`` in per cent.
    """
    mt, mp = _maps(mass_true, "mass_true"), _maps(mass_pred, "mass_pred")
    if tuple(mt.shape) != tuple(mp.shape):
        raise EvaluationError(f"mass_true {tuple(mt.shape)} and mass_pred {tuple(mp.shape)} "
                              "differ in shape")
    n = mt.shape[0]
    step = max(1, int(chunk_size))

    def chunks():
        for s in range(0, n, step):
            t, p = _chunk(mt, s, s + step).ravel(), _chunk(mp, s, s + step).ravel()
            if true_floor is not None:
                keep = t > true_floor + 1e-6
                t, p = t[keep], p[keep]
            yield t, p

    if edges is None:
        lo, hi = np.inf, -np.inf
        for t, p in chunks():
            v = np.concatenate([t, p])
            v = v[np.isfinite(v)]
            if v.size:
                lo, hi = min(lo, v.min()), max(hi, v.max())
        if not np.isfinite(lo):
            raise EvaluationError("mass maps hold no finite pixel above the floor")
        edges = bin_edges(width=width, lo=lo, hi=hi)
    r_lo, r_hi = residual_range
    res_edges = np.linspace(r_lo, r_hi, int(round((r_hi - r_lo) / residual_resolution)) + 1)
    acc = _Accumulator(edges, res_edges, "log", denominator)
    for t, p in chunks():
        acc.add(t, p)
    return acc.dataset(percentiles, {"quantity": "log10 mass per pixel", "units": "log10(Msun)",
                                     "true_floor": "none" if true_floor is None else true_floor})


def bin_summary(stats: xr.Dataset, *, statistic: str = "mpe", side: str = "mu",
                min_count: int = 1, lower: float | None = None, upper: float | None = None):
    """Mean, minimum and maximum of a per-bin statistic over bins: the paper's headline numbers.

    Parameters
    ----------
    stats : xarray.Dataset
        From :func:`residual_statistics` or :func:`pixel_residual_statistics`.
    statistic : {"mpe", "mae", "mean", "std"}
        Per-bin statistic (eq. 2 mean percentage error, eq. 4 mean absolute error, ...).
    side : {"mu", "xi"}
        Bins of the predicted value (``"mu"``, the paper's choice) or of the true value.
    min_count : int
        Bins with fewer values are left out.
    lower, upper : float, optional
        Keep only bins whose lower edge is >= ``lower`` / upper edge <= ``upper`` (units of the
        binned value); e.g. ``lower=-1`` excludes the paper's "low mass bins" log10 M < -1.

    Returns
    -------
    dict
        ``mean``, ``min``, ``max`` (the statistic's units; unweighted over bins, as "over all
        mass bins") and ``n_bins``; NaN when no bin qualifies.
    """
    if side not in ("mu", "xi"):
        raise EvaluationError(f"side must be 'mu' or 'xi', got {side!r}")
    dim = "pred" if side == "mu" else "true"
    values = np.asarray(stats[f"{side}_{statistic}"].values, dtype=float)
    keep = np.asarray(stats[f"{side}_count"].values) >= max(1, min_count)
    if lower is not None:
        keep &= stats[f"{dim}_lower"].values >= lower - 1e-9
    if upper is not None:
        keep &= stats[f"{dim}_upper"].values <= upper + 1e-9
    v = values[keep & np.isfinite(values)]
    if not v.size:
        return {"mean": float("nan"), "min": float("nan"), "max": float("nan"), "n_bins": 0}
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
            "n_bins": int(v.size)}


# ---------------------------------------------------------------------------------------------
# totals (Fig. 6)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# baseline (a): constant M/L
# ---------------------------------------------------------------------------------------------


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
            raise EvaluationError(f"training dataset lacks {missing}: need linear field totals "
                                  "field_mass (Msun) and field_luminosity_v (Lsun)")
        field_mass, field_luminosity_v = ds["field_mass"].values, ds["field_luminosity_v"].values
    if field_luminosity_v is None:
        raise EvaluationError("field_luminosity_v is needed with array field masses")
    m = np.asarray(field_mass, dtype=float).ravel()
    lum = np.asarray(field_luminosity_v, dtype=float).ravel()
    if m.shape != lum.shape or not m.size:
        raise EvaluationError(f"field_mass ({m.size}) and field_luminosity_v ({lum.size}) must "
                              "have one value per map")
    ok = np.isfinite(m) & np.isfinite(lum) & (lum > 0)
    if not ok.any():
        raise EvaluationError("no map with a finite mass and a positive luminosity")
    if how == "mean":
        return float(np.mean(m[ok] / lum[ok]))
    if how == "ratio":
        return float(m[ok].sum() / lum[ok].sum())
    raise EvaluationError(f"how must be 'mean' or 'ratio', got {how!r}")


def constant_ml_mass(flux_log10, distance_kpc, upsilon: float, *,
                     floor: float | None = LOG_MASS_FLOOR):
    """Baseline mass maps with a constant M/L: M_pixel = Upsilon F_pixel 4 pi d^2.

    Parameters
    ----------
    flux_log10 : array_like or DataArray
        log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)`` or ``(y, x)``.
    distance_kpc : float or array_like
        Distance of each map, kpc.
    upsilon : float
        Mass-to-light ratio, Msun/Lsun (e.g. :func:`training_mass_to_light`).
    floor : float or None
        Lower bound of the output, log10 Msun (the imager's mass floor by default).

    Returns
    -------
    numpy.ndarray
        log10 mass per pixel, Msun, ``(sample, y, x)``, float32 like the datasets.

    Examples
    --------
    >>> m = constant_ml_mass(np.full((1, 2, 2), -3.0), 1 / np.sqrt(4 * np.pi), 2.0)
    >>> round(float(m[0, 0, 0]), 4)  # log10(2 Msun/Lsun x 1e-3 Lsun)
    -2.699
    """
    if not upsilon > 0:
        raise EvaluationError(f"upsilon must be > 0 Msun/Lsun, got {upsilon!r}")
    f = _maps(flux_log10, "flux")
    n = f.shape[0]
    offset = np.log10(upsilon * 4.0 * np.pi * _per_sample(distance_kpc, n, "distance_kpc") ** 2)
    out = np.empty(tuple(f.shape), np.float32)
    for s in range(0, n, _CHUNK):
        m = _chunk(f, s, s + _CHUNK) + offset[s:s + _CHUNK, None, None]
        out[s:s + _CHUNK] = m if floor is None else np.maximum(m, floor)
    return out


# ---------------------------------------------------------------------------------------------
# baseline (b): gradient-boosted trees on photometric features
# ---------------------------------------------------------------------------------------------


def _estimate_centre(f_lin, pixel_arcsec):
    """Flux-weighted centroid of the brightest 1 % of pixels, arcsec from the field centre."""
    n, h, w = f_lin.shape
    c = (np.arange(w) + 0.5) * pixel_arcsec - w * pixel_arcsec / 2.0
    out = np.empty((n, 2))
    for k in range(n):
        img = f_lin[k]
        cut = np.percentile(img, 99.0)
        wgt = np.where(img >= cut, img, 0.0)
        tot = wgt.sum()
        if tot <= 0:
            out[k] = 0.0
            continue
        out[k, 0] = (wgt.sum(axis=0) * c).sum() / tot
        out[k, 1] = (wgt.sum(axis=1) * c).sum() / tot
    return out


def photometric_features(flux_maps, shifts=None, *, pixel_arcsec: float = _PIXEL_ARCSEC,
                         central_radius: float = 1.0, chunk_size: int = _CHUNK):
    """Simple photometric features of flux maps, for the tree baseline.

    Parameters
    ----------
    flux_maps : array_like or DataArray
        log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)`` or ``(y, x)``.
    shifts : array_like, optional
        ``(sample, 2)`` cluster centre offsets ``(shift_x, shift_y)`` from the field centre,
        arcsec (or one pair for all maps). None: the flux-weighted centroid of the brightest 1 %
        of pixels of each map.
    pixel_arcsec : float
        Pixel side, arcsec.
    central_radius : float
        Radius of the central aperture for the surface brightness, arcsec.

    Returns
    -------
    numpy.ndarray
        ``(sample, 5)`` columns :data:`FEATURE_NAMES`: log10 total flux in the field
        (Lsun kpc^-2), log10 half-light radius r50 (arcsec), concentration r90/r50, log10 mean
        surface brightness within ``central_radius`` (Lsun kpc^-2 arcsec^-2), log10 r20 (arcsec).
        Radii enclose that fraction of the field's flux about the centre (interpolated).
    """
    fm = _maps(flux_maps, "flux_maps")
    n, h, w = fm.shape
    if shifts is not None:
        sh = np.asarray(shifts, dtype=float)
        sh = np.broadcast_to(sh, (n, 2)) if sh.shape == (2,) else sh
        if sh.shape != (n, 2):
            raise EvaluationError(f"shifts must be (sample, 2) = ({n}, 2) arcsec; got "
                                  f"{sh.shape}")
    out = np.empty((n, len(FEATURE_NAMES)))
    for s in range(0, n, chunk_size):
        e = min(n, s + chunk_size)
        f = 10.0 ** _chunk(fm, s, e)
        centre = _estimate_centre(f, pixel_arcsec) if shifts is None else sh[s:e]
        radii = pixel_radii(centre[:, 0], centre[:, 1], n_pixels=h, pixel_arcsec=pixel_arcsec)
        for k in range(e - s):
            r = radii[k].ravel()
            v = f[k].ravel()
            order = np.argsort(r)
            r, v = r[order], v[order]
            cum = np.cumsum(v)
            tot = cum[-1]
            frac = cum / tot
            r20, r50, r90 = np.interp([0.2, 0.5, 0.9], frac, r)
            inner = r <= central_radius
            sb = v[inner].sum() / (inner.sum() * pixel_arcsec**2)
            out[s + k] = [np.log10(tot), np.log10(r50), r90 / r50, np.log10(max(sb, 1e-300)),
                          np.log10(r20)]
    return out


class GBTBaseline:
    """Gradient-boosted trees (scikit-learn) for age and distance from photometric features.

    One regressor per target, on :func:`photometric_features` of the flux maps.

    Parameters
    ----------
    seed : int
        ``random_state`` of every regressor.
    algorithm : {"exact", "hist"}
        :class:`sklearn.ensemble.GradientBoostingRegressor` (defaults here ``n_estimators=300,
        learning_rate=0.05, max_depth=3``; fast on the few features used) or
        :class:`sklearn.ensemble.HistGradientBoostingRegressor` (``max_iter=300,
        learning_rate=0.05, max_leaf_nodes=15``; for very large training sets).
    **params
        Passed to the regressor, overriding those defaults.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(200, 2))
    >>> gbt = GBTBaseline(seed=0).fit_features(X, {"age": 10 * X[:, 0]})
    >>> float(np.abs(gbt.predict_features(X)["age"] - 10 * X[:, 0]).mean()) < 0.5
    True
    """

    _DEFAULTS = {
        "exact": {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3},
        "hist": {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15},
    }

    def __init__(self, *, seed: int = 0, algorithm: str = "exact", **params):
        if algorithm not in self._DEFAULTS:
            raise EvaluationError(f"algorithm must be 'exact' or 'hist', got {algorithm!r}")
        self.seed = int(seed)
        self.algorithm = algorithm
        self.params = {**self._DEFAULTS[algorithm], **params}
        self.models_: dict = {}

    def _regressor(self):
        from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

        cls = GradientBoostingRegressor if self.algorithm == "exact" else \
            HistGradientBoostingRegressor
        return cls(random_state=self.seed, **self.params)

    def fit_features(self, features, targets: Mapping[str, np.ndarray]):
        """Fit one regressor per target on precomputed features ``(sample, n_features)``."""
        X = np.asarray(features, dtype=float)
        if X.ndim != 2:
            raise EvaluationError(f"features must be (sample, n_features), got {X.shape}")
        if not targets:
            raise EvaluationError("targets must name at least one quantity, e.g. {'age': ...}")
        self.models_ = {}
        for name, y in targets.items():
            y = np.asarray(y.values if isinstance(y, xr.DataArray) else y, dtype=float).ravel()
            if y.shape != (X.shape[0],):
                raise EvaluationError(f"target {name!r} has {y.size} values for {X.shape[0]} "
                                      "maps")
            ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
            self.models_[name] = self._regressor().fit(X[ok], y[ok])
        return self

    def predict_features(self, features) -> dict[str, np.ndarray]:
        """Predictions per target from precomputed features."""
        if not self.models_:
            raise EvaluationError("GBTBaseline is not fitted; call fit() first")
        X = np.asarray(features, dtype=float)
        return {name: m.predict(X) for name, m in self.models_.items()}

    def fit(self, flux_maps, targets: Mapping[str, np.ndarray], *, shifts=None):
        """Fit on flux maps (log10 Lsun kpc^-2, ``(sample, y, x)``); ``targets`` maps a name
        (``"age"`` in Gyr, ``"distance"`` in kpc) to one value per map; ``shifts`` as in
        :func:`photometric_features`. Returns self."""
        return self.fit_features(photometric_features(flux_maps, shifts), targets)

    def predict(self, flux_maps, *, shifts=None) -> xr.Dataset:
        """Predictions from flux maps as a Dataset over ``sample`` (like ``PiDOC.predict``):
        one variable per target (``age`` Gyr, ``distance`` kpc)."""
        pred = self.predict_features(photometric_features(flux_maps, shifts))
        units = {"age": "Gyr", "distance": "kpc"}
        return xr.Dataset({k: ("sample", v, {"units": units.get(k, ""),
                                             "long_name": f"GBT baseline {k}"})
                           for k, v in pred.items()}, attrs={"model": "GBT baseline"})


def _shifts(ds):
    if "shift_x" in ds.variables and "shift_y" in ds.variables:
        return np.stack([ds["shift_x"].values, ds["shift_y"].values], axis=1).astype(float)
    return None


def baseline_predictions(train: xr.Dataset, test: xr.Dataset, *, seed: int = 0,
                         ml_how: str = "mean", **gbt_params) -> dict[str, xr.Dataset]:
    """Both baselines fitted on ``train`` and applied to ``test``.

    Parameters
    ----------
    train, test : xarray.Dataset
        Datasets with ``flux`` (sample, y, x), coordinates ``distance`` (kpc), ``time`` (Gyr),
        ``shift_x``/``shift_y`` (arcsec); ``train`` also ``field_mass`` and
        ``field_luminosity_v``.
    seed : int
        Seed of the trees.
    ml_how : {"mean", "ratio"}
        See :func:`training_mass_to_light`.

    Returns
    -------
    dict
        ``{"constant M/L": Dataset(mass), "GBT": Dataset(age, distance)}``, in the layout of
        ``PiDOC.predict``; the constant-M/L one uses the test maps' true distances and carries
        ``upsilon`` (Msun/Lsun) in its attributes.
    """
    upsilon = training_mass_to_light(train, how=ml_how)
    mass = constant_ml_mass(test["flux"], test["distance"].values, upsilon)
    const = xr.Dataset({"mass": (("sample", "y", "x"), mass, {"units": "log10(Msun)"})},
                       attrs={"model": "constant M/L", "upsilon": upsilon})
    gbt = GBTBaseline(seed=seed, **gbt_params).fit(
        train["flux"], {"age": train["time"].values, "distance": train["distance"].values},
        shifts=_shifts(train))
    return {"constant M/L": const, "GBT": gbt.predict(test["flux"], shifts=_shifts(test))}


# ---------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------


def summary(test: xr.Dataset, predictions: Mapping[str, xr.Dataset], *,
            pixel_width: float = 0.1, total_width: float = 0.05, age_width: float = 1.0,
            low_mass_limit: float = -1.0, min_count: int = 1, paper: bool = True):
    """Headline numbers of Sect. 4 for several models side by side, with the paper's.

    Parameters
    ----------
    test : xarray.Dataset
        Ground truth: ``flux`` and ``mass`` (sample, y, x; log10 Lsun kpc^-2, log10 Msun) and
        per-sample ``distance`` (kpc), ``time`` (Gyr), ``shift_x``/``shift_y`` (arcsec).
    predictions : mapping of str to xarray.Dataset
        Model name -> predictions over the same samples, with any of ``mass`` (sample, y, x),
        ``age`` (Gyr), ``distance`` (kpc): e.g. ``PiDOC.predict`` output and
        :func:`baseline_predictions`. Missing quantities give NaN rows.
    pixel_width, total_width : float
        Bin widths, dex, for pixel masses and for total masses / M/L (log10).
    age_width : float
        Age bin width, Gyr.
    low_mass_limit : float
        log10 Msun; the "excluding low mass bins" rows keep bins with lower edge >= this.
    min_count : int
        Bins with fewer values are left out of the mean/min/max.
    paper : bool
        Add the columns ``paper`` and ``paper_source`` from :data:`PAPER_RESULTS`.

    Returns
    -------
    pandas.DataFrame
        Rows: metrics (index ``metric``, with a ``unit`` column); one column per model.
        Per-bin summaries are means / minima / maxima over bins of the predicted value (eq. 2
        percentage errors, per cent; eq. 4 MAE, Gyr); ``*_r2`` are eq. (1);
        ``profile_mpe`` is eq. (2) over all radial bins (r < 20") of all maps' mass profiles
        (the paper gives no number); ``distance_*_<d>`` is Table 2 for each true distance d.
    """
    import pandas as pd

    for k in ("flux", "mass", "distance", "time"):
        if k not in test.variables:
            raise EvaluationError(f"test dataset lacks {k!r}")
    d_true = test["distance"].values.astype(float)
    age_true = test["time"].values.astype(float)
    sx = test["shift_x"].values if "shift_x" in test.variables else 0.0
    sy = test["shift_y"].values if "shift_y" in test.variables else 0.0
    units: dict[str, str] = {}
    columns: dict[str, dict[str, float]] = {}
    groups = np.unique(np.round(d_true, 6))

    def put(col, key, value, unit):
        col[key] = float(value)
        units.setdefault(key, unit)

    for name, pred in predictions.items():
        col: dict[str, float] = {}
        if "mass" in pred.variables:
            st = pixel_residual_statistics(test["mass"], pred["mass"], width=pixel_width)
            for tag, lower in (("", None), ("_excl_low", low_mass_limit)):
                s = bin_summary(st, min_count=min_count, lower=lower)
                for stat in ("mean", "min", "max"):
                    put(col, f"pixel_mpe_{stat}{tag}", s[stat], "%")
            put(col, "mass_r2", st.attrs["r2"], "")
            tot = map_totals(test["mass"], pred["mass"], test["flux"], d_true)
            for key, t, p in (("total_mass", tot.mass_true, tot.mass_pred),
                              ("total_ml", tot.ml_true, tot.ml_pred)):
                s = bin_summary(residual_statistics(np.log10(t.values), np.log10(p.values),
                                                    width=total_width), min_count=min_count)
                for stat in ("mean", "min", "max"):
                    put(col, f"{key}_mpe_{stat}", s[stat], "%")
            prof = radial_profiles(test["mass"], pred["mass"], test["flux"], d_true, sx, sy)
            inner = prof.radius_upper <= 20.0 + 1e-9
            mp, mt = prof.mass_pred.where(inner).values, prof.mass_true.where(inner).values
            ok = np.isfinite(mp) & np.isfinite(mt) & (mp > 0)
            put(col, "profile_mpe", 100 * np.mean(np.abs(mp[ok] - mt[ok]) / mp[ok]), "%")
        else:
            for key, unit in (("pixel_mpe", "%"), ("total_mass_mpe", "%"), ("total_ml_mpe", "%")):
                for stat in ("mean", "min", "max"):
                    put(col, f"{key}_{stat}", np.nan, unit)
                    if key == "pixel_mpe":
                        put(col, f"{key}_{stat}_excl_low", np.nan, unit)
            put(col, "mass_r2", np.nan, "")
            put(col, "profile_mpe", np.nan, "%")
        if "age" in pred.variables:
            st = residual_statistics(age_true, pred["age"].values, width=age_width,
                                     kind="linear", units="Gyr")
            s = bin_summary(st, statistic="mae", min_count=min_count)
            for stat in ("mean", "min", "max"):
                put(col, f"age_mae_{stat}", s[stat], "Gyr")
            put(col, "age_mae_overall", np.mean(np.abs(pred["age"].values - age_true)), "Gyr")
            put(col, "age_r2", r2_score(age_true, pred["age"].values), "")
        else:
            for stat in ("mean", "min", "max", "overall"):
                put(col, f"age_mae_{stat}", np.nan, "Gyr")
            put(col, "age_r2", np.nan, "")
        if "distance" in pred.variables:
            dp = pred["distance"].values.astype(float)
            tab = distance_table(d_true, dp)
            for g in tab.true_distance.values:
                tag = f"{g:g}"
                for stat in ("mean", "std", "mae"):
                    put(col, f"distance_{stat}_{tag}", tab[stat].sel(true_distance=g), "kpc")
            put(col, "distance_mae_overall", np.mean(np.abs(dp - d_true)), "kpc")
            put(col, "distance_r2", r2_score(d_true, dp), "")
        else:
            for g in groups:
                for stat in ("mean", "std", "mae"):
                    put(col, f"distance_{stat}_{g:g}", np.nan, "kpc")
            put(col, "distance_mae_overall", np.nan, "kpc")
            put(col, "distance_r2", np.nan, "")
        if "age" in pred.variables and "distance" in pred.variables:
            put(col, "age_distance_r2",
                r2_score(np.concatenate([d_true, age_true]),
                         np.concatenate([pred["distance"].values, pred["age"].values])), "")
        else:
            put(col, "age_distance_r2", np.nan, "")
        columns[name] = col
    index = list(units)
    df = pd.DataFrame({name: [col.get(k, np.nan) for k in index]
                       for name, col in columns.items()}, index=pd.Index(index, name="metric"))
    df.insert(0, "unit", [units[k] for k in index])
    if paper:
        df["paper"] = [PAPER_RESULTS[k]["value"] if k in PAPER_RESULTS else np.nan for k in index]
        df["paper_source"] = [
            f"Sect. {PAPER_RESULTS[k]['section']}, {PAPER_RESULTS[k]['where']}"
            if k in PAPER_RESULTS else "" for k in index]
    return df
