"""The Explore tab: move the observing conditions, watch π-DOC's predictions and errors update.

Each session owns one :class:`ExploreView` (its widgets and Bokeh data sources); the model and the
snapshot sources are shared read-only. A move runs :func:`pidoc_core.exploration.explore` once and
patches every data source inside one ``pn.io.hold()`` so the browser repaints once.
"""

from __future__ import annotations

import functools
import html
import math

import numpy as np
import panel as pn
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Range1d, Span
from bokeh.plotting import figure

from pidoc_core.evaluation import radial_edges
from pidoc_core.exploration import PIXEL_MASS_EDGES, explore
from pidoc_core.imager import ObservationError, ObservationSetup

__all__ = ["ExploreView"]

_N = 160
_HALF = 20.0
_MASS_RANGE = (-2.5, 1.5)
_FLUX_RANGE = (-7.5, -2.5)
_TOOLS = "pan,wheel_zoom,box_zoom,reset,hover,save"


def _map_figure(title, mapper, label, *, width=300, height=270):
    source = ColumnDataSource({"image": [np.zeros((_N, _N), dtype=np.float32)]})
    fig = figure(title=title, x_range=Range1d(-_HALF, _HALF), y_range=Range1d(-_HALF, _HALF),
                 width=width, height=height, tools=_TOOLS, tooltips=[(label, "@image{0.00}")],
                 x_axis_label="x (arcsec)", y_axis_label="y (arcsec)", toolbar_location="above")
    fig.image(image="image", x=-_HALF, y=-_HALF, dw=2 * _HALF, dh=2 * _HALF, color_mapper=mapper,
              source=source)
    fig.add_layout(ColorBar(color_mapper=mapper, title=label, width=10), "right")
    return fig, source


