"""Test-set aggregates: per-map totals and errors, profiles and grouped pixel histograms.

One pass over the test maps (``_BLOCK`` at a time) fills the netCDF file the dashboard's Test-set
tab reads (layout in :mod:`pidoc_core.report`), so it can filter by distance and age without
reading a map. Beside the paper's statistics the file carries, per mass model, the per-map
absolute percentage errors of the total mass and M/L and the headline numbers of
:func:`headline_statistics` (the paper's mean over bins, the mean over bins holding at least
``min_share`` of the values, per-map mean and median errors).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from .. import evaluation as ev
from .._atomic import atomic_path
from ._common import MODEL_LABELS, PIXEL_EDGES, TIME_BIN_GYR

__all__ = ["AGGREGATES_VERSION", "headline_statistics", "open_aggregates"]

#: Version of the aggregates layout (2: per-map errors and headline statistics added).
AGGREGATES_VERSION = 2
_AGG_VERSION = AGGREGATES_VERSION
_BLOCK = 256  # maps per block of the aggregation pass
_SIDE_VARS = (("count", "1", "pixels"), ("sum", "dex", "sum of residuals"),
              ("sumsq", "dex2", "sum of squared residuals"),
              ("sum_pct", "%", "sum of eq. (2) percentage errors"))


def _bins(values, edges):
    nb = len(edges) - 1
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = nb - 1
    idx[(idx < 0) | (idx >= nb) | ~np.isfinite(values)] = -1
    return idx


def _groups(test, n):
    d = np.round(test["distance"].values[:n].astype(float), 6)
    t = test["time"].values[:n].astype(float)
    d_groups = np.unique(d)
    d_index = np.searchsorted(d_groups, d)
    t0 = math.floor(np.nanmin(t) / TIME_BIN_GYR) * TIME_BIN_GYR
    nt = int(math.floor((np.nanmax(t) - t0) / TIME_BIN_GYR)) + 1
    t_edges = t0 + TIME_BIN_GYR * np.arange(nt + 1)
    t_index = np.clip(np.floor((t - t0) / TIME_BIN_GYR + 1e-9).astype(int), 0, nt - 1)
    return d_groups, d_index, t_edges, t_index


def _mass_models(pred):
    out = []
    if "mass_pred" in pred.variables:
        out.append(("pidoc", "mass_pred"))
    out.append(("constant_ml", "mass_const_ml"))
    return out


class _Pass:
    """Accumulators of one aggregation pass over ``n`` maps and ``nm`` mass models."""

    def __init__(self, test, pred, n):
        self.models = _mass_models(pred)
        self.d_groups, self.d_index, self.t_edges, self.t_index = _groups(test, n)
        self.nm, self.nd, self.nt = len(self.models), len(self.d_groups), len(self.t_edges) - 1
        self.nb, self.ng = len(PIXEL_EDGES) - 1, self.nd * self.nt
        self.group = self.d_index * self.nt + self.t_index
        self.r_edges = ev.radial_edges()
        nm, ng, nb, nr = self.nm, self.ng, self.nb, len(self.r_edges) - 1
        self.hist = np.zeros((nm, ng * nb * nb), np.int64)
        self.side = {s: {k: np.zeros((nm, ng * nb)) for k, _, _ in _SIDE_VARS}
                     for s in ("mu", "xi")}
        self.n_out = np.zeros((nm, ng), np.int64)
        self.dist = test["distance"].values[:n].astype(float)
        self.sx = test["shift_x"].values[:n].astype(float)
        self.sy = test["shift_y"].values[:n].astype(float)
        self.mass_true, self.lum, self.mass_pred = np.empty(n), np.empty(n), np.empty((nm, n))
        self.profiles = {k: np.empty((n, nr), np.float32) for k in ("true", "lum", "ml_true")}
        self.profiles.update({k: np.empty((nm, n, nr), np.float32) for k in ("pred", "ml_pred")})

    def add_block(self, test, pred, s, e):
        t = np.asarray(test["mass"][s:e].values, dtype=np.float64)
        f = np.asarray(test["flux"][s:e].values, dtype=np.float64)
        keep = t > ev.LOG_MASS_FLOOR + 1e-6
        g_pix = np.broadcast_to(self.group[s:e, None, None], t.shape)[keep]
        tk = t[keep]
        it = _bins(tk, PIXEL_EDGES)
        for m, (_, var) in enumerate(self.models):
            p = np.asarray(pred[var][s:e].values, dtype=np.float64)
            self._add_maps(m, s, e, t, p, f)
            self._add_pixels(m, tk, p[keep], it, g_pix)

    def _add_maps(self, m, s, e, t, p, f):
        tot = ev.map_totals(t, p, f, self.dist[s:e])
        prof = ev.radial_profiles(t, p, f, self.dist[s:e], self.sx[s:e], self.sy[s:e],
                                  edges=self.r_edges)
        if m == 0:
            self.mass_true[s:e] = tot["mass_true"].values
            self.lum[s:e] = tot["luminosity_v"].values
            for key, var in (("true", "mass_true"), ("lum", "luminosity"), ("ml_true", "ml_true")):
                self.profiles[key][s:e] = prof[var].values
        self.mass_pred[m, s:e] = tot["mass_pred"].values
        self.profiles["pred"][m, s:e] = prof["mass_pred"].values
        self.profiles["ml_pred"][m, s:e] = prof["ml_pred"].values

    def _add_pixels(self, m, tk, pk, it, g_pix):
        nb, ng = self.nb, self.ng
        ok = np.isfinite(pk)
        ip = _bins(pk, PIXEL_EDGES)
        r = pk - tk
        with np.errstate(invalid="ignore", over="ignore"):
            pct = ev.percentage_error(tk, pk)
        both = (it >= 0) & (ip >= 0)
        self.hist[m] += np.bincount((g_pix[both] * nb + it[both]) * nb + ip[both],
                                    minlength=ng * nb * nb)
        self.n_out[m] += np.bincount(g_pix[ok & ~both], minlength=ng)
        for sname, idx in (("mu", ip), ("xi", it)):
            sel = (idx >= 0) & ok
            lab = g_pix[sel] * nb + idx[sel]
            acc = self.side[sname]
            acc["count"][m] += np.bincount(lab, minlength=ng * nb)
            acc["sum"][m] += np.bincount(lab, r[sel], minlength=ng * nb)
            acc["sumsq"][m] += np.bincount(lab, r[sel] ** 2, minlength=ng * nb)
            acc["sum_pct"][m] += np.bincount(lab, pct[sel], minlength=ng * nb)

    def per_map_vars(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            ml_true = self.mass_true / self.lum
            ml_pred = self.mass_pred / self.lum[None]
            ape_mass = 100.0 * np.abs(self.mass_pred - self.mass_true) / self.mass_true
            ape_ml = 100.0 * np.abs(ml_pred - ml_true) / ml_true
        ape = "absolute percentage error |predicted - true| / true x 100 of the total"
        return {
            "mass_true": ("sample", self.mass_true,
                          {"units": "Msun", "long_name": "true total mass in the field"}),
            "luminosity_v": ("sample", self.lum, {"units": "Lsun", "long_name":
                                                  "V luminosity of the field, F 4 pi d^2"}),
            "ml_true": ("sample", ml_true, {"units": "Msun/Lsun", "long_name": "true total M/L_V"}),
            "mass_pred": (("model", "sample"), self.mass_pred,
                          {"units": "Msun", "long_name": "predicted total mass"}),
            "ml_pred": (("model", "sample"), ml_pred,
                        {"units": "Msun/Lsun", "long_name": "predicted total M/L_V"}),
            "total_mass_ape": (("model", "sample"), ape_mass, {"units": "%",
                                                               "long_name": ape + " mass"}),
            "total_ml_ape": (("model", "sample"), ape_ml, {"units": "%",
                                                           "long_name": ape + " M/L_V"}),
            "distance_index": ("sample", self.d_index.astype(np.int32),
                               {"long_name": "index along distance_group"}),
            "time_index": ("sample", self.t_index.astype(np.int32),
                           {"long_name": "index along time_group"}),
        }

    def profile_vars(self):
        p = self.profiles
        return {
            "profile_mass_true": (("sample", "radius"), p["true"], {
                "units": "Msun", "long_name": "true mean mass per pixel, eq. (3)"}),
            "profile_luminosity": (("sample", "radius"), p["lum"], {
                "units": "Lsun", "long_name": "mean V luminosity per pixel"}),
            "profile_ml_true": (("sample", "radius"), p["ml_true"], {
                "units": "Msun/Lsun", "long_name": "true M/L_V profile"}),
            "profile_mass_pred": (("model", "sample", "radius"), p["pred"], {
                "units": "Msun", "long_name": "predicted mean mass per pixel"}),
            "profile_ml_pred": (("model", "sample", "radius"), p["ml_pred"], {
                "units": "Msun/Lsun", "long_name": "predicted M/L_V profile"}),
        }

    def pixel_vars(self):
        grp = ("model", "distance_group", "time_group")
        nm, nd, nt, nb = self.nm, self.nd, self.nt, self.nb
        data = {
            "pixel_histogram": (grp + ("true_bin", "pred_bin"),
                                self.hist.reshape(nm, nd, nt, nb, nb).astype(np.int32),
                                {"units": "1", "long_name": "pixels per (true, predicted) log10 "
                                                            "mass cell; true pixels above the "
                                                            "floor"}),
            "n_outside": (grp, self.n_out.reshape(nm, nd, nt).astype(np.int32),
                          {"units": "1", "long_name": "pixels with a true or predicted value "
                                                      "outside the bin edges"}),
        }
        for sname, dim, cond in (("mu", "pred_bin", "predicted"), ("xi", "true_bin", "true")):
            for k, unit, what in _SIDE_VARS:
                arr = self.side[sname][k].reshape(nm, nd, nt, nb)
                data[f"{sname}_{k}"] = (grp + (dim,),
                                        arr.astype(np.int32 if k == "count" else np.float64),
                                        {"units": unit, "long_name": f"{what} per bin of the "
                                         f"{cond} log10 pixel mass (r = pred - true)"})
        return data

    def coords(self, n):
        centres = 0.5 * (PIXEL_EDGES[:-1] + PIXEL_EDGES[1:])
        r_edges, t_edges = self.r_edges, self.t_edges
        lm = {"units": "log10(Msun)"}
        return {
            "sample": ("sample", np.arange(n, dtype=np.int32),
                       {"long_name": "sample index of the test store"}),
            "model": ("model", np.asarray([k for k, _ in self.models], dtype=object),
                      {"long_name": "mass model: " + ", ".join(
                          f"{k} = {MODEL_LABELS[k]}" for k, _ in self.models)}),
            "radius": ("radius", 0.5 * (r_edges[:-1] + r_edges[1:]), {"units": "arcsec"}),
            "radius_lower": ("radius", r_edges[:-1], {"units": "arcsec"}),
            "radius_upper": ("radius", r_edges[1:], {"units": "arcsec"}),
            "distance_group": ("distance_group", self.d_groups,
                               {"units": "kpc", "long_name": "true distance"}),
            "time_group": ("time_group", 0.5 * (t_edges[:-1] + t_edges[1:]),
                           {"units": "Gyr", "long_name": "centre of the 1-Gyr age bin"}),
            "time_lower": ("time_group", t_edges[:-1], {"units": "Gyr"}),
            "time_upper": ("time_group", t_edges[1:], {"units": "Gyr"}),
            "true_bin": ("true_bin", centres, lm), "true_lower": ("true_bin", PIXEL_EDGES[:-1], lm),
            "true_upper": ("true_bin", PIXEL_EDGES[1:], lm),
            "pred_bin": ("pred_bin", centres, lm), "pred_lower": ("pred_bin", PIXEL_EDGES[:-1], lm),
            "pred_upper": ("pred_bin", PIXEL_EDGES[1:], lm),
        }


def _sample_vars(test, pred, n):
    data = {}
    for name in ("time", "distance", "psf_fwhm", "shift_x", "shift_y", "rotation"):
        data[name] = ("sample", test[name].values[:n].astype(np.float64), dict(test[name].attrs))
    data["run"] = ("sample", np.asarray([str(v) for v in test["run"].values[:n].tolist()],
                                        dtype=object), {"long_name": "simulation run"})
    for var in ("age_pred", "distance_pred", "age_gbt", "distance_gbt"):
        if var in pred.variables:
            data[var] = ("sample", np.asarray(pred[var].values, np.float64), dict(pred[var].attrs))
    return data


def _attrs(pred, min_share):
    pa = pred.attrs
    return {
        "title": "pi-DOC test-set aggregates (per map, profiles, grouped pixel histograms)",
        "Conventions": "CF-1.10",
        "source": "pidoc_core.report.evaluate",
        "aggregates_version": AGGREGATES_VERSION,
        "predictions_key": str(pa.get("predictions_key", "")),
        "model_id": str(pa.get("model_id", "")),
        "model_sha256": str(pa.get("model_sha256", "")),
        "test_store": str(pa.get("test_store", "")),
        "test_plan_sha256": str(pa.get("test_plan_sha256", "")),
        "upsilon": float(pa.get("upsilon", np.nan)),
        "pixel_floor_log10_msun": float(ev.LOG_MASS_FLOOR),
        "min_share": float(min_share),
        "comment": "Pixel statistics leave out true pixels at the imager's floor (empty). "
                   "Residual r = predicted - true (dex); eq. (2) percentage error "
                   "|M_p - M_t| / M_p x 100. mu: per bin of the predicted value; xi: per bin "
                   "of the true value. *_min_share: mean over the bins holding at least "
                   "min_share of the values (and >= 2); *_ape: per map, |p - t| / t x 100.",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _pixel_stats_of(agg, m):
    """The aggregates' pixel sums of model index ``m`` as a residual-statistics Dataset."""
    sums = agg.isel(model=m).sum(("distance_group", "time_group"))
    with np.errstate(invalid="ignore", divide="ignore"):
        mpe = sums["mu_sum_pct"].values / sums["mu_count"].values
    return xr.Dataset({"mu_count": ("pred_bin", sums["mu_count"].values),
                       "mu_mpe": ("pred_bin", mpe)},
                      coords={"pred_lower": ("pred_bin", PIXEL_EDGES[:-1]),
                              "pred_upper": ("pred_bin", PIXEL_EDGES[1:])})


