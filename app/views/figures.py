"""Bokeh figures the dashboard's views share: a square map of the 40″ field with its colour bar.

The views patch these figures' :class:`~bokeh.models.ColumnDataSource` objects in place on every
move (cheaper in the browser than new HoloViews objects); the paper's figures for stored results
come from :mod:`pidoc_core.plots`.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import ColorBar, ColumnDataSource, FixedTicker, LinearColorMapper, Range1d
from bokeh.palettes import RdBu11, interp_palette
from bokeh.plotting import figure

from pidoc_core.conventions import FOV_ARCSEC, N_PIXELS

__all__ = ["TOOLS", "RESIDUAL_PALETTE", "map_figure", "colour_limits"]

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
