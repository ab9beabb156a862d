"""Bokeh figures the dashboard's views share: a square map of the 40″ field with its colour bar,
the paper's residual figure (2D histogram with μ and ξ panels) and its distance PDFs.

The views patch these figures' :class:`~bokeh.models.ColumnDataSource` objects in place on every
move or filter (in the server and the browser several times cheaper than drawing new HoloViews
objects); they draw what the HoloViews builders of :mod:`pidoc_core.plots` draw for the report
and the notebooks, from the same :mod:`pidoc_core.evaluation` statistics.
"""

from __future__ import annotations

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (ColorBar, ColumnDataSource, FixedTicker, Legend, LegendItem,
                          LinearColorMapper, LogColorMapper, Range1d, Spacer, Span)
from bokeh.palettes import RdBu11, interp_palette
from bokeh.plotting import figure

from pidoc_core.conventions import FOV_ARCSEC, N_PIXELS

__all__ = ["TOOLS", "RESIDUAL_PALETTE", "map_figure", "colour_limits", "ResidualFigure",
           "DistancePdfFigure"]

TOOLS = "pan,wheel_zoom,box_zoom,reset,hover,save"
#: Continuous diverging palette (blue negative, white zero, red positive), 256 steps.
RESIDUAL_PALETTE = tuple(interp_palette(RdBu11, 256))  # Bokeh's RdBu11 runs blue -> red


def map_figure(title: str, mapper: LinearColorMapper, label: str, *, width: int = 280,
               height: int = 250, x_label: str = "x (arcsec)", y_label: str = "y (arcsec)"):
    """A square map of the field with a colour bar, fed by a one-image data source.

    Parameters
    ----------
    title : str
        Figure title.
    mapper : bokeh.models.LinearColorMapper
        Colour scale (shared between maps that should compare).
    label : str
        Quantity and unit, shown on the colour bar and in the hover tool.
    width, height : int
        Size, screen pixels.
    x_label, y_label : str
        Axis labels (arcsec from the field centre).

    Returns
    -------
    (bokeh.plotting.figure, bokeh.models.ColumnDataSource)
        The figure and its source; set ``source.data = {"image": [array]}`` with a
        ``(n_pixels, n_pixels)`` float32 array, row 0 at the bottom.
    """
    half = FOV_ARCSEC / 2.0
    n = N_PIXELS
    source = ColumnDataSource({"image": [np.full((n, n), np.nan, dtype=np.float32)]})
    fig = figure(title=title, x_range=Range1d(-half, half), y_range=Range1d(-half, half),
                 width=width, height=height, tools=TOOLS, tooltips=[(label, "@image{0.00}")],
                 x_axis_label=x_label, y_axis_label=y_label, toolbar_location=None)
    fig.image(image="image", x=-half, y=-half, dw=2 * half, dh=2 * half, color_mapper=mapper,
              source=source)
    ticks = FixedTicker(ticks=[-half, -half / 2, 0.0, half / 2, half])
    fig.xaxis.ticker = fig.yaxis.ticker = ticks
    fig.add_layout(ColorBar(color_mapper=mapper, title=label, width=8, title_standoff=4,
                            label_standoff=4, padding=3), "right")
    return fig, source


def colour_limits(values, *, fixed, symmetric: bool = False) -> tuple[float, float]:
    """Colour range of a map: ``fixed``, or the 1st-99.9th percentile of its finite values.

    Parameters
    ----------
    values : numpy.ndarray
        The map.
    fixed : (float, float) or None
        A fixed range, returned as given; None for the automatic range.
    symmetric : bool
        Automatic range symmetric about zero (for residuals), +- the 99th percentile of |value|.

    Examples
    --------
    >>> colour_limits(np.array([0.0, 1.0, 2.0]), fixed=(-1, 1))
    (-1, 1)
    >>> colour_limits(np.array([-0.2, 0.1, np.nan]), fixed=None, symmetric=True)[1] > 0.19
    True
    """
    if fixed is not None:
        return fixed
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (0.0, 1.0)
    if symmetric:
        half = float(np.percentile(np.abs(finite), 99.0)) or 0.1
        return (-half, half)
    lo, hi = (float(v) for v in np.percentile(finite, [1.0, 99.9]))
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def _padded(lo: float, hi: float, *, fraction: float = 0.08) -> tuple[float, float]:
    """(lo, hi) widened by ``fraction`` of their span on each side (a unit span if they meet)."""
    pad = fraction * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


