"""Plot builders for the paper's figures (HoloViews, Bokeh backend) and a self-contained HTML report.

Every builder takes arrays or the Datasets of :mod:`pidoc_core.evaluation` and returns a HoloViews
object; nothing is shown or saved. They work in notebooks (which call
``hv.extension("bokeh", inline=True)`` themselves), in the Panel dashboard (``pn.pane.HoloViews``)
and, via :func:`html_report`, in a static HTML file that loads nothing from the network (Bokeh's
JavaScript is inlined). Importing this module registers the Bokeh plotting backend with HoloViews
(``import holoviews.plotting.bokeh``) but does not call ``hv.extension``, so it neither loads
notebook JavaScript nor contacts a CDN. Options are set with ``backend="bokeh"``.

=============================  ================================================================
paper                          builder
=============================  ================================================================
Fig. 4 maps                    :func:`mosaic` (flux, true mass, predicted mass, residual)
Fig. 5 pixel histogram         :func:`residual_panel` on :func:`~pidoc_core.evaluation.pixel_residual_statistics`
Fig. 6 total mass and M/L      :func:`totals_panels`
Fig. 7 profiles                :func:`profile_panels`
Fig. 8 ages                    :func:`residual_panel` on age statistics (``statistic="mae"``)
Fig. 9 distance PDFs           :func:`distance_pdf_plot`
tables                         :func:`table`
=============================  ================================================================
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the backend; no hv.extension)
import numpy as np
import xarray as xr

from .conventions import PIXEL_ARCSEC as _PIXEL_ARCSEC

__all__ = [
    "PALETTE",
    "mosaic",
    "residual_panel",
    "totals_panels",
    "profile_panels",
    "distance_pdf_plot",
    "table",
    "html_report",
    "notebook_extension",
]

#: Colours of successive maps / distances (Bokeh Category10).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_B = "bokeh"


def _opts(obj, **kw):
    return obj.opts(backend=_B, **kw)


def _coords(n, pixel_arcsec):
    return (np.arange(n) + 0.5) * pixel_arcsec - n * pixel_arcsec / 2.0


def _stack(a, name):
    a = np.asarray(a.values if isinstance(a, xr.DataArray) else a, dtype=float)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be maps (sample, y, x) or one map (y, x); got {a.shape}")
    return a


def _fmt(v, unit):
    return "" if v is None or not np.isfinite(v) else f"{v:.3g} {unit}"


# ---------------------------------------------------------------------------------------------
# Fig. 4
# ---------------------------------------------------------------------------------------------


def mosaic(flux, mass_true, mass_pred, *, labels: Iterable[str] | None = None,
           true_age=None, pred_age=None, true_distance=None, pred_distance=None,
           pixel_arcsec: float = _PIXEL_ARCSEC, mass_range=None, residual_range=None,
           size: int = 220) -> hv.Layout:
    """Fig. 4: rows of flux, true mass, predicted mass and residual maps, one column per map.

    Parameters
    ----------
    flux : array_like
        log10 flux per pixel, Lsun kpc^-2, ``(n, y, x)`` (a few maps, e.g. 4) or ``(y, x)``.
    mass_true, mass_pred : array_like
        log10 mass per pixel, Msun, same shape.
    labels : iterable of str, optional
        Column titles (default ``"map i"``).
    true_age, pred_age : array_like, optional
        Ages, Gyr, shown in the titles of the true / predicted rows as in the paper.
    true_distance, pred_distance : array_like, optional
        Distances, kpc, likewise.
    pixel_arcsec : float
        Pixel side, arcsec; axes are arcsec from the field centre.
    mass_range : (float, float), optional
        Colour range of both mass rows, log10 Msun (default: common 1st-99.9th percentile).
    residual_range : float, optional
        Half-width of the residual colour range, dex (default: 99th percentile of |r|).
    size : int
        Width and height of each panel, pixels.

    Returns
    -------
    holoviews.Layout
        ``4 n`` :class:`holoviews.Image` panels in ``n`` columns; the mass rows share one colour
        range; residual = predicted - true (dex) on a diverging map.
    """
    f = _stack(flux, "flux")
    mt, mp = _stack(mass_true, "mass_true"), _stack(mass_pred, "mass_pred")
    if not (f.shape == mt.shape == mp.shape):
        raise ValueError(f"flux {f.shape}, mass_true {mt.shape} and mass_pred {mp.shape} differ")
    n, h, w = f.shape
    labels = list(labels) if labels is not None else [f"map {i}" for i in range(n)]
    xs, ys = _coords(w, pixel_arcsec), _coords(h, pixel_arcsec)
    if mass_range is None:
        both = np.concatenate([mt.ravel(), mp.ravel()])
        both = both[np.isfinite(both)]
        mass_range = tuple(np.percentile(both, [1.0, 99.9])) if both.size else (0.0, 1.0)
    resid = mp - mt
    if residual_range is None:
        a = np.abs(resid[np.isfinite(resid)])
        residual_range = float(np.percentile(a, 99.0)) if a.size else 1.0
        residual_range = residual_range or 0.1

    def arr(v, i):
        return None if v is None else np.asarray(v, dtype=float).reshape(-1)[i]

    kd = [hv.Dimension("x", label="x", unit="arcsec"), hv.Dimension("y", label="y", unit="arcsec")]
    common = dict(width=size, height=size, colorbar=True, tools=["hover"], xaxis=None,
                  yaxis=None)
    rows = {"flux": [], "true": [], "pred": [], "resid": []}
    for i in range(n):
        ta, pa, td, pd = arr(true_age, i), arr(pred_age, i), arr(true_distance, i), \
            arr(pred_distance, i)
        t_true = " ".join(s for s in (labels[i] + " true", _fmt(td, "kpc"), _fmt(ta, "Gyr")) if s)
        t_pred = " ".join(s for s in (labels[i] + " pi-DOC", _fmt(pd, "kpc"), _fmt(pa, "Gyr"))
                          if s)
        rows["flux"].append(_opts(hv.Image((xs, ys, f[i]), kdims=kd,
                                           vdims=hv.Dimension("flux", label="log10 F",
                                                              unit="Lsun kpc^-2")),
                                  title=f"{labels[i]}: flux", cmap="magma", **common))
        rows["true"].append(_opts(hv.Image((xs, ys, mt[i]), kdims=kd,
                                           vdims=hv.Dimension("mass", label="log10 M",
                                                              unit="Msun")),
                                  title=t_true, cmap="viridis", clim=tuple(mass_range), **common))
        rows["pred"].append(_opts(hv.Image((xs, ys, mp[i]), kdims=kd,
                                           vdims=hv.Dimension("mass", label="log10 M",
                                                              unit="Msun")),
                                  title=t_pred, cmap="viridis", clim=tuple(mass_range), **common))
        rows["resid"].append(_opts(hv.Image((xs, ys, resid[i]), kdims=kd,
                                            vdims=hv.Dimension("residual", label="pred - true",
                                                               unit="dex")),
                                   title=f"{labels[i]}: residual", cmap="RdBu_r",
                                   clim=(-residual_range, residual_range), **common))
    panels = rows["flux"] + rows["true"] + rows["pred"] + rows["resid"]
    return hv.Layout(panels).cols(n).opts(shared_axes=False, backend=_B)


# ---------------------------------------------------------------------------------------------
# Figs 5, 6, 8
# ---------------------------------------------------------------------------------------------


def residual_panel(stats: xr.Dataset, *, label: str | None = None, units: str | None = None,
                   statistic: str = "std", size: int = 380, side: int = 160,
                   log_counts: bool = True, title: str = "") -> hv.Layout:
    """True-vs-predicted 2D histogram with mu (left) and xi (bottom) panels: Figs 5, 6 and 8.

    Parameters
    ----------
    stats : xarray.Dataset
        From :func:`pidoc_core.evaluation.residual_statistics` or
        :func:`~pidoc_core.evaluation.pixel_residual_statistics`.
    label, units : str, optional
        Quantity name and units for the axes (default: the dataset's ``quantity``/``units``).
    statistic : {"std", "mae", "percentiles"}
        The band around the mean residual: +/- standard deviation (Figs 5, 6), +/- mean absolute
        error (Fig. 8) or the 16th-84th percentiles.
    size, side : int
        Size of the main panel and width of the side panels, pixels.
    log_counts : bool
        Logarithmic colour scale of the counts.
    title : str
        Title of the main panel.

    Returns
    -------
    holoviews.Layout
        Two columns: [mu panel, histogram, empty, xi panel]. The histogram is an
        :class:`holoviews.Image` (x: true, y: predicted) overlaid with the one-to-one line in red;
        the mu panel shows the mean residual against the predicted value (vertical, sharing the
        histogram's y axis), the xi panel against the true value (sharing its x axis).
    """
    label = label or stats.attrs.get("quantity") or "value"
    units = units if units is not None else stats.attrs.get("units", "")
    runit = "dex" if stats.attrs.get("kind", "log") == "log" else units
    # names carry the quantity, so panels of different quantities (Fig. 6's mass and M/L) get
    # their own axes while a panel's histogram and side panels share theirs
    # the histogram's edges (the same on both axes) bound the true and predicted axes of all
    # three panels, so they line up even when drawn apart
    edges = np.concatenate([stats.true_lower.values, stats.true_upper.values[-1:]])
    lo, hi = float(edges[0]), float(edges[-1])
    t_dim = hv.Dimension(f"true {label}", label=f"true {label}", unit=units or None,
                         range=(lo, hi))
    p_dim = hv.Dimension(f"predicted {label}", label=f"predicted {label}", unit=units or None,
                         range=(lo, hi))
    r_dim = hv.Dimension(f"residual {label}", label="residual", unit=runit or None)
    counts = stats["histogram"].values.astype(float)
    counts[counts == 0] = np.nan
    img = hv.Image((stats.true_bin.values, stats.pred_bin.values, counts), kdims=[t_dim, p_dim],
                   vdims=hv.Dimension("count"))
    img = _opts(img, cmap="viridis", logz=log_counts, colorbar=True, width=size, height=size,
                tools=["hover"], title=title, clipping_colors={"NaN": "white"})
    one = _opts(hv.Curve(([lo, hi], [lo, hi]), t_dim, p_dim), color="red", line_width=2)
    main = img * one

    def side_panel(prefix, kdim, invert):
        x = stats[stats[f"{prefix}_count"].dims[0]].values  # pred_bin or true_bin centres
        mean = stats[f"{prefix}_mean"].values
        ok = np.isfinite(mean)
        if statistic == "percentiles":
            pct = stats[f"{prefix}_percentiles"].values
            lo_b, hi_b = pct[:, 0], pct[:, -1]
        else:
            err = stats[f"{prefix}_{statistic}"].values
            lo_b, hi_b = mean - err, mean + err
        band = hv.Area((x[ok], lo_b[ok], hi_b[ok]), kdims=[kdim],
                       vdims=[r_dim, hv.Dimension(f"{r_dim.name} high")])
        band = _opts(band, color="gray", alpha=0.35, line_alpha=0, invert_axes=invert)
        curve = _opts(hv.Curve((x[ok], mean[ok]), kdim, r_dim), color="black", line_width=2,
                      invert_axes=invert, tools=["hover"])
        zero = _opts(hv.Curve(([lo, hi], [0.0, 0.0]), kdim, r_dim), color="red", line_dash="dashed",
                     invert_axes=invert)
        # three ticks on the narrow residual axis, so its labels do not overlap
        dims = dict(width=side, height=size, xticks=3) if invert else dict(width=size, height=side,
                                                                          yticks=3)
        name = "μ" if prefix == "mu" else "ξ: r per true bin"
        return (band * zero * curve).opts(title=name, backend=_B, **dims)

    mu = side_panel("mu", p_dim, True)
    xi = side_panel("xi", t_dim, False)
    return hv.Layout([mu, main, hv.Empty(), xi]).cols(2)


def totals_panels(mass_stats: xr.Dataset, ml_stats: xr.Dataset, *, size: int = 340,
                  side: int = 140) -> hv.Layout:
    """Fig. 6: total mass (left) and total M/L (right) residual panels.

    Parameters
    ----------
    mass_stats, ml_stats : xarray.Dataset
        :func:`~pidoc_core.evaluation.residual_statistics` of log10 total mass (Msun) and of
        log10 total M/L (Msun/Lsun) per map.

    Returns
    -------
    holoviews.Layout
        Four columns: mass [mu, histogram, empty, xi] and M/L likewise, side by side.
    """
    a = residual_panel(mass_stats, label="log10 M_tot", units="Msun", size=size, side=side,
                       title="total mass")
    b = residual_panel(ml_stats, label="log10 M/L_V", units="Msun/Lsun", size=size, side=side,
                       title="total M/L")
    a_items, b_items = list(a), list(b)
    return hv.Layout(a_items[:2] + b_items[:2] + a_items[2:] + b_items[2:]).cols(4)


# ---------------------------------------------------------------------------------------------
# Fig. 7
# ---------------------------------------------------------------------------------------------


def profile_panels(profiles: xr.Dataset, *, samples=None, labels: Iterable[str] | None = None,
                   width: int = 420, height: int = 320) -> hv.Layout:
    """Fig. 7: mass and M/L radial profiles (true solid, predicted dashed) with their ratios.

    Parameters
    ----------
    profiles : xarray.Dataset
        From :func:`pidoc_core.evaluation.radial_profiles`.
    samples : sequence of int, optional
        Positions along ``sample`` to draw (default: up to the first 4).
    labels : iterable of str, optional
        Legend labels, one per drawn sample.
    width, height : int
        Size of the profile panels (ratio panels are half as high).

    Returns
    -------
    holoviews.Layout
        Two columns: [mass profiles, M/L profiles, mass ratio, M/L ratio]; profiles on a log
        axis, mass in Msun per pixel, M/L in Msun/Lsun, ratio = true / predicted.
    """
    n = profiles.sizes["sample"]
    samples = list(range(min(n, 4))) if samples is None else list(samples)
    labels = list(labels) if labels is not None else [f"map {i}" for i in samples]
    r = hv.Dimension("radius", label="r", unit="arcsec")
    dims = {
        "mass": hv.Dimension("mass", label="M(r) per pixel", unit="Msun"),
        "ml": hv.Dimension("ml", label="M/L_V", unit="Msun/Lsun"),
        "mass_ratio": hv.Dimension("mass_ratio", label="true / predicted"),
        "ml_ratio": hv.Dimension("ml_ratio", label="true / predicted"),
    }
    radius = profiles.radius.values
    panels = {k: [] for k in ("mass", "ml", "mass_ratio", "ml_ratio")}
    for k, (i, lab) in enumerate(zip(samples, labels)):
        color = PALETTE[k % len(PALETTE)]
        p = profiles.isel(sample=i)
        for q in ("mass", "ml"):
            t, pr = p[f"{q}_true"].values, p[f"{q}_pred"].values
            ok = np.isfinite(t) & np.isfinite(pr) & (t > 0) & (pr > 0)
            panels[q].append(_opts(hv.Curve((radius[ok], t[ok]), r, dims[q], label=f"{lab} true"),
                                   color=color, line_width=2))
            panels[q].append(_opts(hv.Curve((radius[ok], pr[ok]), r, dims[q],
                                            label=f"{lab} predicted"),
                                   color=color, line_width=2, line_dash="dashed"))
            rat = p[f"{q}_ratio"].values
            okr = np.isfinite(rat)
            panels[f"{q}_ratio"].append(_opts(hv.Curve((radius[okr], rat[okr]), r,
                                                       dims[f"{q}_ratio"], label=lab),
                                              color=color, line_width=2))
    out = []
    for q, title in (("mass", "mass profile, eq. (3)"), ("ml", "M/L profile")):
        out.append(hv.Overlay(panels[q]).opts(logy=True, width=width, height=height, title=title,
                                              legend_position="top_right", backend=_B))
    for q in ("mass_ratio", "ml_ratio"):
        unity = _opts(hv.HLine(1.0), color="gray", line_dash="dotted")
        out.append((hv.Overlay(panels[q]) * unity).opts(width=width, height=height // 2,
                                                        show_legend=False, backend=_B))
    return hv.Layout(out).cols(2).opts(shared_axes=False, backend=_B)


# ---------------------------------------------------------------------------------------------
# Fig. 9
# ---------------------------------------------------------------------------------------------


def distance_pdf_plot(pdfs: xr.Dataset, *, width: int = 600, height: int = 350) -> hv.Overlay:
    """Fig. 9: PDF of the predicted distance for each true distance, with the true distances.

    Parameters
    ----------
    pdfs : xarray.Dataset
        From :func:`pidoc_core.evaluation.distance_pdfs`.

    Returns
    -------
    holoviews.Overlay
        One :class:`holoviews.Histogram` (kpc^-1) and one :class:`holoviews.VLine` at the true
        distance per true distance, in matching colours.
    """
    edges = np.concatenate([pdfs.distance_lower.values, pdfs.distance_upper.values[-1:]])
    d = hv.Dimension("distance", label="predicted distance", unit="kpc")
    v = hv.Dimension("pdf", label="PDF", unit="kpc^-1")
    items = []
    for k, g in enumerate(pdfs.true_distance.values):
        color = PALETTE[k % len(PALETTE)]
        items.append(_opts(hv.Histogram((edges, pdfs.pdf.isel(true_distance=k).values),
                                        kdims=[d], vdims=[v], label=f"{g:g} kpc"),
                           fill_color=color, line_color=color, fill_alpha=0.3))
        items.append(_opts(hv.VLine(float(g)), color=color, line_width=2))
    return hv.Overlay(items).opts(width=width, height=height, title="predicted distance PDFs",
                                  legend_position="top_right", backend=_B)


def table(df, *, width: int = 900, height: int | None = None) -> hv.Table:
    """A :class:`holoviews.Table` of a pandas DataFrame (index kept as columns), e.g. a summary."""
    import pandas as pd

    if isinstance(df, xr.Dataset):
        df = df.to_dataframe()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table needs a pandas DataFrame or xarray Dataset, got {type(df)}")
    flat = df.reset_index() if df.index.name is not None or isinstance(df.index, pd.MultiIndex) \
        else df
    height = height or min(40 + 25 * len(flat), 800)
    return _opts(hv.Table(flat), width=width, height=height)


# ---------------------------------------------------------------------------------------------
# HTML report
# ---------------------------------------------------------------------------------------------


def _as_bokeh(obj):
    from bokeh.model import Model

    if isinstance(obj, Model):
        return obj
    return hv.render(obj, backend=_B)


def _inline_resources(models) -> str:
    """Bokeh's JS and CSS for ``models``, all inline.

    ``bokeh.resources.INLINE`` inlines BokehJS and the extensions of the models used, but still
    lists as ``<script src>`` the ``__javascript__`` files of every *registered* model class --
    with Panel imported, its ESM shim, which is relative to a Panel server and would not load from
    a file. Only files needed by the models actually in the report matter; none of the HoloViews /
    Bokeh models does need one, and a model that would is refused rather than half-loaded.
    """
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    needed = set()
    for m in models:
        for obj in m.references():
            extra = getattr(type(obj), "__javascript__", None)
            if extra:
                needed.update([extra] if isinstance(extra, str) else list(extra))
    if needed:
        raise ValueError(f"the report's Bokeh models need external JavaScript {sorted(needed)}; "
                         "a self-contained report cannot include them")
    bundle = bundle_for_objs_and_resources(models, INLINE)
    css = "\n".join(f"<style>\n{raw}\n</style>" for raw in bundle.css_raw)
    js = "\n".join(f'<script type="text/javascript">\n{raw}\n</script>' for raw in bundle.js_raw)
    return f"{css}\n{js}"


def _table_html(df):
    return df.to_html(classes="pidoc-table", float_format=lambda v: f"{v:.4g}", na_rep="",
                      border=0)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table.pidoc-table { border-collapse: collapse; font-size: 0.9em; }
table.pidoc-table th, table.pidoc-table td { padding: 2px 8px; border-bottom: 1px solid #eee;
  text-align: right; }
table.pidoc-table th { background: #f4f4f4; }
.pidoc-figure { margin: 1em 0; }
"""


def html_report(sections, path, *, title: str = "pi-DOC evaluation report") -> Path:
    """Write one self-contained HTML file of figures, tables and text; nothing loads from a CDN.

    Parameters
    ----------
    sections : mapping or iterable of (heading, content)
        Ordered sections. ``content`` is a HoloViews object or a Bokeh model (rendered with
        Bokeh), a pandas DataFrame or xarray Dataset (an HTML table), a string (escaped text;
        blank lines separate paragraphs) or a list of these.
    path : path-like
        Output file; written to a temporary file in the same directory and renamed into place.
    title : str
        Page title and top heading.

    Returns
    -------
    pathlib.Path
        The written file. Bokeh's JavaScript and CSS are inlined (``bokeh.resources.INLINE``), so
        the report opens offline (see :func:`_inline_resources`).
    """
    import pandas as pd
    from bokeh.embed import components
    items = list(sections.items()) if isinstance(sections, Mapping) else list(sections)
    blocks: list[tuple[str, object]] = []  # ("model", index) | ("html", str)
    models = []
    body = []
    for entry in items:
        try:
            heading, content = entry
        except (TypeError, ValueError):
            raise TypeError(f"each section must be (heading, content), got {entry!r}") from None
        contents = content if isinstance(content, (list, tuple)) else [content]
        section = [("html", f"<h2>{html.escape(str(heading))}</h2>")]
        for c in contents:
            if isinstance(c, xr.Dataset):
                c = c.to_dataframe()
            if isinstance(c, pd.DataFrame):
                section.append(("html", _table_html(c)))
            elif isinstance(c, str):
                paras = [p.strip() for p in c.split("\n\n") if p.strip()]
                section.append(("html", "".join(f"<p>{html.escape(p)}</p>" for p in paras)))
            else:
                try:
                    models.append(_as_bokeh(c))
                except Exception as exc:
                    raise TypeError(f"section {heading!r}: cannot render {type(c).__name__} "
                                    f"with Bokeh: {exc}") from exc
                section.append(("model", len(models) - 1))
        blocks.extend(section)
    script, divs = components(models) if models else ("", ())
    for kind, val in blocks:
        body.append(f'<div class="pidoc-figure">{divs[val]}</div>' if kind == "model" else val)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n"
        f"{_inline_resources(models)}\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        + "\n".join(body) + f"\n{script}\n</body>\n</html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def notebook_extension() -> None:
    """Set up HoloViews and Panel in a notebook that must work offline.

    Bokeh's and Panel's JavaScript and stylesheets go inside the notebook (``inline=True``), and
    every HoloViews object is displayed through Panel: HoloViews' own notebook display embeds
    the links of Panel's stylesheets on cdn.holoviz.org, which Panel's display replaces with
    the stylesheets themselves. Outside IPython only the extensions are loaded.
    """
    import panel as pn

    hv.extension(_B, inline=True)
    pn.extension(inline=True)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Panel
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.mimebundle_formatter
    formatter.for_type(hv.core.Dimensioned, lambda obj: pn.panel(obj)._repr_mimebundle_())
