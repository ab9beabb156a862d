"""The statistics of the report and its self-contained HTML page (Figs 4-9, Table 2)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import evaluation as ev
from ._common import MODEL_LABELS, PIXEL_EDGES
from .aggregates import _mass_models

__all__ = []



def _pick_maps(test, n, *, seed, k=4):
    """Up to ``k`` samples, one per true distance first (as Fig. 4), at random (seeded)."""
    rng = np.random.default_rng(seed)
    d = np.round(test["distance"].values[:n].astype(float), 6)
    chosen = []
    for g in np.unique(d)[:k]:
        chosen.append(int(rng.choice(np.flatnonzero(d == g))))
    rest = np.setdiff1d(np.arange(n), chosen)
    while len(chosen) < min(k, n) and rest.size:
        pick = int(rng.choice(rest))
        chosen.append(pick)
        rest = rest[rest != pick]
    return sorted(chosen)


def _table2(tables: dict):
    import pandas as pd

    rows = {}
    for label, tab in tables.items():
        for stat in ("mean", "std", "mae"):
            rows[(label, stat)] = {f"{g:g}": float(v) for g, v in
                                   zip(tab.true_distance.values, tab[stat].values)}
        rows[(label, "count")] = {f"{g:g}": int(v) for g, v in
                                  zip(tab.true_distance.values, tab["count"].values)}
    for stat in ("mean", "std", "mae"):
        rows[("paper", stat)] = {str(d): ev.PAPER_RESULTS[f"distance_{stat}_{d}"]["value"]
                                 for d in (15, 30, 60, 80)}
    df = pd.DataFrame(rows).T
    df.index = pd.MultiIndex.from_tuples(df.index, names=["model", "statistic (kpc)"])
    df.columns.name = "true distance (kpc)"
    return df


def _statistics(test, pred, agg, n, *, seed):
    labels = {"pidoc": MODEL_LABELS["pidoc"], "constant_ml": MODEL_LABELS["constant_ml"]}
    st = {"pixel": {}, "total_mass": {}, "total_ml": {}, "age": {}, "distance_table": {},
          "distance_pdfs": {}}
    for key, var in _mass_models(pred):
        label = labels[key]
        # the aggregates' bins, so the Test-set tab draws the same Fig. 5
        st["pixel"][label] = ev.pixel_residual_statistics(test["mass"], pred[var],
                                                          edges=PIXEL_EDGES)
        m = list(agg.model.values).index(key)
        st["total_mass"][label] = ev.residual_statistics(
            np.log10(agg.mass_true.values), np.log10(agg.mass_pred.values[m]), width=0.05,
            quantity="log10 total mass", units="log10(Msun)")
        st["total_ml"][label] = ev.residual_statistics(
            np.log10(agg.ml_true.values), np.log10(agg.ml_pred.values[m]), width=0.05,
            quantity="log10 total M/L_V", units="log10(Msun/Lsun)")
    age_true = test["time"].values[:n].astype(float)
    d_true = test["distance"].values[:n].astype(float)
    for label, a, dv in ((MODEL_LABELS["pidoc"], "age_pred", "distance_pred"),
                         (MODEL_LABELS["gbt"], "age_gbt", "distance_gbt")):
        if a in pred.variables:
            st["age"][label] = ev.residual_statistics(age_true, pred[a].values, width=1.0,
                                                      kind="linear", quantity="age", units="Gyr")
        if dv in pred.variables:
            st["distance_table"][label] = ev.distance_table(d_true, pred[dv].values)
            st["distance_pdfs"][label] = ev.distance_pdfs(d_true, pred[dv].values, width=2.0)
    st["table2"] = _table2(st["distance_table"])
    st["mosaic_samples"] = _pick_maps(test, n, seed=seed)
    return st


def _known_totals(agg):
    """The aggregates' per-map totals and mass profiles of each mass model, by display label."""
    totals, profiles = {}, {}
    for m, key in enumerate(agg.model.values):
        label = MODEL_LABELS[str(key)]
        totals[label] = xr.Dataset({v: ("sample", agg[v].values[m] if "model" in agg[v].dims
                                        else agg[v].values)
                                    for v in ("mass_true", "mass_pred", "ml_true", "ml_pred")})
        profiles[label] = xr.Dataset(
            {"mass_true": (("sample", "radius"), agg.profile_mass_true.values),
             "mass_pred": (("sample", "radius"), agg.profile_mass_pred.values[m])},
            coords={"radius_upper": ("radius", agg.radius_upper.values)})
    return totals, profiles