class ResidualFigure:
    """True-vs-predicted 2D histogram with μ (left) and ξ (below) panels: Figs 5, 6 and 8.

    The live twin of :func:`pidoc_core.plots.residual_panel`: the same panels, axes and band,
    drawn once and updated in place by :meth:`show`.

    Parameters
    ----------
    title : str
        Title of the histogram.
    label, units : str
        Quantity and its units, for the axes (e.g. ``"log10 field mass"``, ``"log10(Msun)"``).
    residual_units : str
        Units of r = predicted − true (``"dex"`` for logarithmic quantities).
    statistic : {"std", "mae", "percentiles"}
        The band around the mean residual: ±1 standard deviation (Figs 5, 6), ± the mean
        absolute error (Fig. 8) or the outer percentiles of the statistics.
    size, side : int
        Size of the histogram and width of the side panels, screen pixels.
    """

    def __init__(self, *, title: str, label: str, units: str, residual_units: str,
                 statistic: str = "std", size: int = 260, side: int = 100):
        if statistic not in ("std", "mae", "percentiles"):
            raise ValueError(f"statistic must be 'std', 'mae' or 'percentiles', not {statistic!r}")
        self.statistic = statistic
        self.mapper = LogColorMapper(palette="Viridis256", low=1, high=10, nan_color="white")
        self.hist_src = ColumnDataSource({"image": [np.full((1, 1), np.nan)], "x": [0.0],
                                          "y": [0.0], "dw": [1.0], "dh": [1.0]})
        self.one_src = ColumnDataSource({"x": [0.0, 1.0]})
        axis = f" ({units})" if units else ""
        main = figure(title=title, width=size + 70, height=size, tools="hover,save",
                      x_range=Range1d(0, 1), y_range=Range1d(0, 1), toolbar_location=None,
                      x_axis_label=f"true {label}{axis}", y_axis_label=f"predicted {label}{axis}",
                      tooltips=[("count", "@image")])
        main.image(image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=self.mapper,
                   source=self.hist_src)
        main.line(x="x", y="x", source=self.one_src, color="red", line_width=2)
        main.add_layout(ColorBar(color_mapper=self.mapper, title="count", width=8, padding=3),
                        "right")
        self.mu_src = ColumnDataSource({"c": [], "mean": [], "lo": [], "hi": []})
        self.xi_src = ColumnDataSource({"c": [], "mean": [], "lo": [], "hi": []})
        r_label = f"r ({residual_units})"  # r = predicted − true, defined above the figures
        mu = figure(title="μ", width=side, height=size, y_range=main.y_range,
                    x_range=Range1d(-1, 1), x_axis_label=r_label, toolbar_location=None,
                    tools="")
        mu.harea(y="c", x1="lo", x2="hi", source=self.mu_src, color="gray", alpha=0.35)
        mu.line(y="c", x="mean", source=self.mu_src, color="black", line_width=2)
        mu.add_layout(Span(location=0, dimension="height", line_color="red", line_dash="dashed"))
        mu.xaxis.ticker.desired_num_ticks = 2  # a 100-px axis: more labels overlap
        xi = figure(title="ξ: r per true bin", width=size, height=side, x_range=main.x_range,
                    y_range=Range1d(-1, 1), y_axis_label=r_label, toolbar_location=None,
                    tools="")
        xi.varea(x="c", y1="lo", y2="hi", source=self.xi_src, color="gray", alpha=0.35)
        xi.line(x="c", y="mean", source=self.xi_src, color="black", line_width=2)
        xi.add_layout(Span(location=0, dimension="width", line_color="red", line_dash="dashed"))
        xi.yaxis.ticker.desired_num_ticks = 3
        self.figures = {"main": main, "mu": mu, "xi": xi}
        #: The three panels as one Bokeh layout: [μ, histogram] above [gap, ξ].
        self.layout = column(row(mu, main), row(Spacer(width=side, height=side), xi))

    def show(self, stats) -> None:
        """Draw one set of statistics.

        Parameters
        ----------
        stats : xarray.Dataset
            :func:`pidoc_core.evaluation.residual_statistics` or
            :func:`~pidoc_core.evaluation.pixel_residual_statistics`.
        """
        edges = np.concatenate([stats.true_lower.values, stats.true_upper.values[-1:]])
        lo, hi = float(edges[0]), float(edges[-1])
        counts = stats["histogram"].values.astype(np.float64)  # (pred_bin, true_bin): rows = y
        top = float(counts.max()) if counts.size else 1.0
        counts[counts == 0] = np.nan
        self.hist_src.data = {"image": [counts], "x": [lo], "y": [lo], "dw": [hi - lo],
                              "dh": [hi - lo]}
        self.one_src.data = {"x": [lo, hi]}
        self.mapper.update(low=1, high=max(top, 10.0))
        main = self.figures["main"]
        main.x_range.update(start=lo, end=hi)
        main.y_range.update(start=lo, end=hi)
        bands = []
        for side, source in (("mu", self.mu_src), ("xi", self.xi_src)):
            centres = stats[stats[f"{side}_count"].dims[0]].values
            mean = stats[f"{side}_mean"].values
            ok = np.isfinite(mean)
            if self.statistic == "percentiles":
                pct = stats[f"{side}_percentiles"].values
                band = (pct[:, 0], pct[:, -1])
            else:
                err = stats[f"{side}_{self.statistic}"].values
                band = (mean - err, mean + err)
            source.data = {"c": centres[ok], "mean": mean[ok], "lo": band[0][ok],
                           "hi": band[1][ok]}
            bands += [b[ok] for b in band]
        values = np.concatenate(bands + [np.zeros(1)])
        values = values[np.isfinite(values)]
        r_lo, r_hi = _padded(float(values.min()), float(values.max()))
        self.figures["mu"].x_range.update(start=r_lo, end=r_hi)
        self.figures["xi"].y_range.update(start=r_lo, end=r_hi)


