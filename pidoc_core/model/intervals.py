"""68 % intervals of π-DOC's predictions, calibrated on a validation split (split conformal).

For each predicted quantity the residuals ``r = predicted - true`` of the validation maps (which
share no snapshot with the training maps) are binned by a quantity known at prediction time,
and the 16th and 84th percentiles of ``r`` in each bin are stored in the model's manifest. A new
prediction ``p`` in that bin gets the interval ``[p - q84, p - q16]``: by construction it holds
the truth for 68 % of validation maps in every bin, and for 68 % of new maps drawn like them.

Quantities (residuals in the units named):

- ``log_field_mass`` (dex): log10 of the mass in the field, ``sum(10**mass)`` over the map, per
  mass network and distance source (``distance-aware/given``, ``distance-aware/predicted``,
  ``flux-only``), binned by the distance the prediction used (kpc; the predicted one for the
  flux-only network). With the distance given, the field luminosity is exact, so the same
  interval holds for the field M/L_V.
- ``pixel_log_mass`` (dex): log10 mass per pixel, same modes and bins (pixels with a true mass
  above 10^-4 Msun).
- ``distance`` (kpc) and ``age`` (Gyr), binned by their own predicted values.

With the distance predicted, the distance-aware network's field-mass interval is calibrated with
predicted distances, so it carries the distance's uncertainty.
"""

from __future__ import annotations

import numpy as np

from .spec import ModelError

__all__ = ["LEVEL", "MODES", "quantile_table", "interval", "calibrate_intervals"]

#: Probability content of the intervals.
LEVEL = 0.68
#: Mass-network modes of :meth:`PiDOC.predict <pidoc_core.model.PiDOC.predict>`.
MODES = ("distance-aware/given", "distance-aware/predicted", "flux-only")
_Q = (50.0 * (1.0 - LEVEL), 50.0 * (1.0 + LEVEL))
_PIXEL_MIN_LOG_MASS = -4.0