def _decades(*arrays):
    """(10^floor(log10 min), 10^ceil(log10 max)) of the positive finite values, or None.

    >>> _decades([0.02, 3.0], [np.nan, 0.5])
    (0.01, 10.0)
    """
    values = np.concatenate([np.ravel(a) for a in arrays]).astype(float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    return (float(10.0 ** np.floor(np.log10(values.min()))),
            float(10.0 ** np.ceil(np.log10(values.max()))))


class ExploreView:
    """Widgets, plots and the update callback of one session's Explore tab.

    Parameters
    ----------
    sources : dict
        Run name -> object with ``.snapshot(time_gyr)`` and ``.times`` (Gyr); shared.
    model : pidoc_core.model.PiDOC
        Networks with a mass network; shared, thread-safe prediction.
    upsilon : float
        Constant-M/L baseline, Msun/Lsun (the training set's mean M/L_V).
    snapshot_cache : callable, optional
        ``(run, time) -> Snapshot`` returning the same object for the same arguments (the server
        shares one across sessions); default a per-view LRU cache of ``sources[run].snapshot``.
    grid : dict, optional
        The model's training conditions (see :func:`pidoc_core.exploration.training_grid_flags`).
    """

    def __init__(self, sources, model, *, upsilon, snapshot_cache=None, grid=None):
        self.sources = sources
        self.model = model
        self.upsilon = float(upsilon)
        self.grid = grid
        # snapshots must be reused: the imager caches each one's density centre (~60 ms)
        self._snapshot = snapshot_cache or functools.lru_cache(maxsize=8)(
            lambda run, t: sources[run].snapshot(t))
        names = list(sources)
        times = np.asarray(sources[names[0]].times, dtype=float)
        self.run = pn.widgets.Select(label="Run", options=names,
                                     value=next((n for n in names if n.startswith("MW15 ")), names[0]))
        self.time = pn.widgets.DiscreteSlider(label="Snapshot time (Gyr)",
                                              options=[round(float(t), 3) for t in times],
                                              value=round(float(times[np.argmin(abs(times - 12))]), 3))
        self.distance = pn.widgets.FloatSlider(label="Distance (kpc)", start=5, end=150, step=1,
                                               value=15)
        self.psf = pn.widgets.FloatSlider(label="PSF FWHM (arcsec)", start=0.3, end=2.5, step=0.05,
                                          value=1.0)
        self.shift_x = pn.widgets.FloatSlider(label="Centre shift x (arcsec)", start=-8, end=8,
                                              step=0.25, value=0.0)
        self.shift_y = pn.widgets.FloatSlider(label="Centre shift y (arcsec)", start=-8, end=8,
                                              step=0.25, value=0.0)
        self.rotation = pn.widgets.RadioButtonGroup(label="Rotation (deg)",
                                                    options=["0", "90", "180", "270", "free"],
                                                    value="0", button_type="light")
        self.angle = pn.widgets.FloatSlider(label="Free angle (deg)", start=0, end=360, step=1,
                                            value=0, disabled=True)
        self.widgets = (self.run, self.time, self.distance, self.psf, self.shift_x, self.shift_y,
                        self.rotation, self.angle)
        self._build_plots()
        # fixed sizes: text changes then repaint in place instead of re-laying out the page
        self.status = pn.pane.Alert("", alert_type="success", margin=(0, 5), height=90,
                                    sizing_mode="stretch_width")
        self.numbers = pn.pane.HTML("", width=420, height=170)
        for widget in self.widgets:
            # Panel waits 50 ms (Syncable._debounce) to batch browser events before acting on
            # them; a move should start at once (events arriving meanwhile are still merged)
            widget._debounce = 0
            widget.param.watch(self.update, "value")
        self.last = None
        self.update()

    # ------------------------------------------------------------------------------- plots
    def _build_plots(self):
        flux_mapper = LinearColorMapper(palette="Inferno256", low=_FLUX_RANGE[0], high=_FLUX_RANGE[1])
        mass_mapper = LinearColorMapper(palette="Viridis256", low=_MASS_RANGE[0], high=_MASS_RANGE[1])
        resid_mapper = LinearColorMapper(palette="RdBu11", low=-1.0, high=1.0)
        self.flux_fig, self.flux_src = _map_figure("Mock V-band observation", flux_mapper,
                                                   "log F (Lsun/kpc²)")
        self.true_fig, self.true_src = _map_figure("True mass map", mass_mapper, "log M (Msun)")
        self.pred_fig, self.pred_src = _map_figure("π-DOC mass map", mass_mapper, "log M (Msun)")
        self.resid_fig, self.resid_src = _map_figure("Residual: predicted − true", resid_mapper,
                                                     "dex")
        for fig in (self.true_fig, self.pred_fig, self.resid_fig):
            fig.x_range = self.flux_fig.x_range
            fig.y_range = self.flux_fig.y_range

        # 2D histogram of pixels with the mu / xi side panels (the paper's Fig. 5, one map)
        lo, hi = float(PIXEL_MASS_EDGES[0]), float(PIXEL_MASS_EDGES[-1])
        nb = len(PIXEL_MASS_EDGES) - 1
        count_mapper = LinearColorMapper(palette="Greys256", low=0, high=3, nan_color=(0, 0, 0, 0))
        count_mapper.palette = list(reversed(count_mapper.palette))
        self.hist_src = ColumnDataSource({"image": [np.zeros((nb, nb))]})
        hist = figure(title="Pixels: predicted vs true", width=300, height=300,
                      x_range=Range1d(lo, hi), y_range=Range1d(lo, hi), tools=_TOOLS,
                      x_axis_label="true log M (Msun)", y_axis_label="predicted log M (Msun)",
                      tooltips=[("log10 pixels", "@image{0.0}")], toolbar_location=None)
        hist.image(image="image", x=lo, y=lo, dw=hi - lo, dh=hi - lo, color_mapper=count_mapper,
                   source=self.hist_src)
        hist.line([lo, hi], [lo, hi], color="crimson", line_width=1.5)
        centres = 0.5 * (PIXEL_MASS_EDGES[1:] + PIXEL_MASS_EDGES[:-1])
        empty = {"c": centres, "mean": np.full(nb, np.nan), "lo": np.full(nb, np.nan),
                 "hi": np.full(nb, np.nan)}
        self.mu_src = ColumnDataSource(dict(empty))
        self.xi_src = ColumnDataSource(dict(empty))
        mu = figure(title="μ = P(r | predicted)", width=160, height=300, y_range=hist.y_range,
                    x_range=Range1d(-1, 1), x_axis_label="r (dex)", toolbar_location=None,
                    tools="")
        mu.harea(y="c", x1="lo", x2="hi", source=self.mu_src, fill_alpha=0.3, color="steelblue")
        mu.line(y="c", x="mean", source=self.mu_src, color="steelblue", line_width=2)
        mu.add_layout(Span(location=0, dimension="height", line_dash="dashed"))
        xi = figure(title="ξ = P(r | true)", width=300, height=160, x_range=hist.x_range,
                    y_range=Range1d(-1, 1), y_axis_label="r (dex)", toolbar_location=None, tools="")
        xi.varea(x="c", y1="lo", y2="hi", source=self.xi_src, fill_alpha=0.3, color="darkorange")
        xi.line(x="c", y="mean", source=self.xi_src, color="darkorange", line_width=2)
        xi.add_layout(Span(location=0, dimension="width", line_dash="dashed"))
        self.hist_figs = (hist, mu, xi)

        # radial profiles of mass and M/L with ratio panels (the paper's Fig. 7)
        edges = radial_edges()
        r = 0.5 * (edges[1:] + edges[:-1])
        nan = np.full(r.size, np.nan)
        self.prof_src = ColumnDataSource({"r": r, "m_true": nan, "m_pred": nan, "m_base": nan,
                                          "ml_true": nan, "ml_pred": nan, "ml_base": nan,
                                          "m_ratio": nan, "ml_ratio": nan, "mb_ratio": nan,
                                          "mlb_ratio": nan})
        self.profile_fig = self._profile_panel("Mass profile", "mass per pixel (Msun)", "m", r)
        self.ml_fig = self._profile_panel("M/L profile", "M/L_V (Msun/Lsun)", "ml", r)

    def _profile_panel(self, title, label, key, r):
        # whole decades, moved by update() only when the data leave them: an auto-ranged axis
        # would re-lay out the plot on every move
        top = figure(title=title, width=330, height=220, y_axis_type="log", tools=_TOOLS,
                     x_range=Range1d(0, 30), y_range=Range1d(1e-3, 1e2), y_axis_label=label,
                     toolbar_location=None)
        top.line("r", f"{key}_true", source=self.prof_src, color="black", line_width=2,
                 legend_label="true")
        top.line("r", f"{key}_pred", source=self.prof_src, color="steelblue", line_width=2,
                 legend_label="π-DOC")
        top.line("r", f"{key}_base", source=self.prof_src, color="darkorange", line_dash="dashed",
                 line_width=2, legend_label="constant M/L")
        top.legend.location = "top_right"
        top.legend.label_text_font_size = "8pt"
        ratio_key = "mb_ratio" if key == "m" else "mlb_ratio"
        bottom = figure(width=330, height=120, x_range=top.x_range, y_range=Range1d(0.3, 3),
                        y_axis_type="log", x_axis_label="radius (arcsec)",
                        y_axis_label="pred / true", toolbar_location=None, tools="")
        bottom.line("r", f"{key}_ratio", source=self.prof_src, color="steelblue", line_width=2)
        bottom.line("r", ratio_key, source=self.prof_src, color="darkorange", line_dash="dashed",
                    line_width=2)
        bottom.add_layout(Span(location=1, dimension="width", line_dash="dotted"))
        return top, bottom

    # ------------------------------------------------------------------------------ update
    def setup(self) -> ObservationSetup:
        """The observing conditions the widgets describe."""
        rotation = self.angle.value if self.rotation.value == "free" else float(self.rotation.value)
        return ObservationSetup(distance_kpc=self.distance.value, psf_fwhm_arcsec=self.psf.value,
                                shift_arcsec=(self.shift_x.value, self.shift_y.value),
                                rotation_deg=rotation)

    def update(self, *_events) -> None:
        """Image, predict and measure under the current settings; patch every plot at once."""
        self.angle.disabled = self.rotation.value != "free"
        try:
            setup = self.setup()
            snap = self._snapshot(self.run.value, float(self.time.value))
            result = explore(snap, setup, model=self.model, upsilon=self.upsilon, grid=self.grid)
        except ObservationError as exc:
            self.status.alert_type = "danger"
            self.status.object = f"Cannot observe: {html.escape(str(exc))}"
            return
        self.last = result
        obs = result.observation
        stats = result.pixel_stats
        prof = result.profiles
        hist = stats.histogram.values  # (pred_bin, true_bin): image rows are predicted values
        log_counts = np.where(hist > 0, np.log10(np.maximum(hist, 1)), np.nan)
        mu_p = stats.mu_percentiles.values
        xi_p = stats.xi_percentiles.values
        base_prof = self._baseline_profiles(result)
        with pn.io.hold():
            self.flux_src.data = {"image": [obs.flux.values]}
            self.true_src.data = {"image": [obs.mass.values]}
            self.pred_src.data = {"image": [result.mass_pred]}
            self.resid_src.data = {"image": [result.residual]}
            self.hist_src.data = {"image": [log_counts]}
            self.mu_src.data = {"c": stats.pred_bin.values, "mean": stats.mu_mean.values,
                                "lo": mu_p[:, 0], "hi": mu_p[:, -1]}
            self.xi_src.data = {"c": stats.true_bin.values, "mean": stats.xi_mean.values,
                                "lo": xi_p[:, 0], "hi": xi_p[:, -1]}
            self.prof_src.data = {
                "r": prof.radius.values,
                "m_true": prof.mass_true.values, "m_pred": prof.mass_pred.values,
                "m_base": base_prof["mass"], "ml_true": prof.ml_true.values,
                "ml_pred": prof.ml_pred.values, "ml_base": base_prof["ml"],
                "m_ratio": prof.mass_pred.values / prof.mass_true.values,
                "ml_ratio": prof.ml_pred.values / prof.ml_true.values,
                "mb_ratio": base_prof["mass"] / prof.mass_true.values,
                "mlb_ratio": base_prof["ml"] / prof.ml_true.values,
            }
            for (fig, _), keys in ((self.profile_fig, ("m_true", "m_pred", "m_base")),
                                   (self.ml_fig, ("ml_true", "ml_pred", "ml_base"))):
                span = _decades(*(self.prof_src.data[k] for k in keys))
                if span is not None and (fig.y_range.start, fig.y_range.end) != span:
                    fig.y_range.update(start=span[0], end=span[1])
            self.numbers.object = self._numbers_html(result, snap)
            if result.flags:
                self.status.alert_type = "warning"
                self.status.object = ("<b>Outside the training conditions</b> — predictions here "
                                      "are extrapolations:<br>" +
                                      "<br>".join(html.escape(f) for f in result.flags))
            else:
                self.status.alert_type = "success"
                self.status.object = "All settings inside the networks' training conditions."

    def _baseline_profiles(self, result):
        """Constant-M/L baseline profiles: mass = Upsilon L, so M/L is flat at Upsilon."""
        prof = result.profiles
        return {"mass": self.upsilon * prof.luminosity.values,
                "ml": np.full(prof.radius.size, self.upsilon)}

    def _numbers_html(self, result, snap) -> str:
        t = result.totals
        setup = self.setup()

        def pct(value, true):
            return f"{100 * (value - true) / true:+.0f} %" if true > 0 else "–"

        rows = [
            ("Field mass (Msun)", f"{t['mass_true_msun']:,.0f}",
             f"{t['mass_pidoc_msun']:,.0f} ({pct(t['mass_pidoc_msun'], t['mass_true_msun'])})",
             f"{t['mass_baseline_msun']:,.0f} ({pct(t['mass_baseline_msun'], t['mass_true_msun'])})"),
            ("M/L_V (Msun/Lsun)", f"{t['ml_true']:.2f}",
             f"{t['ml_pidoc']:.2f} ({pct(t['ml_pidoc'], t['ml_true'])})",
             f"{t['ml_baseline']:.2f} ({pct(t['ml_baseline'], t['ml_true'])})"),
        ]
        if not math.isnan(result.age_gyr):
            rows += [("Age (Gyr)", f"{snap.time:.1f}", f"{result.age_gyr:.1f}", "–"),
                     ("Distance (kpc)", f"{setup.distance_kpc:.0f}", f"{result.distance_kpc:.1f}", "–")]
        body = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>"
                       for a, b, c, d in rows)
        return (
            f"<b>{html.escape(snap.name)}</b> at {snap.time:g} Gyr, {len(snap):,} stars; field "
            f"L<sub>V</sub> = {t['luminosity_v_lsun']:,.0f} Lsun"
            "<table style='width:100%;border-collapse:collapse;font-size:90%' class='pidoc-numbers'>"
            "<tr><th align=left></th><th align=left>true</th><th align=left>π-DOC</th>"
            "<th align=left>constant M/L</th></tr>" + body + "</table>"
        )

    # ------------------------------------------------------------------------------ layout
    def panel(self) -> pn.viewable.Viewable:
        """The tab's layout."""
        controls = pn.Column(
            "### Observing conditions", *self.widgets[:6], "Rotation (deg)", self.rotation,
            self.angle, width=300)
        maps = pn.Row(pn.pane.Bokeh(self.flux_fig), pn.pane.Bokeh(self.true_fig),
                      pn.pane.Bokeh(self.pred_fig), pn.pane.Bokeh(self.resid_fig))
        hist, mu, xi = (pn.pane.Bokeh(f) for f in self.hist_figs)
        histogram = pn.Column(pn.Row(hist, mu), xi)
        profiles = [pn.Column(*(pn.pane.Bokeh(f) for f in figs))
                    for figs in (self.profile_fig, self.ml_fig)]
        # the numbers sit under the profiles, so the page fits 1600 px without scrolling sideways
        lower = pn.Row(histogram, pn.Column(pn.Row(*profiles), self.numbers))
        return pn.Row(controls, pn.Column(self.status, maps, lower))