class DistancePdfFigure:
    """Fig. 9: the PDF of the predicted distance for each true distance, with the true distances.

    The live twin of :func:`pidoc_core.plots.distance_pdf_plot`: one histogram and one vertical
    line per true distance of ``groups``, each in its own colour whatever the selection;
    :meth:`show` hides the groups it is not given.

    Parameters
    ----------
    groups : sequence of float
        Every true distance that can be shown, kpc.
    palette : sequence of str
        Colours of successive groups.
    width, height : int
        Size, screen pixels.
    """

    def __init__(self, groups, *, palette, width: int = 480, height: int = 330):
        self.groups = [float(g) for g in groups]
        fig = figure(title="predicted distance PDFs", width=width, height=height,
                     tools="hover,save", toolbar_location=None,
                     x_axis_label="predicted distance (kpc)", y_axis_label="PDF (kpc⁻¹)",
                     tooltips=[("predicted distance (kpc)", "@left{0} – @right{0}"),
                               ("PDF (kpc⁻¹)", "@top{0.000}")])
        self.sources, self.renderers, self.lines, items = {}, {}, {}, []
        for k, g in enumerate(self.groups):
            colour = palette[k % len(palette)]
            src = ColumnDataSource({"left": [], "right": [], "top": []})
            quad = fig.quad(left="left", right="right", top="top", bottom=0, source=src,
                            fill_color=colour, line_color=colour, fill_alpha=0.3)
            line = Span(location=g, dimension="height", line_color=colour, line_width=2)
            fig.add_layout(line)
            self.sources[g], self.renderers[g], self.lines[g] = src, quad, line
            items.append(LegendItem(label=f"{g:g} kpc", renderers=[quad]))
        self.legend = Legend(items=items, location="top_right")
        fig.add_layout(self.legend)
        self.figure = fig

    def show(self, pdfs) -> None:
        """Draw :func:`pidoc_core.evaluation.distance_pdfs` (true distances among ``groups``)."""
        edges = np.concatenate([pdfs.distance_lower.values, pdfs.distance_upper.values[-1:]])
        shown = {float(g): k for k, g in enumerate(pdfs.true_distance.values)}
        for g, item in zip(self.groups, self.legend.items):
            k = shown.get(g)
            pdf = pdfs.pdf.isel(true_distance=k).values if k is not None else []
            self.sources[g].data = ({"left": edges[:-1], "right": edges[1:], "top": pdf}
                                    if k is not None else {"left": [], "right": [], "top": []})
            self.renderers[g].visible = self.lines[g].visible = item.visible = k is not None