def quantile_table(residual, by, *, n_bins: int = 6) -> dict:
    """Residual quantiles in equal-count bins of ``by``.

    Parameters
    ----------
    residual : array_like
        predicted - true, any units.
    by : array_like
        The binning quantity (same length), known at prediction time.
    n_bins : int, keyword-only
        Bins (fewer if there are fewer than 50 values per bin).

    Returns
    -------
    dict
        ``edges`` (n_bins + 1, outermost open), ``q_lo``, ``q_hi`` (the 16th and 84th percentiles
        of the residual per bin), ``count`` per bin.

    Examples
    --------
    >>> t = quantile_table(np.r_[np.zeros(100), np.ones(100)], np.r_[np.zeros(100), np.ones(100)],
    ...                    n_bins=2)
    >>> t["q_lo"], t["q_hi"]
    ([0.0, 1.0], [0.0, 1.0])
    """
    r = np.asarray(residual, float).ravel()
    b = np.asarray(by, float).ravel()
    ok = np.isfinite(r) & np.isfinite(b)
    r, b = r[ok], b[ok]
    if r.size < 20:
        raise ModelError(f"calibrating intervals needs at least 20 finite residuals, got {r.size}")
    n_bins = int(max(1, min(n_bins, r.size // 50)))
    edges = np.unique(np.quantile(b, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 2:
        edges = np.array([b.min(), b.min()])
    idx = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, max(edges.size - 2, 0))
    q_lo, q_hi, count = [], [], []
    for i in range(max(edges.size - 1, 1)):
        sel = r[idx == i]
        lo, hi = np.percentile(sel, _Q)
        q_lo.append(float(lo))
        q_hi.append(float(hi))
        count.append(int(sel.size))
    return {"edges": [float(e) for e in edges], "q_lo": q_lo, "q_hi": q_hi, "count": count}


def interval(value, by, table: dict):
    """``(lo, hi)`` 68 % interval of predictions ``value`` given the binning values ``by``.

    ``value`` may have more dimensions than ``by`` (e.g. maps ``(n, H, W)`` with ``by`` of shape
    ``(n,)``); values of ``by`` outside the calibrated range take the nearest bin.
    """
    v = np.asarray(value)
    if v.dtype != np.float32:  # float32 maps stay float32
        v = v.astype(np.float64)
    b = np.atleast_1d(np.asarray(by, float))
    edges = np.asarray(table["edges"])
    idx = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, len(table["q_lo"]) - 1)
    lo = np.asarray(table["q_lo"], v.dtype)[idx]
    hi = np.asarray(table["q_hi"], v.dtype)[idx]
    shape = b.shape + (1,) * (v.ndim - b.ndim)
    return v - hi.reshape(shape), v - lo.reshape(shape)


def _log_field_mass(mass_log10):
    m = np.asarray(mass_log10, np.float64)
    return np.log10(np.sum(10.0 ** m, axis=(-2, -1)))


def calibrate_intervals(model, val, *, n_bins: int = 6, batch_size: int = 64) -> dict:
    """Calibrate every interval of ``model`` on a validation split.

    Parameters
    ----------
    model : PiDOC
        The networks to calibrate (those present are calibrated).
    val : xarray.Dataset or path
        A validation split (:func:`pidoc_core.dataset.open_dataset`), never the test split.
    n_bins : int, keyword-only
        Bins per quantity.
    batch_size : int, keyword-only
        Maps per network call.

    Returns
    -------
    dict
        JSON-serialisable tables for the model's provenance entry ``intervals``: ``level``,
        ``n_maps`` and per quantity (and mode) a :func:`quantile_table`.
    """
    from .. import dataset as D

    ds = D.open_dataset(val) if not hasattr(val, "sizes") else val
    if ds.attrs.get("split") == "test":
        raise ModelError("calibrate intervals on the validation split, not the test split")
    flux = np.asarray(ds["flux"].values, np.float32)
    mass = np.asarray(ds["mass"].values, np.float32)
    d_true = np.asarray(ds["distance"].values, float)
    t_true = np.asarray(ds["time"].values, float)
    out = {"level": LEVEL, "n_maps": int(flux.shape[0]), "method": "split conformal on "
           "validation residuals (predicted - true), 16th/84th percentiles per bin"}
    log_m_true = _log_field_mass(mass)
    pixel_ok = mass > _PIXEL_MIN_LOG_MASS
    d_pred = None
    if model.has_age_distance:
        pred = model.predict(flux, batch_size=batch_size, mass_network="auto"
                             if not model.has_mass else _any_mode(model))
        d_pred = np.asarray(pred["distance"].values, float)
        a_pred = np.asarray(pred["age"].values, float)
        out["distance"] = quantile_table(d_pred - d_true, d_pred, n_bins=n_bins)
        out["age"] = quantile_table(a_pred - t_true, a_pred, n_bins=n_bins)
    modes = {}
    for mode in MODES:
        kind, _, source = mode.partition("/")
        if kind == "distance-aware" and not model.has_distance_aware_mass:
            continue
        if kind == "flux-only" and not model.has_flux_only_mass:
            continue
        if source == "predicted" and d_pred is None:
            continue
        given = d_true if source == "given" else None
        pred = model.predict(flux, distance_kpc=given, mass_network=kind, batch_size=batch_size)
        by = d_true if source == "given" else (d_pred if d_pred is not None else d_true)
        m_pred = np.asarray(pred["mass"].values, np.float64)
        pix_r = (m_pred - mass)[pixel_ok]
        pix_by = np.broadcast_to(by[:, None, None], mass.shape)[pixel_ok]
        modes[mode] = {
            "log_field_mass": quantile_table(_log_field_mass(m_pred) - log_m_true, by,
                                             n_bins=n_bins),
            "pixel_log_mass": quantile_table(pix_r, pix_by, n_bins=n_bins),
        }
    out["mass"] = modes
    return out


def _any_mode(model):
    return "distance-aware" if model.has_distance_aware_mass else "flux-only"