def headline_statistics(agg: xr.Dataset, *, min_share: float = ev.DEFAULT_MIN_SHARE,
                        total_width: float = 0.05) -> xr.Dataset:
    """Headline numbers of each mass model from aggregates (any selection of samples works).

    Parameters
    ----------
    agg : xarray.Dataset
        Aggregates (:func:`open_aggregates`), possibly selected along ``sample`` (totals) or the
        groups (pixels).
    min_share : float
        Share of the values a bin must hold for the ``*_mean_min_share`` variables
        (:func:`pidoc_core.evaluation.bin_summary`).
    total_width : float
        Bin width of log10 total mass and M/L, dex.

    Returns
    -------
    xarray.Dataset
        Over ``model``, in per cent: ``pixel_mpe_mean`` (the paper's mean of eq. (2) over
        predicted-mass bins, 0.1 dex), ``pixel_mpe_mean_min_share``, ``total_mass_mpe_mean``,
        ``total_mass_mpe_mean_min_share``, the same for ``total_ml``, and the per-map
        ``total_mass_ape_mean``/``_median``, ``total_ml_ape_mean``/``_median``; ``*_n_bins`` and
        ``*_n_bins_min_share`` count the bins averaged.
    """
    rows = {}
    for m in range(agg.sizes["model"]):
        out = ev.binned_rows(_pixel_stats_of(agg, m), "pixel_mpe", min_share=min_share)
        for q, t, p in (("total_mass", agg.mass_true.values, agg.mass_pred.values[m]),
                        ("total_ml", agg.ml_true.values, agg.ml_pred.values[m])):
            st = ev.residual_statistics(np.log10(t), np.log10(p), width=total_width)
            out.update(ev.binned_rows(st, f"{q}_mpe", min_share=min_share))
            per_map = ev.per_map_errors(t, p)
            out[f"{q}_ape_mean"], out[f"{q}_ape_median"] = (per_map["mean"], "%"), (
                per_map["median"], "%")
        for k, (v, u) in out.items():
            if k.endswith(("_min", "_max")):
                continue
            rows.setdefault(k, ([], u))[0].append(v)
    return xr.Dataset({k: ("model", np.asarray(v, float), {"units": u}) for k, (v, u) in
                       rows.items()}, coords={"model": agg["model"].values},
                      attrs={"min_share": float(min_share)})


