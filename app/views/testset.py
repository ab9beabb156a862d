"""The Test-set tab: the paper's Figs 5, 6, 8, 9 and Table 2 for stored test-set predictions.

Reads the aggregates that ``pidoc evaluate`` writes beside its predictions (per-map totals, ages
and distances, pixel histograms grouped by true distance and 1-Gyr age bin), so filtering by
distance and age costs no inference and no map reading. Every figure is a
:mod:`pidoc_core.plots` builder on :mod:`pidoc_core.evaluation` statistics, binned as the report
bins them (0.05 dex totals, 1-Gyr ages, 2-kpc distance PDFs).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from pidoc_core import plots
from pidoc_core.evaluation import (PAPER_RESULTS, bin_summary, distance_pdfs, distance_table,
                                   residual_statistics)
from pidoc_core.exploration import testset_pixel_statistics

__all__ = ["TestSetView", "DISTANCE_BIN_KPC"]

#: Width of the distance-PDF bins, kpc (as the evaluation report).
DISTANCE_BIN_KPC = 2.0
_TABLE2_COLUMNS = {"count": "maps", "mean": "mean (kpc)", "std": "std (kpc)", "mae": "MAE (kpc)",
                   "bias": "bias (kpc)", "relative_mae": "MAE / true distance"}


class TestSetView(param.Parameterized):
    """Filters and aggregate figures over one evaluation's aggregates.

    Parameters
    ----------
    aggregates : xarray.Dataset
        :func:`pidoc_core.report.open_aggregates` of an evaluation (loaded in memory; shared
        read-only between sessions).
    """

    distances = param.ListSelector(default=[], objects=[], label="True distance (kpc)")
    times = param.Range(default=(0.0, 14.0), bounds=(0.0, 14.0), step=0.5, label="Age range (Gyr)")
    model = param.Selector(objects=[], label="Mass model")

    __test__ = False  # a view, not a pytest test class

    def __init__(self, aggregates):
        from pidoc_core.report import MODEL_LABELS  # the report's names of the models

        super().__init__()
        self.agg = aggregates
        distances = [float(d) for d in aggregates.distance_group.values]
        self.param.distances.objects = distances
        t = aggregates.time.values
        span = (float(np.floor(t.min())), float(np.ceil(t.max())))
        self.param.times.bounds = span
        self.param.model.objects = {MODEL_LABELS.get(str(m), str(m)): str(m)
                                    for m in aggregates.model.values}
        with param.parameterized.discard_events(self):
            self.distances, self.times = distances, span
            self.model = str(aggregates.model.values[0])

    # ------------------------------------------------------------------ selections
    def samples(self, distances=None, times=None) -> np.ndarray:
        """Indices of the maps whose true distance and age pass the filter."""
        distances = self.distances if distances is None else distances
        times = self.times if times is None else times
        agg = self.agg
        keep = np.isin(agg.distance.values, distances) & (agg.time.values >= times[0]) & (
            agg.time.values <= times[1])
        return np.flatnonzero(keep)

    # ------------------------------------------------------------------ figures
    def pixel_figure(self, model=None, distances=None, times=None):
        """Fig. 5 (:func:`pidoc_core.plots.residual_panel`) of the filtered pixels."""
        stats = testset_pixel_statistics(self.agg, model=model or self.model,
                                         distances=self.distances if distances is None
                                         else distances, times=times or self.times)
        return plots.residual_panel(stats, label="log10 M per pixel", units="Msun", size=260,
                                    side=100, title="Pixels (Fig. 5)")

    def total_statistics(self, model, samples):
        """Residual statistics of log10 field mass and M/L_V, as the report bins them."""
        agg, m = self.agg, list(self.agg.model.values).index(model)
        out = []
        for true, pred, quantity, units in (
                (agg.mass_true.values, agg.mass_pred.values[m], "log10 field mass", "log10(Msun)"),
                (agg.ml_true.values, agg.ml_pred.values[m], "log10 field M/L_V",
                 "log10(Msun/Lsun)")):
            t, p = true[samples], pred[samples]
            ok = (t > 0) & (p > 0)
            out.append(residual_statistics(np.log10(t[ok]), np.log10(p[ok]), width=0.05,
                                           quantity=quantity, units=units))
        return out

    def totals_figure(self, model, samples):
        """Fig. 6 (:func:`pidoc_core.plots.totals_panels`): field mass and M/L, own axes."""
        return plots.totals_panels(*self.total_statistics(model, samples), size=250, side=100)

    def age_distance_figure(self, samples):
        """Fig. 8 (age, :func:`pidoc_core.plots.residual_panel`) and Fig. 9 (distance PDFs in
        2-kpc bins, :func:`pidoc_core.plots.distance_pdf_plot`)."""
        agg = self.agg
        age = residual_statistics(agg.time.values[samples], agg.age_pred.values[samples],
                                  width=1.0, kind="linear", quantity="age", units="Gyr")
        pdfs = distance_pdfs(agg.distance.values[samples], agg.distance_pred.values[samples],
                             width=DISTANCE_BIN_KPC)
        return (plots.residual_panel(age, statistic="mae", size=260, side=100, title="Age (Fig. 8)"),
                plots.distance_pdf_plot(pdfs, width=480, height=330))

    def tables(self, model, samples):
        """Table 2 and the headline numbers of the filtered maps, beside the paper's."""
        agg = self.agg
        rows = []
        mass, ml = self.total_statistics(model, samples)
        for label, stats, key in (("field mass: eq. (2) mean over bins (%)", mass,
                                   "total_mass_mpe_mean"),
                                  ("field M/L: eq. (2) mean over bins (%)", ml, "total_ml_mpe_mean")):
            rows.append((label, bin_summary(stats, statistic="mpe")["mean"],
                         PAPER_RESULTS[key]["value"]))
        if "age_pred" in agg:
            stats = residual_statistics(agg.time.values[samples], agg.age_pred.values[samples],
                                        kind="linear", width=1.0)
            # bins of the predicted age, like pidoc_core.evaluation.summary and the report
            rows.append(("age MAE: eq. (4) mean over bins (Gyr)",
                         bin_summary(stats, statistic="mae")["mean"],
                         PAPER_RESULTS["age_mae_mean"]["value"]))
        headline = pd.DataFrame(rows, columns=["quantity", "this model (filtered)", "paper"]).round(2)
        panes = [pn.pane.DataFrame(headline, index=False, width=600)]
        if "distance_pred" in agg:
            table = distance_table(agg.distance.values[samples],
                                   agg.distance_pred.values[samples]).to_dataframe()
            for d in table.index:
                for stat in ("mean", "std", "mae"):
                    key = f"distance_{stat}_{d:g}"
                    if key in PAPER_RESULTS:
                        table.loc[d, f"paper {_TABLE2_COLUMNS[stat]}"] = PAPER_RESULTS[key]["value"]
            table = table.rename(columns=_TABLE2_COLUMNS)
            table.index.name = "true distance (kpc)"
            panes.append(pn.pane.DataFrame(table.round(2), width=900))
        return pn.Column("#### Numbers of the filtered maps (Table 2)", *panes)

    @param.depends("distances", "times", "model")
    def figures(self, distances=None, times=None, model=None):
        """All figures for one filter setting (default: the current one)."""
        distances = self.distances if distances is None else distances
        times, model = times or self.times, model or self.model
        samples = self.samples(distances, times)
        if samples.size == 0:
            return pn.pane.Alert("No test map matches this filter.", alert_type="warning")
        # rows no wider than a 1280-px screen leaves: Panel squeezes wider rows, which
        # collapses Bokeh grid plots
        items = [pn.pane.Markdown(f"**{samples.size:,} test maps** of "
                                  f"{', '.join(sorted(set(map(str, self.agg.run.values))))}. "
                                  "r = predicted − true; **μ** (left of each histogram): mean r "
                                  "and its ±1σ band (±MAE for ages) per bin of the predicted "
                                  "value; **ξ** (below): per bin of the true value. Predicted "
                                  "ages below 0 Gyr are unphysical extrapolations.",
                                  width=900),
                 _pane(self.totals_figure(model, samples))]
        pixels = _pane(self.pixel_figure(model, distances, times))
        if "age_pred" in self.agg:
            age, dist = self.age_distance_figure(samples)
            items += [pn.Row(pixels, _pane(age)), _pane(dist), self.tables(model, samples)]
        else:
            items += [pixels, self.tables(model, samples)]
        return pn.Column(*items)

    def panel(self) -> pn.viewable.Viewable:
        """The tab's layout; a busy indicator covers the figures while a filter is applied."""
        controls = pn.Param(self, parameters=["distances", "times", "model"], show_name=False,
                            widgets={"distances": pn.widgets.MultiChoice}, width=250)
        for widget in controls.layout:
            widget.width = 230  # inside the column (Panel's default is 300)
        return pn.Row(pn.Column("### Filter the test set", controls, width=260),
                      pn.panel(self.figures, loading_indicator=True))



def _pane(obj):
    """One figure as Bokeh models rendered here, as the report renders them.

    A HoloViews layout becomes one Panel row per grid row of its figures (they keep their shared
    ranges): a Bokeh ``GridPlot`` inside this tab's Panel layout drew empty frames in Chromium.
    """
    from bokeh.models import GridPlot

    model = hv.render(obj, backend="bokeh")
    if not isinstance(model, GridPlot):
        return pn.pane.Bokeh(model)
    rows: dict[int, dict[int, object]] = {}
    for fig, row, col in model.children:
        fig.toolbar_location = None
        rows.setdefault(row, {})[col] = fig
    ncols = 1 + max(c for r in rows.values() for c in r)
    widths = {c: max(r[c].width for r in rows.values() if c in r) for c in range(ncols)}
    return pn.Column(*(pn.Row(*(pn.pane.Bokeh(r[c]) if c in r else pn.Spacer(width=widths[c])
                                for c in range(ncols))) for _, r in sorted(rows.items())))
