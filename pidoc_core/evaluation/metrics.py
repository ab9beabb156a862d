"""Scalar metrics of the paper's Sect. 4 and their summaries over bins and over maps.

eq. (1) :func:`r2_score`; eq. (2) :func:`percentage_error`; the paper's headline "mean over bins"
and the same over bins holding a minimum share of the values, :func:`bin_summary`; per-map
absolute percentage errors, :func:`per_map_errors`; aligned bin edges, :func:`bin_edges`.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ._common import EvaluationError, _values

__all__ = ["DEFAULT_MIN_SHARE", "bin_edges", "r2_score", "percentage_error", "bin_summary",
           "per_map_errors"]

#: Default minimum share of the values a bin must hold to enter the "min-share" mean over bins:
#: 0.1 % (and never fewer than 2 values), so that bins with one or a few entries cannot weigh as
#: much as the bins holding most of the data.
DEFAULT_MIN_SHARE = 0.001


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


def bin_summary(stats: xr.Dataset, *, statistic: str = "mpe", side: str = "mu",
                min_count: int = 1, min_share: float | None = None,
                lower: float | None = None, upper: float | None = None) -> dict:
    """Mean, minimum and maximum of a per-bin statistic over bins: the paper's headline numbers.

    The paper averages over bins without weights ("over all mass bins"), so a bin holding one
    value weighs as much as one holding millions. Give ``min_share`` to keep only the bins that
    hold at least that share of the values (and at least 2 values): the "min-share" statistic
    that :func:`~pidoc_core.evaluation.summary` reports beside the paper's.

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
    min_share : float, optional
        Fraction in [0, 1] of all binned values on ``side`` that a bin must hold (e.g. 0.001 for
        0.1 %; :data:`DEFAULT_MIN_SHARE`); bins below it, or with fewer than 2 values, are left
        out. None: no such condition (the paper's statistic).
    lower, upper : float, optional
        Keep only bins whose lower edge is >= ``lower`` / upper edge <= ``upper`` (units of the
        binned value); e.g. ``lower=-1`` excludes the paper's "low mass bins" log10 M < -1.

    Returns
    -------
    dict
        ``mean``, ``min``, ``max`` (the statistic's units; unweighted over the kept bins),
        ``n_bins`` (bins kept) and ``share`` (fraction of the binned values they hold); NaN
        statistics when no bin qualifies.

    Raises
    ------
    EvaluationError
        For a ``side`` other than "mu"/"xi" or a ``min_share`` outside [0, 1].

    Examples
    --------
    99 maps predicted exactly in one bin and one map 1.0 off alone in another:

    >>> from pidoc_core.evaluation import residual_statistics
    >>> st = residual_statistics([0.0] * 99 + [1.0], [0.0] * 99 + [2.0], edges=[0, 1, 2])
    >>> bin_summary(st, statistic="mae")["mean"], bin_summary(st, statistic="mae",
    ...                                                        min_share=0.05)["mean"]
    (0.5, 0.0)
    """
    if side not in ("mu", "xi"):
        raise EvaluationError(f"side must be 'mu' or 'xi', got {side!r}")
    dim = "pred" if side == "mu" else "true"
    values = np.asarray(stats[f"{side}_{statistic}"].values, dtype=float)
    counts = np.asarray(stats[f"{side}_count"].values)
    keep = counts >= max(1, min_count)
    if min_share is not None:
        if not 0.0 <= min_share <= 1.0:
            raise EvaluationError(f"min_share must be a fraction in [0, 1], got {min_share!r}")
        keep &= (counts >= 2) & (counts >= min_share * counts.sum())
    if lower is not None:
        keep &= stats[f"{dim}_lower"].values >= lower - 1e-9
    if upper is not None:
        keep &= stats[f"{dim}_upper"].values <= upper + 1e-9
    keep &= np.isfinite(values)
    v = values[keep]
    share = float(counts[keep].sum() / counts.sum()) if counts.sum() else float("nan")
    if not v.size:
        nan = float("nan")
        return {"mean": nan, "min": nan, "max": nan, "n_bins": 0, "share": share}
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
            "n_bins": int(v.size), "share": share}


def per_map_errors(true, pred, *, kind: str = "linear", denominator: str = "true") -> dict:
    """Mean and median absolute percentage error over maps: one value per map, no bins.

    Parameters
    ----------
    true, pred : array_like
        One value per map (e.g. total field mass in Msun, or total M/L in Msun/Lsun); log10 of
        the quantity when ``kind="log"``. Pairs with a non-finite value are skipped.
    kind : {"linear", "log"}
        Whether the values are the quantity or its log10.
    denominator : {"true", "predicted"}
        ``"true"`` (default): |p - t| / t, the usual absolute percentage error; ``"predicted"``:
        relative to the prediction, as the paper's eq. (2).

    Returns
    -------
    dict
        ``mean``, ``median`` (per cent) and ``n_maps``.

    Examples
    --------
    >>> per_map_errors([100.0, 100.0, 100.0], [110.0, 80.0, 100.0])
    {'mean': 10.0, 'median': 10.0, 'n_maps': 3}
    """
    t = np.asarray(_values(true, "true"), dtype=np.float64).ravel()
    p = np.asarray(_values(pred, "pred"), dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise EvaluationError(f"true and pred differ in size: {t.size} vs {p.size}")
    ok = np.isfinite(t) & np.isfinite(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = percentage_error(t[ok], p[ok], kind=kind, denominator=denominator)
    ape = ape[np.isfinite(ape)]
    if not ape.size:
        return {"mean": float("nan"), "median": float("nan"), "n_maps": 0}
    return {"mean": float(np.mean(ape)), "median": float(np.median(ape)),
            "n_maps": int(ape.size)}