def _summary(test, pred, agg):
    preds = {}
    mp = {}
    if "mass_pred" in pred.variables:
        mp["mass"] = pred["mass_pred"].variable
    if "age_pred" in pred.variables:
        mp["age"] = pred["age_pred"].variable
        mp["distance"] = pred["distance_pred"].variable
    for name in ("field_mass", "age", "distance"):  # 68 % interval bounds, when stored
        for bound in ("lo", "hi"):
            if f"{name}_pred_{bound}" in pred.variables:
                mp[f"{name}_{bound}"] = pred[f"{name}_pred_{bound}"].variable
    if mp:
        preds[MODEL_LABELS["pidoc"]] = xr.Dataset(mp)
    preds[MODEL_LABELS["constant_ml"]] = xr.Dataset({"mass": pred["mass_const_ml"].variable})
    preds[MODEL_LABELS["gbt"]] = xr.Dataset({"age": pred["age_gbt"].variable,
                                             "distance": pred["distance_gbt"].variable})
    totals, profiles = _known_totals(agg)
    return ev.summary(test, preds, totals=totals, profiles=profiles)


def _count_plots(models) -> int:
    from bokeh.models import Plot

    seen = set()
    for m in models:
        for obj in m.references():
            if isinstance(obj, Plot):
                seen.add(obj.id)
    return len(seen)


def _provenance_text(identity, pred, test, n, n_total, timings, reused, path):
    pa = pred.attrs
    psf = (sorted(set(np.round(test["psf_fwhm"].values[:n], 3).tolist()))
           if "psf_fwhm" in test.variables else "?")
    lines = [
        f"Model: {identity['source']} (id {identity['id']}, sha256 {identity['sha256']}); "
        f"loaded from {identity['loaded_from'] or '(in memory)'}; networks: "
        + ", ".join(k for k, v in (("mass", identity["has_mass"]),
                                   ("age/distance", identity["has_age_distance"])) if v) + ".",
        f"Test set: {pa.get('test_store') or '(in memory)'}, split "
        f"{test.attrs.get('split', '?')}, plan sha256 {test.attrs.get('plan_sha256', '?')}; "
        f"{n} of {n_total} maps evaluated{' (limit)' if n < n_total else ''}; "
        f"distances {sorted(set(np.round(test['distance'].values[:n], 3).tolist()))} kpc, "
        f"PSF FWHM {psf} arcsec, "
        f"ages {float(np.min(test['time'].values[:n])):.2f}-"
        f"{float(np.max(test['time'].values[:n])):.2f} Gyr.",
        f"Training set (baselines): {pa.get('train_store') or '(in memory)'}, plan sha256 "
        f"{pa.get('train_plan_sha256', '?')}.",
        f"Baselines: constant M/L with Upsilon = {float(pa.get('upsilon', np.nan)):.4g} Msun/Lsun "
        f"(mean field M/L_V of the whole training split), mass maps log10(Upsilon F 4 pi d^2) "
        f"with the true distance; {pa.get('gbt_note', 'GBT on photometric features')} "
        f"({', '.join(ev.FEATURE_NAMES)}).",
        f"Predictions: {'reused from' if reused else 'written to'} the store "
        f"{path}; created {pa.get('created', '?')}.",
        "Conventions: residual r = predicted - true; per-bin errors are conditioned on the "
        "predicted value (mu, the paper's left-hand histograms); eq. (2) percentage errors "
        "divide by the predicted mass; true pixels at the imager's floor (empty) are left out "
        "of the pixel statistics; bins of 0.1 dex (pixels), 0.05 dex (totals), 1 Gyr (ages). "
        "The paper's R^2 values (mass_r2, age_distance_r2) are from its validation curves, not "
        "the test set.",
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()) + ".",
    ]
    return "\n\n".join(lines)


