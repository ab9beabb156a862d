"""Plot builders: HoloViews structure, Bokeh rendering without a browser, the offline HTML report."""

import re
import subprocess
import sys

import holoviews as hv
import numpy as np
import pytest
from bokeh.models import GlyphRenderer, LogScale, Span
from bokeh.models import Image as BkImage
from bokeh.models import Line as BkLine
from bokeh.models import Plot, Quad

from pidoc_core import evaluation as ev
from pidoc_core import plots

from .test_evaluation import synthetic_dataset


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(4)


@pytest.fixture(scope="module")
def pred(ds):
    rng = np.random.default_rng(0)
    return (ds.mass + rng.normal(0, 0.05, ds.mass.shape)).astype(np.float32)


def figures(obj):
    return list(hv.render(obj, backend="bokeh").select({"type": Plot}))


def glyphs(fig, kind):
    """Main glyphs of a figure's renderers (not their selection/muted variants)."""
    return [r.glyph for r in fig.renderers
            if isinstance(r, GlyphRenderer) and isinstance(r.glyph, kind)]


def test_import_does_not_call_extension():
    code = ("import holoviews as hv\n"
            "def boom(*a, **k): raise RuntimeError('hv.extension called')\n"
            "hv.extension = boom\n"
            "import pidoc_core.plots\n"
            "print(hv.Store.current_backend)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bokeh"


def test_mosaic(ds, pred):
    lay = plots.mosaic(ds.flux, ds.mass, pred, labels=list("ABCD"), true_age=ds.time.values,
                       pred_age=ds.time.values + 0.5, true_distance=ds.distance.values)
    items = list(lay)
    assert len(items) == 16 and all(isinstance(i, hv.Image) for i in items)
    assert items[0].kdims[0].name == "x" and items[0].kdims[0].unit == "arcsec"
    assert [i.vdims[0].name for i in items[::4]] == ["flux", "mass", "mass", "residual"]
    # bounds in arcsec from the field centre; row 0 of the array is y = -19.875"
    l, b, r, t = items[4].bounds.lbrt()
    assert (l, b, r, t) == pytest.approx((-20, -20, 20, 20))
    # row 0 of a map is the bottom row, y = -19.875" (as in the imager)
    row0 = np.full((1, 160, 160), -3.0)
    row0[0, 0] = 1.0
    img = list(plots.mosaic(row0, row0, row0))[1]
    assert img[0.0, -19.9] == 1.0 and img[0.0, 19.9] == -3.0
    np.testing.assert_allclose(items[8].dimension_values(2, flat=False),
                               np.asarray(pred[0]), rtol=1e-6)
    np.testing.assert_allclose(items[12].dimension_values(2, flat=False),
                               np.asarray(pred[0] - ds.mass[0]), atol=1e-6)
    assert "15 kpc" in items[4].opts.get().kwargs["title"]
    figs = figures(lay)
    assert len(figs) == 16
    assert all(len(glyphs(f, BkImage)) == 1 for f in figs)
    # the two mass rows share one colour range; the residual row is symmetric about 0
    mapper = {f.title.text: glyphs(f, BkImage)[0].color_mapper for f in figs}
    mass_rows = {(m.low, m.high) for t, m in mapper.items() if " true" in t or "pi-DOC" in t}
    assert len([t for t in mapper if " true" in t or "pi-DOC" in t]) == 8
    assert len(mass_rows) == 1
    resid = [m for t, m in mapper.items() if t.endswith("residual")]
    assert len(resid) == 4 and all(m.low == -m.high for m in resid)


def test_residual_panel_fig5(ds, pred):
    st = ev.pixel_residual_statistics(ds.mass, pred)
    lay = plots.residual_panel(st)
    items = list(lay)
    assert len(items) == 4 and isinstance(items[2], hv.Empty)
    main = items[1]
    assert isinstance(main, hv.Overlay)
    img, one = main.get(0), main.get(1)
    assert isinstance(img, hv.Image) and isinstance(one, hv.Curve)
    assert [d.label for d in img.kdims] == ["true log10 mass per pixel",
                                           "predicted log10 mass per pixel"]
    assert img.dimension_values("count", flat=False).shape == st.histogram.shape
    mu, xi = items[0], items[3]
    assert mu.get(2).kdims[0].name.startswith("predicted ")
    assert xi.get(2).kdims[0].name.startswith("true ")
    assert mu.get(2).opts.get().kwargs.get("invert_axes") is True
    figs = figures(lay)
    assert len(figs) == 3
    by_title = {f.title.text: f for f in figs}
    fmain = by_title[""]
    fmu, fxi = by_title["μ"], by_title["ξ: r per true bin"]
    assert fmain.y_range is fmu.y_range  # mu shares the predicted axis
    assert fmain.x_range is fxi.x_range  # xi shares the true axis
    assert len(glyphs(fmain, BkImage)) == 1
    assert any(g.line_color == "red" for g in glyphs(fmain, BkLine))  # one-to-one line


def test_totals_and_age_panels(ds, pred):
    tot = ev.map_totals(ds.mass, pred, ds.flux, ds.distance.values)
    sm = ev.residual_statistics(np.log10(tot.mass_true), np.log10(tot.mass_pred))
    sl = ev.residual_statistics(np.log10(tot.ml_true), np.log10(tot.ml_pred))
    lay = plots.totals_panels(sm, sl)
    assert len(lay) == 8
    figs = figures(lay)
    assert len(figs) == 6
    # Fig. 6: mass and M/L panels have their own axes (the mass range is not squashed by M/L's)
    mains = [f for f in figs if f.title.text in ("total mass", "total M/L")]
    assert len(mains) == 2 and mains[0].x_range is not mains[1].x_range
    age = ev.residual_statistics(ds.time.values, ds.time.values + 0.3, kind="linear",
                                 units="Gyr", quantity="age")
    fig8 = plots.residual_panel(age, statistic="mae")
    assert list(fig8)[1].get(0).kdims[0].label == "true age"
    assert len(figures(fig8)) == 3


def test_profile_panels_fig7(ds, pred):
    prof = ev.radial_profiles(ds.mass, pred, ds.flux, ds.distance.values, ds.shift_x.values,
                              ds.shift_y.values)
    lay = plots.profile_panels(prof, labels=list("ABCD"))
    items = list(lay)
    assert len(items) == 4
    assert len(items[0]) == 8  # 4 true + 4 predicted
    assert all(isinstance(c, hv.Curve) for c in items[0])
    assert items[0].get(0).kdims[0].unit == "arcsec"
    figs = figures(lay)
    assert len(figs) == 4
    fmass = next(f for f in figs if f.title.text.startswith("mass profile"))
    assert isinstance(fmass.y_scale, LogScale)
    lines = glyphs(fmass, BkLine)
    assert len(lines) == 8
    assert sum(bool(g.line_dash) for g in lines) == 4  # the predicted curves are dashed


def test_distance_pdfs_fig9():
    rng = np.random.default_rng(0)
    true = np.repeat([15.0, 30.0, 60.0, 80.0], 200)
    predd = true + rng.normal(3, 6, true.size)
    fig = plots.distance_pdf_plot(ev.distance_pdfs(true, predd))
    hists = [e for e in fig if isinstance(e, hv.Histogram)]
    vlines = [e for e in fig if isinstance(e, hv.VLine)]
    assert len(hists) == 4 and len(vlines) == 4
    assert sorted(v.data for v in vlines) == [15.0, 30.0, 60.0, 80.0]
    (f,) = figures(fig)
    assert len(glyphs(f, Quad)) == 4
    assert len(list(f.select({"type": Span}))) == 4


def test_table():
    df = ev.distance_table([15, 15, 30], [16, 14, 29]).to_dataframe()
    t = plots.table(df)
    assert isinstance(t, hv.Table) and len(t) == 2
    assert "true_distance" in [d.name for d in t.dimensions()]


def test_html_report_self_contained(tmp_path, ds, pred):
    st = ev.pixel_residual_statistics(ds.mass, pred)
    path = tmp_path / "sub" / "report.html"
    path.parent.mkdir()
    path.write_text("old")
    out = plots.html_report(
        [("Maps (Fig. 4)", plots.mosaic(ds.flux[:2], ds.mass[:2], pred[:2])),
         ("Pixels (Fig. 5)", [plots.residual_panel(st), "Residuals <are> predicted - true."]),
         ("Table 2", ev.distance_table([15, 30], [16, 29]))],
        path, title="test report")
    assert out == path
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", text)  # no external script at all
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']https?:", text)
    assert "BEGIN bokeh.min.js" in text  # BokehJS inlined
    assert "Bokeh.embed" in text or "embed_items" in text
    assert text.count('class="pidoc-figure"') == 2
    assert "Residuals &lt;are&gt; predicted - true." in text
    assert "<table" in text and "true_distance" in text
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left


def test_html_report_rejects_unknown_content(tmp_path):
    with pytest.raises(TypeError, match="cannot render"):
        plots.html_report([("bad", object())], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
