"""The Explore tab's figures: four maps, the pixel histogram with μ and ξ, two profile panels.

:class:`ExplorePlots` builds the Bokeh figures once per session and :meth:`ExplorePlots.show`
patches their data sources from one :class:`pidoc_core.exploration.Exploration` (the caller holds
``pn.io.hold()`` so the browser repaints once). Images travel as float32 (maps) and float32 log
counts (histogram); the profile axes move only in whole decades, so most moves re-lay out nothing.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import (ColorBar, ColumnDataSource, CustomJSTickFormatter, FixedTicker, Legend,
                          LinearColorMapper, Range1d, Span)
from bokeh.models import Text
from bokeh.plotting import figure

from pidoc_core.evaluation import radial_edges
from pidoc_core.exploration import PIXEL_MASS_EDGES, enclosed_mass

from .figures import RESIDUAL_PALETTE, TOOLS, colour_limits, map_figure

__all__ = ["ExplorePlots", "EXPLORE_IMAGE_SOURCE", "FIXED_RANGES", "NUMBERS_SOURCE"]

#: Name of the data source of the numbers table (``row``, ``col``, ``text``): pages and tests
#: read the numbers from it.
NUMBERS_SOURCE = "pidoc-numbers"
#: Prefix of the names of the data sources of the tab's images (four maps, the histogram), which
#: every move replaces: the browser tests and benchmarks wait for these.
EXPLORE_IMAGE_SOURCE = "pidoc-explore-image"
_NUMBER_COLUMNS = (4, 118, 180, 275, 380, 480)  # x of the label and value columns, screen px
_NUMBERS_SIZE = (580, 135)  # width, height of the numbers canvas, screen pixels

#: Fixed colour ranges: log10 flux (Lsun kpc^-2), log10 mass (Msun), residual (dex).
FIXED_RANGES = {"flux": (-7.5, -2.5), "mass": (-2.5, 1.5), "residual": (-1.0, 1.0)}
_RATIO_TICKS = [0.25, 0.5, 1.0, 2.0, 4.0]
_COLOURS = {"true": "black", "pred": "#1f77b4", "base": "#ff7f0e", "pinned": "#7f7f7f"}


def _decades(*arrays):
    """(10^floor(log10 min), 10^ceil(log10 max)) of the positive finite values, or None.

    >>> _decades([0.02, 3.0], [np.nan, 0.5])
    (0.01, 10.0)
    """
    values = np.concatenate([np.ravel(a) for a in arrays]).astype(float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    lo = float(10.0 ** np.floor(np.log10(values.min())))
    hi = float(10.0 ** np.ceil(np.log10(values.max())))
    return (lo, hi if hi > lo else 10 * lo)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log axis from ``lo`` to ``hi`` (whole decades): the decades, and 2 and 5 times
    them when the axis spans at most two decades (Bokeh's LogTicker then labels every 0.01).

    >>> _log_ticks(0.01, 1.0)
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    """
    k0, k1 = int(round(np.log10(lo))), int(round(np.log10(hi)))
    mantissas = (1, 2, 5) if k1 - k0 <= 2 else (1,)
    return [float(f"{m}e{k}") for k in range(k0, k1 + 1) for m in mantissas
            if m * 10.0 ** k <= hi * (1 + 1e-9)]


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least ``value`` (> 0).

    >>> _nice_ceiling(4454.0), _nice_ceiling(6040.7), _nice_ceiling(0.3)
    (5000.0, 10000.0, 0.5)
    """
    k = np.floor(np.log10(value))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10.0 ** k >= value * (1 - 1e-12):
            return float(f"{m:g}e{int(k)}")
    raise AssertionError("unreachable")


def _legend_above(fig, items):
    """A horizontal legend above ``fig`` for ``(label, line renderer)`` items.

    Each entry is drawn from a twin of its renderer (same glyph, an empty data source of its
    own): BokehJS 3.9 rebuilds a legend's HTML items whenever anything reachable from them
    changes, the renderers' data included, which on every move cost a style recalculation of
    the page (~10 ms a move for the two profile legends).
    """
    twins = []
    for label, renderer in items:
        empty = ColumnDataSource({name: [] for name in renderer.data_source.column_names})
        twin = fig.add_glyph(empty, renderer.glyph.clone())
        twins.append((label, [twin]))
    legend = Legend(items=twins, orientation="horizontal", label_text_font_size="8pt",
                    padding=2, spacing=6, margin=0, glyph_width=18, label_standoff=3)
    fig.add_layout(legend, "above")


class ExplorePlots:
    """Bokeh figures and data sources of one session's Explore tab.

    Parameters
    ----------
    upsilon : float
        Constant M/L_V of the baseline, Msun/Lsun (for the enclosed-mass curve).
    map_size : (int, int)
        Width and height of each map, screen pixels.
    """

    def __init__(self, *, upsilon: float, map_size=(245, 225)):
        self.upsilon = float(upsilon)
        w, h = map_size
        self.mappers = {"flux": LinearColorMapper(palette="Inferno256"),
                        "mass": LinearColorMapper(palette="Viridis256"),
                        "residual": LinearColorMapper(palette=RESIDUAL_PALETTE)}
        specs = (("flux", "Mock V-band image", "flux", "log F (Lsun/kpc²)"),
                 ("true", "True mass map", "mass", "log M (Msun)"),
                 ("pred", "π-DOC mass map", "mass", "log M (Msun)"),
                 ("residual", "r = π-DOC − true", "residual", "r (dex)"))
        self.maps, self.map_sources = {}, {}
        for key, title, scale, label in specs:
            fig, src = map_figure(title, self.mappers[scale], label, width=w, height=h)
            src.name = f"{EXPLORE_IMAGE_SOURCE}-{key}"
            self.maps[key], self.map_sources[key] = fig, src
        first = self.maps["flux"]
        for fig in self.maps.values():
            fig.x_range, fig.y_range = first.x_range, first.y_range
            fig.grid.visible = False
        self._build_histogram()
        self._build_profiles()
        self._build_numbers()

    # ------------------------------------------------------------------------- histogram
    def _build_histogram(self):
        lo, hi = float(PIXEL_MASS_EDGES[0]), float(PIXEL_MASS_EDGES[-1])
        nb = len(PIXEL_MASS_EDGES) - 1
        self.count_mapper = LinearColorMapper(palette="Greys256", low=0, high=3,
                                              nan_color=(0, 0, 0, 0))
        self.count_mapper.palette = list(reversed(self.count_mapper.palette))
        self.hist_src = ColumnDataSource({"image": [np.full((nb, nb), np.nan, np.float32)]},
                                         name=f"{EXPLORE_IMAGE_SOURCE}-histogram")
        hist = figure(title="Pixels: π-DOC vs true", width=265, height=245, tools=TOOLS,
                      x_range=Range1d(lo, hi), y_range=Range1d(lo, hi),
                      x_axis_label="true log M (Msun)", y_axis_label="π-DOC log M (Msun)",
                      tooltips=[("log10 pixels", "@image{0.0}")], toolbar_location=None)
        hist.image(image="image", x=lo, y=lo, dw=hi - lo, dh=hi - lo, color_mapper=self.count_mapper,
                   source=self.hist_src)
        hist.line([lo, hi], [lo, hi], color="crimson", line_width=1.5)
        hist.grid.visible = False
        hist.add_layout(ColorBar(color_mapper=self.count_mapper, title="log10 pixels", width=8,
                                 ticker=FixedTicker(ticks=[0, 1, 2, 3]), padding=3), "right")
        centres = 0.5 * (PIXEL_MASS_EDGES[1:] + PIXEL_MASS_EDGES[:-1])
        empty = {"c": centres, "mean": np.full(nb, np.nan), "lo": np.full(nb, np.nan),
                 "hi": np.full(nb, np.nan)}
        self.mu_src, self.xi_src = ColumnDataSource(dict(empty)), ColumnDataSource(dict(empty))
        mu = figure(title="μ: r | π-DOC", width=130, height=245, y_range=hist.y_range,
                    x_range=Range1d(-1, 1), x_axis_label="r (dex)", toolbar_location=None, tools="")
        mu.harea(y="c", x1="lo", x2="hi", source=self.mu_src, fill_alpha=0.3, color="steelblue")
        mu.line(y="c", x="mean", source=self.mu_src, color="steelblue", line_width=2)
        mu.add_layout(Span(location=0, dimension="height", line_dash="dashed"))
        xi = figure(title="ξ: r | true", width=265, height=130, x_range=hist.x_range,
                    y_range=Range1d(-1, 1), y_axis_label="r (dex)", toolbar_location=None, tools="")
        xi.varea(x="c", y1="lo", y2="hi", source=self.xi_src, fill_alpha=0.3, color="darkorange")
        xi.line(x="c", y="mean", source=self.xi_src, color="darkorange", line_width=2)
        xi.add_layout(Span(location=0, dimension="width", line_dash="dashed"))
        self.histogram = (hist, mu, xi)

    # -------------------------------------------------------------------------- profiles
    def _build_profiles(self):
        edges = radial_edges()
        r = 0.5 * (edges[1:] + edges[:-1])
        nan = np.full(r.size, np.nan)
        keys = ("m_true", "m_pred", "m_base", "m_pinned", "ml_true", "ml_pred", "ml_base",
                "ml_pinned", "m_ratio", "mb_ratio", "r_out", "enc_true", "enc_pred", "enc_base",
                "m_lo", "m_hi", "ml_lo", "ml_hi")
        self.prof_src = ColumnDataSource({"r": r, **{k: nan for k in keys}})
        self.mass_profile = self._profile("Mass per pixel in rings", "M (Msun)", "m")
        self.ml_profile = self._profile("M/L in rings", "M/L_V (Msun/Lsun)", "ml")
        ratio = figure(width=300, height=125, x_range=self.mass_profile.x_range,
                       y_range=Range1d(_RATIO_TICKS[0], _RATIO_TICKS[-1]), y_axis_type="log",
                       x_axis_label="r (arcsec)", y_axis_label="true / model",
                       toolbar_location=None, tools="")
        ratio.yaxis.ticker = FixedTicker(ticks=_RATIO_TICKS)
        ratio.line("r", "m_ratio", source=self.prof_src, color=_COLOURS["pred"], line_width=2)
        ratio.line("r", "mb_ratio", source=self.prof_src, color=_COLOURS["base"],
                   line_dash="dashed", line_width=2)
        ratio.add_layout(Span(location=1, dimension="width", line_dash="dotted"))
        # from 0 to a 1-2-5 ceiling moved by show() only when the data leave it: an
        # auto-ranged axis changed its labels' width, so the page's layout, on every move
        enclosed = figure(width=300, height=125, x_range=self.mass_profile.x_range,
                          y_range=Range1d(0, 1), x_axis_label="r (arcsec)",
                          y_axis_label="M(<r) (Msun)",
                          toolbar_location=None, tools="hover",
                          tooltips=[("r", "@r_out{0.0}″"), ("true", "@enc_true{0,0}"),
                                    ("π-DOC", "@enc_pred{0,0}")])
        enclosed.yaxis.formatter.use_scientific = False
        enclosed.yaxis.ticker.desired_num_ticks = 4  # its 125 px held 8 crowded labels
        enclosed.line("r_out", "enc_true", source=self.prof_src, color=_COLOURS["true"], line_width=2)
        enclosed.line("r_out", "enc_pred", source=self.prof_src, color=_COLOURS["pred"], line_width=2)
        enclosed.line("r_out", "enc_base", source=self.prof_src, color=_COLOURS["base"],
                      line_dash="dashed", line_width=2)
        self.ratio, self.enclosed = ratio, enclosed

    def _profile(self, title, label, key):
        # whole decades, moved by show() only when the data leave them: an auto-ranged axis
        # would re-lay out the plot on every move
        fig = figure(title=title, width=300, height=215, y_axis_type="log", tools=TOOLS,
                     x_range=Range1d(0, 30), y_range=Range1d(1e-3, 1e2), y_axis_label=label,
                     toolbar_location=None)
        fig.yaxis.ticker = FixedTicker(ticks=_log_ticks(1e-3, 1e2))
        # 0.002, 0.5, 100 (the log formatter writes 2.000e-3 for ticks between decades)
        fig.yaxis.formatter = CustomJSTickFormatter(code="return String(Number(tick.toPrecision(3)))")
        fig.xaxis.visible = False
        # π-DOC's 68 % per-pixel band (ring means of the bounds); NaN, so invisible, without
        fig.varea("r", f"{key}_lo", f"{key}_hi", source=self.prof_src, color=_COLOURS["pred"],
                  fill_alpha=0.2)
        lines = [("true", fig.line("r", f"{key}_true", source=self.prof_src,
                                   color=_COLOURS["true"], line_width=2)),
                 ("π-DOC", fig.line("r", f"{key}_pred", source=self.prof_src,
                                    color=_COLOURS["pred"], line_width=2)),
                 ("constant M/L", fig.line("r", f"{key}_base", source=self.prof_src,
                                           color=_COLOURS["base"], line_dash="dashed",
                                           line_width=2)),
                 ("pinned π-DOC", fig.line("r", f"{key}_pinned", source=self.prof_src,
                                           color=_COLOURS["pinned"], line_dash="dotted",
                                           line_width=2))]
        _legend_above(fig, lines)
        return fig

    # --------------------------------------------------------------------------- numbers
    def _build_numbers(self):
        # drawn on a canvas from a data source: new numbers repaint one canvas, where an HTML
        # table's new text re-laid out the whole page (~90 ms a move in Chromium)
        self.numbers_src = ColumnDataSource({k: [] for k in ("x", "y", "text", "row", "col",
                                                             "style")}, name=NUMBERS_SOURCE)
        w, h = _NUMBERS_SIZE
        fig = figure(width=w, height=h, x_range=Range1d(0, w), y_range=Range1d(0, h),
                     toolbar_location=None, tools="", min_border=0, outline_line_color=None)
        fig.axis.visible = False
        fig.grid.visible = False
        fig.add_glyph(self.numbers_src, Text(x="x", y="y", text="text", text_font_size="9pt",
                                             text_baseline="middle", text_font_style="style"))
        self.numbers = fig

    def show_numbers(self, caption: str, table, footer: str = "") -> None:
        """Draw the caption, a table of strings (index: row labels) and a footer line on the
        numbers canvas."""
        cols = ["", *table.columns]
        x, y, text, row, col, style = [4.0], [126.0], [caption], ["caption"], [""], ["bold"]
        for j, name in enumerate(cols[1:], start=1):
            x.append(_NUMBER_COLUMNS[j]), y.append(108.0), text.append(name)
            row.append("header"), col.append(name), style.append("bold")
        for i, (label, values) in enumerate(table.iterrows()):
            for j, value in enumerate([label, *values]):
                x.append(_NUMBER_COLUMNS[j]), y.append(91.0 - 17.0 * i), text.append(str(value))
                row.append(label), col.append(cols[j]), style.append("bold" if j == 0 else "normal")
        if footer:
            x.append(4.0), y.append(12.0), text.append(footer)
            row.append("footer"), col.append(""), style.append("italic")
        self.numbers_src.data = {"x": x, "y": y, "text": text, "row": row, "col": col,
                                 "style": style}

    # ------------------------------------------------------------------------------ show
    def show(self, result, *, automatic: bool, pinned=None) -> None:
        """Patch every source from one exploration step (call inside ``pn.io.hold()``).

        Parameters
        ----------
        result : pidoc_core.exploration.Exploration
            The step to show.
        automatic : bool
            Colour ranges from each map's values (else :data:`FIXED_RANGES`).
        pinned : pidoc_core.exploration.Exploration, optional
            A pinned step whose π-DOC profiles are drawn for comparison.
        """
        obs = result.observation
        images = {"flux": obs.flux.values, "true": obs.mass.values, "pred": result.mass_pred,
                  "residual": result.residual}
        for key, image in images.items():
            self.map_sources[key].data = {"image": [np.asarray(image, dtype=np.float32)]}
        mass_both = np.concatenate([obs.mass.values.ravel(), result.mass_pred.ravel()])
        for scale, values, sym in (("flux", obs.flux.values, False), ("mass", mass_both, False),
                                   ("residual", result.residual, True)):
            lo, hi = colour_limits(values, fixed=None if automatic else FIXED_RANGES[scale],
                                   symmetric=sym)
            mapper = self.mappers[scale]
            if (mapper.low, mapper.high) != (lo, hi):
                mapper.update(low=lo, high=hi)
        self._show_histogram(result.pixel_stats)
        self._show_profiles(result, pinned)

    def _show_histogram(self, stats):
        hist = stats.histogram.values  # (pred_bin, true_bin): image rows are predicted values
        log_counts = np.where(hist > 0, np.log10(np.maximum(hist, 1)), np.nan).astype(np.float32)
        self.hist_src.data = {"image": [log_counts]}
        mu_p, xi_p = stats.mu_percentiles.values, stats.xi_percentiles.values
        self.mu_src.data = {"c": stats.pred_bin.values, "mean": stats.mu_mean.values,
                            "lo": mu_p[:, 0], "hi": mu_p[:, -1]}
        self.xi_src.data = {"c": stats.true_bin.values, "mean": stats.xi_mean.values,
                            "lo": xi_p[:, 0], "hi": xi_p[:, -1]}

    def _show_profiles(self, result, pinned):
        prof = result.profiles
        base_mass = self.upsilon * prof.luminosity.values
        enc = enclosed_mass(prof, upsilon=self.upsilon)
        nan = np.full(prof.radius.size, np.nan)
        data = {
            "r": prof.radius.values, "r_out": enc["radius"],
            "m_true": prof.mass_true.values, "m_pred": prof.mass_pred.values,
            "m_base": base_mass, "ml_true": prof.ml_true.values, "ml_pred": prof.ml_pred.values,
            "ml_base": np.full(prof.radius.size, self.upsilon),
            "m_pinned": pinned.profiles.mass_pred.values if pinned is not None else nan,
            "ml_pinned": pinned.profiles.ml_pred.values if pinned is not None else nan,
            # true / predicted, as pidoc_core.evaluation.radial_profiles and the report define it
            "m_ratio": prof.mass_ratio.values,
            "mb_ratio": prof.mass_true.values / base_mass,
            "enc_true": enc["true"], "enc_pred": enc["pidoc"], "enc_base": enc["baseline"],
            "m_lo": nan, "m_hi": nan, "ml_lo": nan, "ml_hi": nan,
        }
        if "mass_pred_lo" in prof:
            lum = prof.luminosity.values
            data.update(m_lo=prof.mass_pred_lo.values, m_hi=prof.mass_pred_hi.values)
            with np.errstate(invalid="ignore", divide="ignore"):
                data.update(ml_lo=data["m_lo"] / lum, ml_hi=data["m_hi"] / lum)
        self.prof_src.data = data
        for fig, keys in ((self.mass_profile, ("m_true", "m_pred", "m_base")),
                          (self.ml_profile, ("ml_true", "ml_pred", "ml_base"))):
            span = _decades(*(data[k] for k in keys))
            if span is not None and (fig.y_range.start, fig.y_range.end) != span:
                fig.y_range.update(start=span[0], end=span[1])
                fig.yaxis.ticker.ticks = _log_ticks(*span)
        top = np.nanmax([np.nanmax(data[k], initial=0.0) for k in ("enc_true", "enc_pred",
                                                                    "enc_base")])
        if np.isfinite(top) and top > 0 and self.enclosed.y_range.end != _nice_ceiling(top):
            self.enclosed.y_range.end = _nice_ceiling(top)