def _summary_note(summary_df) -> str:
    share = 100 * float(summary_df.attrs.get("min_share", ev.DEFAULT_MIN_SHARE))
    return ("Per-bin summaries (*_mean, *_min, *_max) are the paper's unweighted means / minima / "
            "maxima over bins of the predicted value, over *_n_bins bins: a bin holding one map "
            "weighs as much as one holding thousands, and a model whose predictions fall in one "
            "bin (the constant M/L) is compared with one spread over many. Read them beside "
            f"*_mean_min_share, the same mean over the bins holding at least {share:g} % of the "
            "values (and at least 2), and beside the per-map mean and median absolute percentage "
            "errors total_mass_ape_* and total_ml_ape_* (|predicted - true| / true, no bins). "
            "Empty model cells mean the model does not predict that quantity.")


def _share_text(st, statistic, unit, fmt):
    share = ev.bin_summary(st, statistic=statistic, min_share=ev.DEFAULT_MIN_SHARE)
    return (f"over the {share['n_bins']} bins holding >= {100 * ev.DEFAULT_MIN_SHARE:g} % of the "
            f"values: {share['mean']:{fmt}} {unit}")


def _fig4_section(test, pred, stats):
    from .. import plots

    idx = stats["mosaic_samples"]
    mass_var = "mass_pred" if "mass_pred" in pred.variables else "mass_const_ml"
    mass_label = MODEL_LABELS["pidoc"] if mass_var == "mass_pred" else MODEL_LABELS["constant_ml"]
    sel = test.isel(sample=idx)
    age_p = pred["age_pred"].values[idx] if "age_pred" in pred.variables else None
    dist_p = pred["distance_pred"].values[idx] if "distance_pred" in pred.variables else None
    fig4 = plots.mosaic(np.asarray(sel["flux"].values), np.asarray(sel["mass"].values),
                        np.asarray(pred[mass_var].isel(sample=idx).values),
                        labels=[f"#{i}" for i in idx], true_age=sel["time"].values,
                        pred_age=age_p, true_distance=sel["distance"].values,
                        pred_distance=dist_p, size=200)
    return (f"Fig. 4: flux, true mass, {mass_label} mass and residual maps",
            [f"Samples {idx} of the test set (one per true distance, chosen at random); "
             "rows: input flux, true mass, predicted mass (same colour scale), residual "
             "predicted - true (dex)." + (
                 "" if mass_var == "mass_pred" else
                 " This model has no mass network: the third row is the constant-M/L "
                 "baseline's mass; its titles give pi-DOC's distance and age."), fig4])


def _fig5_6_sections(stats, agg):
    from .. import plots

    fig5 = []
    for label, st in stats["pixel"].items():
        s, s_hi = ev.bin_summary(st), ev.bin_summary(st, lower=-1.0)
        fig5.append(f"{label}: mean eq. (2) error {s['mean']:.1f} % over {s['n_bins']} bins of "
                    f"predicted mass (min {s['min']:.1f} %, max {s['max']:.1f} %); "
                    f"{_share_text(st, 'mpe', '%', '.1f')}; log10 M >= -1: "
                    f"{s_hi['mean']:.1f} % (min {s_hi['min']:.1f} %, max {s_hi['max']:.1f} %); "
                    f"R^2 {st.attrs['r2']:.3f}. Paper: 27.4 % (13.7-95.0 %), 17.6 % "
                    "(13.7-22.1 %).")
        fig5.append(plots.residual_panel(st, label="log10 M per pixel", units="Msun",
                                         title=f"{label}: pixel mass"))
    fig6 = []
    keys = list(agg.model.values)
    for key, label in MODEL_LABELS.items():
        if label not in stats["total_mass"]:
            continue
        m = keys.index(key)
        per_map = {q: ev.per_map_errors(agg[f"{q}_true"].values, agg[f"{q}_pred"].values[m])
                   for q in ("mass", "ml")}
        fig6.append(f"{label}: left total mass, right total M/L_V (luminosity F 4 pi d^2 with "
                    "the true distance). Mean eq. (2) error over bins: mass "
                    f"{ev.bin_summary(stats['total_mass'][label])['mean']:.1f} %, M/L "
                    f"{ev.bin_summary(stats['total_ml'][label])['mean']:.1f} % (paper 15.6 %, "
                    f"11.8 %); M/L {_share_text(stats['total_ml'][label], 'mpe', '%', '.1f')}. "
                    f"Per map: mass {per_map['mass']['mean']:.1f} % mean, "
                    f"{per_map['mass']['median']:.1f} % median; M/L "
                    f"{per_map['ml']['mean']:.1f} % mean, {per_map['ml']['median']:.1f} % median.")
        fig6.append(plots.totals_panels(stats["total_mass"][label], stats["total_ml"][label]))
    return [("Fig. 5: pixel-by-pixel mass, true vs predicted, with mu and xi", fig5),
            ("Fig. 6: total mass and total M/L per map", fig6)]


