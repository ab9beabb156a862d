"""Residual statistics conditioned on either axis: the histograms of Figs 5, 6 and 8.

:func:`residual_statistics` for values held in memory (totals, ages), exact percentiles;
:func:`pixel_residual_statistics` for stacks of mass maps, streamed in chunks.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import _CHUNK, LOG_MASS_FLOOR, EvaluationError, _chunk, _maps, _values
from .metrics import bin_edges, percentage_error

__all__ = ["residual_statistics", "pixel_residual_statistics"]


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
                q = _group_percentiles(np.concatenate([k[0] for k in self.kept]),
                                       np.concatenate([k[1] for k in self.kept]), len(n),
                                       percentiles)
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


def _group_percentiles(idx, r, n_groups: int, percentiles) -> np.ndarray:
    """Percentiles of ``r`` within each group ``idx`` (0 .. n_groups-1), as ``np.percentile``
    computes them (linear interpolation), for all groups at once; NaN rows for empty groups."""
    order = np.argsort(r)  # by value, then (stable) by group: a radix sort on small integers
    key = idx[order].astype(np.int16 if n_groups < 2**15 else np.int64)
    order = order[np.argsort(key, kind="stable")]
    idx, r = idx[order], r[order]
    start = np.searchsorted(idx, np.arange(n_groups + 1))
    size = np.diff(start)
    q = np.full((n_groups, len(percentiles)), np.nan)
    full = np.flatnonzero(size)
    if full.size:
        pos = (size[full, None] - 1) * (np.asarray(percentiles, dtype=float) / 100.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, size[full, None] - 1)
        base = start[full, None]
        frac = pos - lo
        q[full] = r[base + lo] + frac * (r[base + hi] - r[base + lo])
    return q


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
        units = attrs.get("units", "")
        runits = {"units": "dex" if self.kind == "log" else units}
        mpe = {"units": "%", "long_name": "mean percentage error, eq. (2)"}
        data = {"histogram": (("pred_bin", "true_bin"), self.hist, {
            "long_name": "number of values per (predicted, true) cell"})}
        for side, res, dim, given in (("mu", mu, "pred_bin", "the prediction (mu)"),
                                      ("xi", xi, "true_bin", "the truth (xi)")):
            data[f"{side}_count"] = ((dim,), res["count"])
            data[f"{side}_mean"] = ((dim,), res["mean"], {
                **runits, "long_name": f"mean residual given {given}"})
            data[f"{side}_std"] = ((dim,), res["std"], runits)
            data[f"{side}_mae"] = ((dim,), res["mae"], runits)
            data[f"{side}_mpe"] = ((dim,), res["mpe"], mpe)
            data[f"{side}_percentiles"] = ((dim, "percentile"), res["percentiles"], runits)
        return xr.Dataset(
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
