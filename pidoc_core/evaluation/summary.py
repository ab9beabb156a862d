"""The headline numbers of Sect. 4 for several models side by side, with the paper's.

:func:`summary` gives, for each model, the paper's statistics (means, minima and maxima of eq. (2)
or eq. (4) over bins of the predicted value, eq. (1) R^2, Table 2) and beside them two that a
spread of bins cannot distort: the same mean over the bins holding at least ``min_share`` of the
values (``*_mean_min_share``, with the number of bins on either side in ``*_n_bins*``), and the
per-map mean and median absolute percentage errors of the field's total mass and M/L
(``total_*_ape_mean`` / ``total_*_ape_median``, no bins at all).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..paper import RESULTS as PAPER_RESULTS
from ._common import EvaluationError
from .metrics import DEFAULT_MIN_SHARE, bin_summary, per_map_errors, r2_score
from .residuals import pixel_residual_statistics, residual_statistics
from .totals import distance_table, map_totals, radial_profiles, total_mass

__all__ = ["summary", "binned_rows", "PAPER_RESULTS"]

_STATS = ("mean", "min", "max")


class _Rows:
    """Rows of one model's column: ``put(key, value, unit)``, units shared by all columns."""

    def __init__(self, units: dict[str, str]):
        self.units, self.values = units, {}

    def put(self, key, value, unit):
        self.values[key] = float(value)
        self.units.setdefault(key, unit)

    def nan(self, keys_units):
        for key, unit in keys_units:
            self.put(key, np.nan, unit)


def binned_rows(stats: xr.Dataset, key: str, *, statistic: str = "mpe", unit: str = "%",
                min_count: int = 1, min_share: float = DEFAULT_MIN_SHARE,
                lower: float | None = None, tag: str = "") -> dict[str, tuple[float, str]]:
    """The summary rows of one binned statistic: the paper's and the min-share one.

    Parameters
    ----------
    stats : xarray.Dataset
        From :func:`~pidoc_core.evaluation.residual_statistics` or
        :func:`~pidoc_core.evaluation.pixel_residual_statistics`.
    key : str
        Row prefix, e.g. ``"pixel_mpe"``.
    statistic, min_count, min_share, lower
        As :func:`~pidoc_core.evaluation.bin_summary`.
    unit : str
        Unit of the statistic.
    tag : str
        Suffix of the paper-statistic rows (``"_excl_low"``).

    Returns
    -------
    dict
        ``{row: (value, unit)}``: ``{key}_{mean,min,max}{tag}`` over all bins holding at least
        ``min_count`` values (the paper's), ``{key}_mean_min_share{tag}``, and the numbers of bins
        ``{key}_n_bins{tag}`` and ``{key}_n_bins_min_share{tag}``.
    """
    paper = bin_summary(stats, statistic=statistic, min_count=min_count, lower=lower)
    share = bin_summary(stats, statistic=statistic, min_count=min_count, min_share=min_share,
                        lower=lower)
    rows = {f"{key}_{s}{tag}": (paper[s], unit) for s in _STATS}
    rows[f"{key}_mean_min_share{tag}"] = (share["mean"], unit)
    rows[f"{key}_n_bins{tag}"] = (paper["n_bins"], "bins")
    rows[f"{key}_n_bins_min_share{tag}"] = (share["n_bins"], "bins")
    return rows


def _binned_keys(key, unit, tag=""):
    return [(f"{key}_{s}{tag}", unit) for s in (*_STATS, "mean_min_share")] + [
        (f"{key}_n_bins{tag}", "bins"), (f"{key}_n_bins_min_share{tag}", "bins")]


def _mass_keys():
    keys = _binned_keys("pixel_mpe", "%") + _binned_keys("pixel_mpe", "%", "_excl_low")
    keys += [("mass_r2", "")]
    for q in ("total_mass", "total_ml"):
        keys += _binned_keys(f"{q}_mpe", "%") + [(f"{q}_ape_mean", "%"), (f"{q}_ape_median", "%")]
    return keys + [("profile_mpe", "%")]