def _fig7_section(test, pred, stats):
    from .. import plots

    idx = np.asarray(stats["mosaic_samples"])
    sel = test.isel(sample=idx)
    fig7 = []
    for key, var in _mass_models(pred):
        prof = ev.radial_profiles(np.asarray(sel["mass"].values),
                                  np.asarray(pred[var].isel(sample=idx).values),
                                  np.asarray(sel["flux"].values), sel["distance"].values,
                                  sel["shift_x"].values, sel["shift_y"].values)
        fig7.append(f"{MODEL_LABELS[key]}: true (solid) and predicted (dashed) profiles of the "
                    "Fig. 4 maps, 25 bins of 1.2 arcsec; lower panels true / predicted.")
        fig7.append(plots.profile_panels(prof, labels=[f"#{i}" for i in idx]))
    return ("Fig. 7: mass (eq. 3) and M/L radial profiles", fig7)


def _fig8_9_sections(stats):
    from .. import plots

    fig8 = []
    for label, st in stats["age"].items():
        s = ev.bin_summary(st, statistic="mae")
        fig8.append(f"{label}: mean eq. (4) MAE {s['mean']:.2f} Gyr over {s['n_bins']} age bins "
                    f"(min {s['min']:.2f}, max {s['max']:.2f} Gyr); "
                    f"{_share_text(st, 'mae', 'Gyr', '.2f')}. Paper: 1.26 Gyr (0.33-1.64 Gyr).")
        fig8.append(plots.residual_panel(st, label="age", units="Gyr", statistic="mae",
                                         title=f"{label}: age"))
    fig9 = []
    for label, pdf in stats["distance_pdfs"].items():
        fig9.append(f"{label}:")
        fig9.append(plots.distance_pdf_plot(pdf).opts(title=f"{label}: predicted distance PDFs",
                                                      backend="bokeh"))
    return [("Fig. 8: age, true vs predicted (eq. 4)", fig8 or "No model predicts ages."),
            ("Fig. 9: predicted distance PDFs per true distance", fig9 or
             "No model predicts distances."),
            ("Table 2: predicted distances by true distance (kpc)",
             [stats["table2"], "Population standard deviation; MAE as eq. (4)."])]


def _render(sections):
    """Holoviews objects rendered to Bokeh once, to count the figures."""
    import holoviews as hv

    rendered = []
    for heading, content in sections:
        items = content if isinstance(content, list) else [content]
        rendered.append((heading, [hv.render(c, backend="bokeh")
                                   if isinstance(c, hv.core.Dimensioned) else c for c in items]))
    models = [c for _, items in rendered for c in items if hasattr(c, "references")]
    return rendered, _count_plots(models)


def _build_report(path, *, identity, test, pred, agg, stats, summary_df, n, n_total, timings,
                  reused, predictions_path):
    from .. import plots

    sections = [
        ("Provenance", _provenance_text(identity, pred, test, n, n_total, timings, reused,
                                        predictions_path)),
        ("Summary: Sect. 4 headline numbers, pi-DOC vs baselines vs the paper",
         [summary_df, _summary_note(summary_df)]),
        _fig4_section(test, pred, stats),
        *_fig5_6_sections(stats, agg),
        _fig7_section(test, pred, stats),
        *_fig8_9_sections(stats),
    ]
    rendered, n_plots = _render(sections)
    title = f"pi-DOC evaluation report: {identity['id']} on {test.attrs.get('split', 'test')} set"
    written = plots.html_report(rendered, path, title=title)
    return written, n_plots
