"""The Test-set tab: the paper's Figs 5-9 and Table 2 for stored test-set predictions.

Reads the aggregates that ``pidoc evaluate`` writes beside its predictions (per-map totals, ages
and distances, profiles, pixel histograms grouped by true distance and 1-Gyr age bin), so filtering
by distance and time range costs no inference and no map reading.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import numpy as np
import pandas as pd
import panel as pn

from pidoc_core.evaluation import (
    PAPER_RESULTS,
    bin_summary,
    distance_table,
    residual_statistics,
)

__all__ = ["TestSetView"]


class TestSetView:
    """Filters and aggregate figures over one evaluation's aggregates.

    Parameters
    ----------
    aggregates : xarray.Dataset
        :func:`pidoc_core.report.open_aggregates` of an evaluation (loaded in memory; shared
        read-only between sessions).
    """

    def __init__(self, aggregates):
        self.agg = aggregates
        distances = [float(d) for d in aggregates.distance_group.values]
        self.distances = pn.widgets.MultiChoice(
            label="True distance (kpc)", options=distances, value=distances)
        t = aggregates.time.values
        self.times = pn.widgets.RangeSlider(
            label="Age range (Gyr)", start=float(np.floor(t.min())), end=float(np.ceil(t.max())),
            value=(float(np.floor(t.min())), float(np.ceil(t.max()))), step=0.5)
        self.model = pn.widgets.Select(label="Mass model", options=list(aggregates.model.values))
        self.view = pn.bind(self.figures, self.distances, self.times, self.model)

    # ------------------------------------------------------------------ selections
    def _samples(self, distances, times):
        agg = self.agg
        keep = np.isin(agg.distance.values, distances) & (agg.time.values >= times[0]) & (
            agg.time.values <= times[1])
        return np.flatnonzero(keep)

    def _groups(self, distances, times):
        agg = self.agg
        dmask = np.isin(agg.distance_group.values, distances)
        tmask = (agg.time_upper.values > times[0]) & (agg.time_lower.values < times[1])
        return dmask, tmask

    # ------------------------------------------------------------------ figures
    def pixel_figure(self, model, distances, times):
        """Fig. 5: true vs predicted pixel histogram with mean residual per bin (mu and xi)."""
        agg = self.agg.sel(model=model)
        dmask, tmask = self._groups(distances, times)
        hist = agg.pixel_histogram.values[np.ix_(dmask, tmask)].sum(axis=(0, 1))
        true_c, pred_c = agg.true_bin.values, agg.pred_bin.values
        img = hv.Image((true_c, pred_c, np.log10(np.where(hist.T > 0, hist.T, np.nan))),
                       kdims=["true log10 M (Msun)", "predicted log10 M (Msun)"],
                       vdims="log10 pixels").opts(cmap="Greys", width=380, height=360,
                                                  colorbar=True, title="Pixels (Fig. 5)")
        diag = hv.Curve([(true_c[0], true_c[0]), (true_c[-1], true_c[-1])]).opts(color="crimson")
        lines = []
        for side, dim, color in (("mu", pred_c, "steelblue"), ("xi", true_c, "darkorange")):
            count = agg[f"{side}_count"].values[np.ix_(dmask, tmask)].sum(axis=(0, 1))
            total = agg[f"{side}_sum"].values[np.ix_(dmask, tmask)].sum(axis=(0, 1))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, total / count, np.nan)
            lines.append(hv.Curve((dim, mean), kdims="log10 M (Msun)",
                                  vdims="mean residual (dex)", label="μ | predicted" if side == "mu" else "ξ | true")
                         .opts(color=color, line_width=2))
        resid = hv.Overlay(lines + [hv.HLine(0).opts(color="grey", line_dash="dashed")]).opts(
            width=380, height=360, legend_position="top_left", title="Mean residual per bin")
        return (img * diag) + resid

    def totals_figure(self, model, samples):
        """Fig. 6: predicted vs true field mass and M/L."""
        agg = self.agg
        true_m = np.log10(agg.mass_true.values[samples])
        pred_m = np.log10(agg.mass_pred.sel(model=model).values[samples])
        true_ml = agg.ml_true.values[samples]
        pred_ml = agg.ml_pred.sel(model=model).values[samples]
        lo, hi = np.nanmin(true_m), np.nanmax(true_m)
        mass = (hv.Scatter((true_m, pred_m), kdims="true log10 M_FoV (Msun)",
                           vdims="predicted log10 M_FoV")
                .opts(size=3, alpha=0.4, width=330, height=320, title="Field mass (Fig. 6)")
                * hv.Curve([(lo, lo), (hi, hi)]).opts(color="crimson"))
        lo, hi = np.nanmin(true_ml), np.nanmax(true_ml)
        ml = (hv.Scatter((true_ml, pred_ml), kdims="true M/L_V", vdims="predicted M/L_V")
              .opts(size=3, alpha=0.4, width=330, height=320, title="Field M/L (Fig. 6)")
              * hv.Curve([(lo, lo), (hi, hi)]).opts(color="crimson"))
        return mass + ml

    def age_distance_figure(self, samples):
        """Fig. 8 (age) and Fig. 9 (distance PDFs) for π-DOC's age/distance network."""
        agg = self.agg
        if "age_pred" not in agg:
            return pn.pane.Markdown("No age/distance network in this evaluation.")
        age_t, age_p = agg.time.values[samples], agg.age_pred.values[samples]
        age = (hv.Bivariate((age_t, age_p), kdims=["true age (Gyr)", "predicted age (Gyr)"])
               .opts(filled=True, cmap="Blues", width=330, height=320, title="Age (Fig. 8)")
               * hv.Curve([(0, 0), (14, 14)]).opts(color="crimson"))
        d_t, d_p = agg.distance.values[samples], agg.distance_pred.values[samples]
        pdfs = []
        for d in np.unique(d_t):
            sel = d_p[d_t == d]
            freq, edges = np.histogram(sel, bins=np.arange(0, 121, 3), density=True)
            pdfs.append(hv.Histogram((edges, freq), kdims="predicted distance (kpc)",
                                     vdims="PDF", label=f"{d:g} kpc").opts(alpha=0.5))
            pdfs.append(hv.VLine(float(d)).opts(color="grey", line_dash="dotted"))
        dist = hv.Overlay(pdfs).opts(width=380, height=320, title="Distance (Fig. 9)",
                                     legend_position="top_right")
        return age + dist

    def tables(self, model, samples):
        """Table 2 and the headline numbers of the filtered maps, beside the paper's."""
        agg = self.agg
        rows = []
        mt, mp = agg.mass_true.values[samples], agg.mass_pred.sel(model=model).values[samples]
        lt, lp = agg.ml_true.values[samples], agg.ml_pred.sel(model=model).values[samples]
        # the paper's statistic: eq. (2) per bin of the predicted value, averaged over bins
        for label, true, pred, key in (("total mass, eq. (2) mean over bins (%)", mt, mp,
                                        "total_mass_mpe_mean"),
                                       ("total M/L, eq. (2) mean over bins (%)", lt, lp,
                                        "total_ml_mpe_mean")):
            ok = (true > 0) & (pred > 0)
            stats = residual_statistics(np.log10(true[ok]), np.log10(pred[ok]), width=0.05)
            rows.append((label, bin_summary(stats, statistic="mpe")["mean"],
                         PAPER_RESULTS[key]["value"]))
        if "age_pred" in agg:
            stats = residual_statistics(agg.time.values[samples], agg.age_pred.values[samples],
                                        kind="linear", width=1.0)
            # bins of the predicted age, like pidoc_core.evaluation.summary and the report
            rows.append(("age MAE, eq. (4) mean over bins (Gyr)",
                         bin_summary(stats, statistic="mae")["mean"],
                         PAPER_RESULTS["age_mae_mean"]["value"]))
        headline = pd.DataFrame(rows, columns=["quantity", "ours (filtered)", "paper"]).round(2)
        panes = [pn.pane.DataFrame(headline, index=False, width=520)]
        if "distance_pred" in agg:
            table = distance_table(agg.distance.values[samples],
                                   agg.distance_pred.values[samples]).to_dataframe()
            for d in table.index:
                for stat in ("mean", "std", "mae"):
                    key = f"distance_{stat}_{d:g}"
                    if key in PAPER_RESULTS:
                        table.loc[d, f"paper {stat}"] = PAPER_RESULTS[key]["value"]
            panes.append(pn.pane.DataFrame(table.round(2), width=620))
        return pn.Column("#### Numbers of the filtered maps (Table 2)", *panes)

    def figures(self, distances, times, model):
        """All figures for one filter setting."""
        samples = self._samples(distances, times)
        if samples.size == 0:
            return pn.pane.Alert("No test map matches this filter.", alert_type="warning")
        return pn.Column(
            pn.pane.Markdown(f"**{samples.size:,} test maps** of "
                             f"{', '.join(sorted(set(map(str, self.agg.run.values))))}"),
            pn.pane.HoloViews(self.pixel_figure(model, distances, times), backend="bokeh"),
            pn.pane.HoloViews(self.totals_figure(model, samples), backend="bokeh"),
            pn.pane.HoloViews(self.age_distance_figure(samples), backend="bokeh")
            if "age_pred" in self.agg else pn.pane.Markdown(""),
            self.tables(model, samples),
        )

    def panel(self):
        """The tab's layout."""
        return pn.Row(pn.Column("### Filter the test set", self.distances, self.times, self.model,
                                width=300), self.view)