def _mass_rows(rows, test, mass_pred, d_true, shifts, *, pixel_width, total_width,
               low_mass_limit, min_count, min_share, tot=None, prof=None):
    """Pixel (Fig. 5), total (Fig. 6) and profile (eq. 3) rows of one mass model.

    ``tot`` and ``prof`` are its :func:`map_totals` and :func:`radial_profiles` when already
    computed (the report's aggregates); else they are computed from the maps.
    """
    st = pixel_residual_statistics(test["mass"], mass_pred, width=pixel_width)
    for tag, lower in (("", None), ("_excl_low", low_mass_limit)):
        for k, (v, u) in binned_rows(st, "pixel_mpe", min_count=min_count, min_share=min_share,
                                     lower=lower, tag=tag).items():
            rows.put(k, v, u)
    rows.put("mass_r2", st.attrs["r2"], "")
    n = d_true.size
    if tot is None:
        tot = map_totals(test["mass"], mass_pred, test["flux"], d_true)
    elif tot["mass_pred"].shape != (n,):
        raise EvaluationError(f"totals given for {tot['mass_pred'].size} maps, the test has {n}")
    for key, t, p in (("total_mass", tot.mass_true.values, tot.mass_pred.values),
                      ("total_ml", tot.ml_true.values, tot.ml_pred.values)):
        binned = residual_statistics(np.log10(t), np.log10(p), width=total_width)
        for k, (v, u) in binned_rows(binned, f"{key}_mpe", min_count=min_count,
                                     min_share=min_share).items():
            rows.put(k, v, u)
        per_map = per_map_errors(t, p)
        rows.put(f"{key}_ape_mean", per_map["mean"], "%")
        rows.put(f"{key}_ape_median", per_map["median"], "%")
    log_ratio = np.log10(tot.mass_pred.values / tot.mass_true.values)
    for g in np.unique(np.round(d_true, 6)):
        sel = np.isclose(d_true, g)
        rows.put(f"total_mass_log_bias_{g:g}", float(np.mean(log_ratio[sel])), "dex")
    if prof is None:
        prof = radial_profiles(test["mass"], mass_pred, test["flux"], d_true, *shifts)
    elif prof["mass_pred"].shape[0] != n:
        raise EvaluationError(f"profiles given for {prof['mass_pred'].shape[0]} maps, the test "
                              f"has {n}")
    inner = prof.radius_upper <= 20.0 + 1e-9
    mp, mt = prof.mass_pred.where(inner).values, prof.mass_true.where(inner).values
    ok = np.isfinite(mp) & np.isfinite(mt) & (mp > 0)
    rows.put("profile_mpe", 100 * np.mean(np.abs(mp[ok] - mt[ok]) / mp[ok]), "%")


def _age_keys():
    return _binned_keys("age_mae", "Gyr") + [("age_mae_overall", "Gyr"), ("age_r2", "")]


def _age_rows(rows, age_true, age_pred, *, age_width, min_count, min_share):
    """Age rows (eq. 4, Fig. 8) of one model."""
    st = residual_statistics(age_true, age_pred, width=age_width, kind="linear", units="Gyr")
    for k, (v, u) in binned_rows(st, "age_mae", statistic="mae", unit="Gyr",
                                 min_count=min_count, min_share=min_share).items():
        rows.put(k, v, u)
    rows.put("age_mae_overall", np.mean(np.abs(age_pred - age_true)), "Gyr")
    rows.put("age_r2", r2_score(age_true, age_pred), "")


def _distance_keys(groups):
    keys = [(f"distance_{s}_{g:g}", "kpc") for g in groups for s in ("mean", "std", "mae")]
    return keys + [("distance_mae_overall", "kpc"), ("distance_r2", "")]


def _distance_rows(rows, d_true, d_pred):
    """Table 2 rows of one model."""
    tab = distance_table(d_true, d_pred)
    for g in tab.true_distance.values:
        for stat in ("mean", "std", "mae"):
            rows.put(f"distance_{stat}_{g:g}", tab[stat].sel(true_distance=g), "kpc")
    rows.put("distance_mae_overall", np.mean(np.abs(d_pred - d_true)), "kpc")
    rows.put("distance_r2", r2_score(d_true, d_pred), "")


def _coverage_rows(rows, test, pred, d_true, age_true, field_mass_true=None):
    """Share of maps whose truth lies inside the predicted 68 % interval, where there is one."""
    truths = {"age": age_true, "distance": d_true}
    if "field_mass_lo" in pred.variables:
        truths["field_mass"] = (total_mass(test["mass"]) if field_mass_true is None
                                else np.asarray(field_mass_true, dtype=float))
    for key, truth in truths.items():
        lo, hi = f"{key}_lo", f"{key}_hi"
        if lo in pred.variables and hi in pred.variables:
            inside = (truth >= pred[lo].values) & (truth <= pred[hi].values)
            rows.put(f"{key}_coverage_68", 100.0 * float(np.mean(inside)), "%")


def _frame(columns, units, *, paper, min_share):
    import pandas as pd

    index = list(units)
    df = pd.DataFrame({name: [col.get(k, np.nan) for k in index]
                       for name, col in columns.items()}, index=pd.Index(index, name="metric"))
    df.insert(0, "unit", [units[k] for k in index])
    if paper:
        df["paper"] = [PAPER_RESULTS[k]["value"] if k in PAPER_RESULTS else np.nan for k in index]
        df["paper_source"] = [
            f"Sect. {PAPER_RESULTS[k]['section']}, {PAPER_RESULTS[k]['where']}"
            if k in PAPER_RESULTS else "" for k in index]
    df.attrs["min_share"] = float(min_share)
    return df