def _compute_aggregates(test, pred, n, *, progress,
                        min_share: float = ev.DEFAULT_MIN_SHARE) -> xr.Dataset:
    from tqdm.auto import tqdm

    acc = _Pass(test, pred, n)
    for s in tqdm(range(0, n, _BLOCK), disable=not progress, desc="aggregates", unit="block"):
        acc.add_block(test, pred, s, min(n, s + _BLOCK))
    data = {**acc.per_map_vars(), **acc.profile_vars(), **acc.pixel_vars(),
            **_sample_vars(test, pred, n)}
    agg = xr.Dataset(data, coords=acc.coords(n), attrs=_attrs(pred, min_share))
    return agg.merge(headline_statistics(agg, min_share=min_share).drop_vars("model"),
                     combine_attrs="override")


def _atomic_netcdf(ds: xr.Dataset, path: Path) -> None:
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp)


def open_aggregates(path) -> xr.Dataset:
    """Read an aggregates file into memory (string variables as ``str``)."""
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    for name in ("run", "model"):
        if name in ds.variables:
            vals = [v.decode() if isinstance(v, bytes) else str(v) for v in ds[name].values]
            ds = ds.assign({name: (ds[name].dims, np.asarray(vals, dtype=str), ds[name].attrs)}) \
                if name not in ds.coords else ds.assign_coords(
                    {name: (ds[name].dims, np.asarray(vals, dtype=str), ds[name].attrs)})
    return ds
