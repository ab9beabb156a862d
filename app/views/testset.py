"""The Test-set tab: the paper's Figs 5, 6, 8, 9 and Table 2 for stored test-set predictions.

Reads the aggregates that ``pidoc evaluate`` writes beside its predictions (per-map totals, ages
and distances, pixel histograms grouped by true distance and 1-Gyr age bin), so filtering by
distance and age costs no inference and no map reading. The statistics are those of
:mod:`pidoc_core.evaluation`, binned as the report bins them (0.05 dex totals, 1-Gyr ages, 2-kpc
distance PDFs). The figures are Bokeh figures drawn once per session
(:class:`app.views.figures.ResidualFigure`, :class:`~app.views.figures.DistancePdfFigure`, the
live twins of the report's :mod:`pidoc_core.plots` builders); a filter change recomputes the
statistics and patches their data sources (80–160 ms on the server here, against 2–3 s for
drawing new HoloViews figures).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.layouts import column, row

from pidoc_core.evaluation import (PAPER_RESULTS, bin_summary, distance_pdfs, distance_table,
                                   residual_statistics)
from pidoc_core.exploration import testset_pixel_statistics
from pidoc_core.plots import PALETTE

from .figures import DistancePdfFigure, ResidualFigure

__all__ = ["TestSetView", "BUSY_TEXT", "DISTANCE_BIN_KPC"]

#: Width of the distance-PDF bins, kpc (as the evaluation report).
DISTANCE_BIN_KPC = 2.0
_TABLE2_COLUMNS = {"count": "maps", "mean": "mean (kpc)", "std": "std (kpc)", "mae": "MAE (kpc)",
                   "bias": "bias (kpc)", "relative_mae": "MAE / true distance"}
#: The residual figures: statistics key -> (title, quantity, units, residual units, band).
_FIGURES = {
    "mass": ("Field mass (Fig. 6)", "log10 field mass", "Msun", "dex", "std"),
    "ml": ("Field M/L_V (Fig. 6)", "log10 field M/L_V", "Msun/Lsun", "dex", "std"),
    "pixels": ("Pixels (Fig. 5)", "log10 M per pixel", "Msun", "dex", "std"),
    "age": ("Age (Fig. 8)", "age", "Gyr", "Gyr", "mae"),
}
_NO_MATCH = "No test map matches this filter."
#: The header while a filter is being applied (the tab's busy indicator).
BUSY_TEXT = "⏳ **Updating the figures and tables for the new filter…**"


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
        self.has_age_distance = "age_pred" in aggregates and "distance_pred" in aggregates
        self.figures = {key: ResidualFigure(title=title, label=label, units=units,
                                            residual_units=runits, statistic=band,
                                            size=250 if key in ("mass", "ml") else 260)
                        for key, (title, label, units, runits, band) in _FIGURES.items()
                        if key != "age" or self.has_age_distance}
        if self.has_age_distance:
            self.figures["distance_pdf"] = DistancePdfFigure(distances, palette=PALETTE)
        #: The page's panes (alert, header, headline, table2, body), made by :meth:`panel`.
        self.panes = None

    # ------------------------------------------------------------------ selections
    def samples(self, distances=None, times=None) -> np.ndarray:
        """Indices of the maps whose true distance and age pass the filter."""
        distances = self.distances if distances is None else distances
        times = self.times if times is None else times
        agg = self.agg
        keep = np.isin(agg.distance.values, distances) & (agg.time.values >= times[0]) & (
            agg.time.values <= times[1])
        return np.flatnonzero(keep)

    # ------------------------------------------------------------------ statistics
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

    def statistics(self, model=None, distances=None, times=None) -> dict | None:
        """Everything the tab shows for one filter (default: the current one).

        Returns
        -------
        dict or None
            ``samples`` (indices of the maps), the residual statistics ``mass``, ``ml`` (Fig. 6),
            ``pixels`` (Fig. 5) and, with age/distance predictions, ``age`` (Fig. 8) and
            ``distance_pdf`` (Fig. 9, :func:`~pidoc_core.evaluation.distance_pdfs` in 2-kpc
            bins), and ``tables`` (:meth:`tables`); None when no map passes the filter.
        """
        model = model or self.model
        distances = self.distances if distances is None else distances
        times = self.times if times is None else times
        samples = self.samples(distances, times)
        if samples.size == 0:
            return None
        agg = self.agg
        out = {"samples": samples}
        out["mass"], out["ml"] = self.total_statistics(model, samples)
        out["tables"] = self.tables(model, samples, totals=(out["mass"], out["ml"]))
        out["pixels"] = testset_pixel_statistics(agg, model=model, distances=distances,
                                                 times=times)
        if self.has_age_distance:
            out["age"] = residual_statistics(agg.time.values[samples],
                                             agg.age_pred.values[samples], width=1.0,
                                             kind="linear", quantity="age", units="Gyr")
            out["distance_pdf"] = distance_pdfs(agg.distance.values[samples],
                                                agg.distance_pred.values[samples],
                                                width=DISTANCE_BIN_KPC)
        return out

    def tables(self, model, samples, *, totals=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The headline numbers and Table 2 of the filtered maps, beside the paper's.

        ``totals``: the :meth:`total_statistics` of these maps, when already computed.

        Returns
        -------
        headline : pandas.DataFrame
            Field mass and M/L eq. (2) (%) and age eq. (4) (Gyr), each the mean over bins.
        table2 : pandas.DataFrame or None
            Per true distance (kpc): maps, mean, std, MAE, bias (kpc) and MAE / true distance;
            None when the evaluation has no distance predictions.
        """
        agg = self.agg
        rows = []
        mass, ml = totals if totals is not None else self.total_statistics(model, samples)
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
        if "distance_pred" not in agg:
            return headline, None
        table = distance_table(agg.distance.values[samples],
                               agg.distance_pred.values[samples]).to_dataframe()
        for d in table.index:
            for stat in ("mean", "std", "mae"):
                key = f"distance_{stat}_{d:g}"
                if key in PAPER_RESULTS:
                    table.loc[d, f"paper {_TABLE2_COLUMNS[stat]}"] = PAPER_RESULTS[key]["value"]
        table = table.rename(columns=_TABLE2_COLUMNS)
        table.index.name = "true distance (kpc)"
        return headline, table.round(2)

    def header(self, stats) -> str:
        """The line above the figures: how many maps, of which runs, and how to read them."""
        runs = ", ".join(sorted(set(map(str, self.agg.run.values))))
        return (f"**{stats['samples'].size:,} test maps** of {runs}. r = predicted − true; "
                "**μ** (left of each histogram): mean r and its ±1σ band (±MAE for ages) per bin "
                "of the predicted value; **ξ** (below): per bin of the true value. Predicted "
                "ages below 0 Gyr are unphysical extrapolations.")

    # ------------------------------------------------------------------ the page
    def show(self, stats) -> None:
        """Draw one filter's :meth:`statistics` (None: no map matches) into the figures."""
        p = self.panes
        p["alert"].visible, p["body"].visible = stats is None, stats is not None
        if stats is None:
            return
        for key, fig in self.figures.items():
            fig.show(stats[key])
        p["header"].object = self.header(stats)
        p["headline"].object, p["table2"].object = stats["tables"]
        p["table2"].visible = stats["tables"][1] is not None

    def panel(self) -> pn.viewable.Viewable:
        """The tab's layout; while a filter is applied the header above the figures says so
        (:data:`BUSY_TEXT`)."""
        controls = pn.Param(self, parameters=["distances", "times", "model"], show_name=False,
                            widgets={"distances": pn.widgets.MultiChoice}, width=250)
        f = {key: fig.layout if key != "distance_pdf" else fig.figure
             for key, fig in self.figures.items()}
        lower = [f["pixels"], f["age"]] if self.has_age_distance else [f["pixels"]]
        # one Bokeh root for all figures (one layout pass in the browser), rows no wider than
        # a 1280-px screen leaves
        figures = column(row(f["mass"], f["ml"]), row(*lower),
                         *([f["distance_pdf"]] if self.has_age_distance else []))
        p = self.panes = {
            "alert": pn.pane.Alert(_NO_MATCH, alert_type="warning", visible=False),
            "header": pn.pane.Markdown("", width=900, height=45),  # fixed: no re-layout
            "headline": pn.pane.DataFrame(None, index=False, width=600),
            "table2": pn.pane.DataFrame(None, width=900),
        }
        p["body"] = pn.Column(p["header"], pn.pane.Bokeh(figures),
                              "#### Numbers of the filtered maps (Table 2)", p["headline"],
                              p["table2"])
        self.show(self.statistics())
        for widget in controls.layout:
            widget.width = 230  # inside the column (Panel's default is 300)
        return pn.Row(pn.Column("### Filter the test set", controls, width=260),
                      pn.Column(p["alert"], p["body"]))

    @param.depends("distances", "times", "model", watch=True)
    def _apply(self):
        """A filter changed: say so in the header, then redraw on the server's next tick (so that
        the message reaches the browser first; at once without a server).

        The busy indicator is text in a pane of fixed size: Panel's ``loading`` (a CSS class on
        a layout) made BokehJS re-lay out every plot of every tab, ~0.5 s a filter."""
        if self.panes is None:
            return
        self.panes["header"].object = BUSY_TEXT
        pn.state.execute(self._redraw, schedule=True)

    def _redraw(self):
        """Recompute the statistics of the current filter and patch the figures in one message
        (the header then describes the filtered maps, or says why it could not)."""
        try:
            stats = self.statistics()
        except Exception as exc:  # never leave "updating" on the page: say what went wrong
            self.panes["header"].object = (f"**Could not apply this filter**: "
                                           f"{type(exc).__name__}: {exc}")
            raise
        with pn.io.hold():
            self.show(stats)