def summary(test: xr.Dataset, predictions: Mapping[str, xr.Dataset], *,
            pixel_width: float = 0.1, total_width: float = 0.05, age_width: float = 1.0,
            low_mass_limit: float = -1.0, min_count: int = 1,
            min_share: float = DEFAULT_MIN_SHARE, paper: bool = True,
            totals: Mapping[str, xr.Dataset] | None = None,
            profiles: Mapping[str, xr.Dataset] | None = None):
    """Headline numbers of Sect. 4 for several models side by side, with the paper's.

    Parameters
    ----------
    test : xarray.Dataset
        Ground truth: ``flux`` and ``mass`` (sample, y, x; log10 Lsun kpc^-2, log10 Msun) and
        per-sample ``distance`` (kpc), ``time`` (Gyr), ``shift_x``/``shift_y`` (arcsec).
    predictions : mapping of str to xarray.Dataset
        Model name -> predictions over the same samples, with any of ``mass`` (sample, y, x),
        ``age`` (Gyr), ``distance`` (kpc): e.g. ``PiDOC.predict`` output and
        :func:`~pidoc_core.evaluation.baseline_predictions`. Missing quantities give NaN rows.
    pixel_width, total_width : float
        Bin widths, dex, for pixel masses and for total masses / M/L (log10).
    age_width : float
        Age bin width, Gyr.
    low_mass_limit : float
        log10 Msun; the "excluding low mass bins" rows keep bins with lower edge >= this.
    min_count : int
        Bins with fewer values are left out of the paper's mean/min/max (1: all, as the paper).
    min_share : float
        Fraction of the values a bin must hold (and at least 2 values) to enter the
        ``*_mean_min_share`` rows; default :data:`~pidoc_core.evaluation.DEFAULT_MIN_SHARE`
        (0.1 %). Stored in ``DataFrame.attrs["min_share"]``.
    paper : bool
        Add the columns ``paper`` and ``paper_source`` from :data:`PAPER_RESULTS`.
    totals, profiles : mapping of str to xarray.Dataset, optional
        Model name -> its :func:`~pidoc_core.evaluation.map_totals` (``mass_true``,
        ``mass_pred``, ``ml_true``, ``ml_pred`` over ``sample``) and
        :func:`~pidoc_core.evaluation.radial_profiles` (``mass_true``, ``mass_pred`` over
        ``(sample, radius)`` with ``radius_upper``, arcsec) when already computed, e.g. from the
        report's aggregates; models not named are computed from the maps. The pixel statistics
        always read the maps.

    Returns
    -------
    pandas.DataFrame
        Rows: metrics (index ``metric``, with a ``unit`` column); one column per model.
        ``*_mean``/``*_min``/``*_max`` are the paper's unweighted statistics over bins of the
        predicted value (eq. 2 percentage errors, per cent; eq. 4 MAE, Gyr), ``*_n_bins`` how
        many bins they average; ``*_mean_min_share`` the mean over the ``*_n_bins_min_share``
        bins holding at least ``min_share`` of the values; ``total_mass_ape_*`` and
        ``total_ml_ape_*`` the per-map mean and median of |predicted - true| / true x 100;
        ``*_r2`` eq. (1); ``profile_mpe`` eq. (2) over all radial bins (r < 20") of all maps'
        mass profiles (the paper gives no number); ``distance_*_<d>`` Table 2 per true distance.

    Raises
    ------
    EvaluationError
        When ``test`` lacks ``flux``, ``mass``, ``distance`` or ``time``.
    """
    for k in ("flux", "mass", "distance", "time"):
        if k not in test.variables:
            raise EvaluationError(f"test dataset lacks {k!r}")
    d_true = test["distance"].values.astype(float)
    age_true = test["time"].values.astype(float)
    shifts = tuple(test[k].values if k in test.variables else 0.0 for k in ("shift_x", "shift_y"))
    groups = np.unique(np.round(d_true, 6))
    units: dict[str, str] = {}
    columns: dict[str, dict[str, float]] = {}
    opts = dict(min_count=min_count, min_share=min_share)
    totals, profiles = dict(totals or {}), dict(profiles or {})
    for name, pred in predictions.items():
        rows = _Rows(units)
        if "mass" in pred.variables:
            _mass_rows(rows, test, pred["mass"], d_true, shifts, pixel_width=pixel_width,
                       total_width=total_width, low_mass_limit=low_mass_limit,
                       tot=totals.get(name), prof=profiles.get(name), **opts)
        else:
            rows.nan(_mass_keys())
        if "age" in pred.variables:
            _age_rows(rows, age_true, pred["age"].values.astype(float), age_width=age_width,
                      **opts)
        else:
            rows.nan(_age_keys())
        if "distance" in pred.variables:
            _distance_rows(rows, d_true, pred["distance"].values.astype(float))
        else:
            rows.nan(_distance_keys(groups))
        known = totals.get(name, next(iter(totals.values()), None))  # the truth is shared
        _coverage_rows(rows, test, pred, d_true, age_true,
                       None if known is None else known["mass_true"].values)
        both = "age" in pred.variables and "distance" in pred.variables
        rows.put("age_distance_r2", r2_score(
            np.concatenate([d_true, age_true]),
            np.concatenate([pred["distance"].values, pred["age"].values])) if both else np.nan, "")
        columns[name] = rows.values
    return _frame(columns, units, paper=paper, min_share=min_share)
