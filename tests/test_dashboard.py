"""The dashboard without a browser: every control changes the outputs it should."""


import numpy as np
import pytest

from .conftest import plummer_snapshot


class FakeRun:
    """A run of Plummer snapshots whose size grows with time (a stand-in source)."""

    def __init__(self, name, scale, times=(1.0, 6.0, 12.0)):
        self.name, self.scale, self.times = name, scale, np.array(times)

    def snapshot(self, time_gyr):
        return plummer_snapshot(3000, scale_pc=self.scale * (1 + time_gyr / 12), seed=int(time_gyr),
                                time=time_gyr, name=self.name)


@pytest.fixture(scope="module")
def model():
    from pidoc_core.model import PiDOC

    return PiDOC.build(
        mass=dict(filters=(4, 8, 8, 8), bottleneck_filters=8),
        age_distance=dict(filters=(4, 4, 4, 4)),
        standardisation=dict(flux_mean=-5.38, flux_std=0.97, mass_mean=-0.85, mass_std=0.45,
                             distance_age_mean=29.63, distance_age_std=32.40))


@pytest.fixture()
def view(model):
    from app.views.explore import ExploreView

    # "A analogue" dissolves earlier: its times end at 6 Gyr
    sources = {"A analogue": FakeRun("A analogue", 0.5, times=(1.0, 3.0, 6.0)),
               "MW15 analogue": FakeRun("MW15 analogue", 1.0)}
    return ExploreView(sources, model, upsilon=2.0)


def image(view, key):
    return view.plots.map_sources[key].data["image"][0]


def snapshot_of(view):
    prof = view.plots.prof_src.data
    return {
        "flux": image(view, "flux").copy(),
        "true": image(view, "true").copy(),
        "pred": image(view, "pred").copy(),
        "resid": image(view, "residual").copy(),
        "hist": np.nan_to_num(view.plots.hist_src.data["image"][0]).copy(),
        "profile": np.nan_to_num(np.asarray(prof["m_true"])).copy(),
        "ml_pred": np.nan_to_num(np.asarray(prof["ml_pred"])).copy(),
        "numbers": view.numbers_text(),
        "status": view.status.object,
    }


def changed(before, after):
    return {k for k in before if not (np.array_equal(before[k], after[k]) if not isinstance(
        before[k], str) else before[k] == after[k])}


def test_initial_state_shows_the_default_run(view):
    assert view.run == "MW15 analogue"
    assert view.time == 12.0
    assert "MW15 analogue" in view.numbers_text() and "12 Gyr" in view.numbers_text()
    # inside the training conditions (the untrained test model may still predict an
    # unphysical age, which the status says in words)
    assert "Outside the training" not in view.status.object
    assert view.status.alert_type == ("danger" if view.last.unphysical else "success")
    assert np.isfinite(image(view, "flux")).all()
    assert image(view, "flux").dtype == np.float32


@pytest.mark.parametrize(
    ("widget", "value", "must_change"),
    [
        ("run", "A analogue", {"flux", "true", "pred", "profile", "numbers"}),
        ("time", 1.0, {"flux", "true", "pred", "profile", "numbers"}),
        ("distance", 40.0, {"flux", "true", "pred", "resid", "profile", "numbers"}),
        ("psf", 1.5, {"flux", "pred", "numbers"}),
        ("shift_x", 3.0, {"flux", "true", "pred", "resid"}),
        ("shift_y", -2.5, {"flux", "true", "pred", "resid"}),
        ("rotation", "90", {"flux", "true", "pred", "resid"}),
    ],
)
def test_each_control_updates_the_views(view, widget, value, must_change):
    before = snapshot_of(view)
    setattr(view, widget, value)
    after = snapshot_of(view)
    assert must_change <= changed(before, after)


def test_psf_leaves_the_true_mass_map_alone(view):
    before = image(view, "true").copy()
    view.psf = 1.5
    np.testing.assert_array_equal(image(view, "true"), before)


def test_quarter_turn_rotates_the_maps(view):
    before = image(view, "true").copy()
    view.rotation = "90"
    np.testing.assert_allclose(image(view, "true"), np.rot90(before), atol=1e-5)


def test_free_angle_is_enabled_only_for_free_rotation(view):
    widget = view.controls()._widgets["angle"]
    assert widget.disabled
    before = image(view, "true").copy()
    widget.value = 33  # what a page could send while the widget is disabled: ignored, no error
    np.testing.assert_array_equal(image(view, "true"), before)
    view.rotation = "free"
    assert not widget.disabled
    view.angle = 33
    assert not np.array_equal(image(view, "true"), before)
    assert view.status.alert_type in ("warning", "danger") and "rotation 33 deg" in view.status.object


def test_out_of_range_settings_are_flagged(view):
    view.distance = 140
    assert view.status.alert_type in ("warning", "danger")
    assert "distance 140 kpc is outside the trained 10-100 kpc" in view.status.object
    view.distance = 50
    assert "Outside" not in view.status.object
    view.psf = 2.0
    assert "PSF FWHM 2&quot; is outside the trained 0.5-1.5&quot;" in view.status.object


def test_numbers_compare_pidoc_with_the_baseline(view):
    t = view.last.totals
    assert t["ml_baseline"] == pytest.approx(2.0, rel=1e-6)  # the constant-M/L baseline
    assert t["mass_true_msun"] == pytest.approx(view.last.observation.attrs["field_mass_msun"])
    assert "constant M/L" in view.numbers_text() and "Distance (kpc)" in view.numbers_text()


def test_sessions_do_not_share_state(model):
    from app.views.explore import ExploreView

    sources = {"MW15 analogue": FakeRun("MW15 analogue", 1.0)}
    a = ExploreView(sources, model, upsilon=2.0)
    b = ExploreView(sources, model, upsilon=2.0)
    a.distance = 80
    assert b.distance == 15
    assert not np.array_equal(image(a, "flux"), image(b, "flux"))


def synthetic_aggregates(n=200, seed=0):
    """Aggregates shaped like pidoc_core.report's, for a perfect and a biased mass model."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    distance = rng.choice([15.0, 30.0, 60.0, 80.0], n)
    time = rng.uniform(0.5, 14, n)
    mass_true = 10 ** rng.uniform(3, 4.3, n)
    lum = mass_true / rng.uniform(1, 3, n)
    mass_pred = np.stack([mass_true, mass_true * 10**0.1])
    edges = np.round(np.arange(-3, 2.0001, 0.1), 10)
    centres = 0.5 * (edges[1:] + edges[:-1])
    nb, groups_d, t_edges = centres.size, np.array([15.0, 30.0, 60.0, 80.0]), np.arange(0, 15.0)
    hist = np.zeros((2, 4, 14, nb, nb), np.int32)
    idx = np.arange(10, 40)
    hist[0, :, :, idx, idx] = 5  # perfect model: on the diagonal
    hist[1, :, :, idx, idx + 1] = 5  # +0.1 dex
    side = np.zeros((2, 4, 14, nb))
    count = side.copy()
    count[:, :, :, idx] = 5
    total = side.copy()
    total[1, :, :, idx] = 0.5
    return xr.Dataset(
        {
            "mass_true": ("sample", mass_true), "luminosity_v": ("sample", lum),
            "ml_true": ("sample", mass_true / lum),
            "mass_pred": (("model", "sample"), mass_pred),
            "ml_pred": (("model", "sample"), mass_pred / lum),
            "pixel_histogram": (("model", "distance_group", "time_group", "true_bin", "pred_bin"),
                                hist),
            "mu_count": (("model", "distance_group", "time_group", "pred_bin"), count),
            "mu_sum": (("model", "distance_group", "time_group", "pred_bin"), total),
            "xi_count": (("model", "distance_group", "time_group", "true_bin"), count),
            "xi_sum": (("model", "distance_group", "time_group", "true_bin"), total),
            "time": ("sample", time), "distance": ("sample", distance),
            "run": ("sample", np.array(["MW15 analogue"] * n, dtype=object)),
            "age_pred": ("sample", time + rng.normal(0, 1, n)),
            "distance_pred": ("sample", distance + rng.normal(2, 5, n)),
        },
        coords={"model": ["pi-DOC", "constant M/L"], "distance_group": groups_d,
                "time_group": 0.5 * (t_edges[1:] + t_edges[:-1]),
                "time_lower": ("time_group", t_edges[:-1]), "time_upper": ("time_group", t_edges[1:]),
                "true_bin": centres, "pred_bin": centres},
    )


def test_testset_tab_filters_and_reports_the_papers_statistics():
    from app.views.testset import TestSetView

    view = TestSetView(synthetic_aggregates())
    view.panel()
    panes = view.panes
    assert "200 test maps" in panes["header"].object
    view.distances = [15.0]  # the drawn page follows the filter
    n_near = int(panes["header"].object.split("**")[1].split()[0])
    assert 0 < n_near < 200 and n_near == view.samples().size
    view.distances = []
    assert panes["alert"].visible and not panes["body"].visible
    assert panes["alert"].object == "No test map matches this filter."
    view.distances = [15.0, 30.0]
    assert not panes["alert"].visible and panes["body"].visible
    # the perfect model has zero total-mass error; the +0.1 dex one 100 (1 - 10^-0.1) = 20.6 %
    perfect = view.tables("pi-DOC", np.arange(200))[0]
    biased = view.tables("constant M/L", np.arange(200))[0]
    assert perfect.iloc[0, 1] == pytest.approx(0.0, abs=1e-9)
    assert biased.iloc[0, 1] == pytest.approx(100 * (1 - 10**-0.1), abs=0.05)
    # Fig. 5's mu panel, as drawn: mean residual 0 for the perfect model, +0.1 dex (0.5 / 5) for
    # the biased one, over the pixels of the filtered distances
    for model, expected in (("pi-DOC", 0.0), ("constant M/L", 0.1)):
        view.model = model
        drawn = view.figures["pixels"].mu_src.data["mean"]
        assert len(drawn) == 30 and np.max(np.abs(np.asarray(drawn) - expected)) < 1e-9
        assert panes["headline"].object.iloc[0, 1] == pytest.approx(
            view.tables(model, view.samples())[0].iloc[0, 1])


def test_testset_filter_says_it_is_updating_before_it_redraws(monkeypatch):
    import panel as pn

    from app.views.testset import BUSY_TEXT, TestSetView

    view = TestSetView(synthetic_aggregates())
    view.panel()
    scheduled = []
    monkeypatch.setattr(pn.state, "execute", lambda fn, schedule=False: scheduled.append(fn))
    view.distances = [15.0]
    assert view.panes["header"].object == BUSY_TEXT and len(scheduled) == 1  # sent first
    scheduled[0]()  # the server's next tick
    assert f"**{view.samples().size:,} test maps**" in view.panes["header"].object
    monkeypatch.setattr(view, "statistics", lambda: 1 / 0)
    view.distances = [30.0]
    with pytest.raises(ZeroDivisionError):
        scheduled[1]()
    assert view.panes["header"].object == ("**Could not apply this filter**: ZeroDivisionError: "
                                           "division by zero")


def test_testset_figures_are_the_reports():
    """The drawn figures hold the report's statistics: Fig. 9 in its 2-kpc bins, each distance
    in its own colour whatever the selection; Fig. 6 and Fig. 8 with their own axes and units."""
    from app.views.testset import DISTANCE_BIN_KPC, TestSetView
    from pidoc_core.evaluation import distance_pdfs, residual_statistics

    agg = synthetic_aggregates()
    view = TestSetView(agg)
    view.panel()
    pdf = view.figures["distance_pdf"]
    ref = distance_pdfs(agg.distance.values, agg.distance_pred.values, width=2.0)
    src = pdf.sources[15.0].data
    assert DISTANCE_BIN_KPC == 2.0 and np.allclose(np.subtract(src["right"], src["left"]), 2.0)
    np.testing.assert_allclose(src["top"], ref.pdf.isel(true_distance=0).values)
    colour = pdf.renderers[60.0].glyph.fill_color
    view.distances = [15.0, 60.0]
    assert pdf.renderers[60.0].glyph.fill_color == colour and pdf.renderers[60.0].visible
    assert not pdf.renderers[30.0].visible and not pdf.lines[30.0].visible
    assert [i.visible for i in pdf.legend.items] == [True, False, True, False]
    # Fig. 6: the histogram of log10 field mass, its ranges the statistics' edges
    samples = view.samples()
    mass, ml = view.total_statistics("pi-DOC", samples)
    drawn = view.figures["mass"]
    np.testing.assert_array_equal(np.nan_to_num(drawn.hist_src.data["image"][0]),
                                  mass.histogram.values)
    assert drawn.figures["main"].x_range.start == pytest.approx(float(mass.true_lower[0]))
    assert view.figures["ml"].figures["main"].x_range.end == pytest.approx(
        float(ml.true_upper[-1]))
    assert drawn.figures["main"].xaxis.axis_label == "true log10 field mass (Msun)"
    assert view.figures["ml"].figures["main"].yaxis.axis_label == (
        "predicted log10 field M/L_V (Msun/Lsun)")
    # Fig. 8: the age band is +- the MAE per predicted-age bin
    age = residual_statistics(agg.time.values[samples], agg.age_pred.values[samples], width=1.0,
                              kind="linear")
    ok = np.isfinite(age.mu_mean.values)
    band = view.figures["age"].mu_src.data
    np.testing.assert_allclose(np.subtract(band["hi"], band["mean"]), age.mu_mae.values[ok])
    assert view.figures["age"].figures["mu"].xaxis.axis_label == "r (Gyr)"
    named = TestSetView(agg.assign_coords(model=["pidoc", "constant_ml"]))
    assert named.param.model.objects == {"π-DOC": "pidoc", "constant M/L": "constant_ml"}


def test_slider_ranges_come_from_the_training_grid(model):
    from app.views.explore import ExploreView
    from pidoc_core.exploration import setting_bounds

    grid = {"distance_kpc": (20.0, 40.0), "psf_fwhm_arcsec": (0.6, 1.2), "shift_max_arcsec": 2.0}
    view = ExploreView({"MW15 analogue": FakeRun("MW15 analogue", 1.0)}, model, upsilon=2.0,
                       grid=grid)
    bounds = setting_bounds(grid)
    assert view.param.distance.bounds == bounds["distance_kpc"] == (10.0, 60.0)
    assert view.param.psf.bounds == bounds["psf_fwhm_arcsec"]
    assert view.param.shift_x.bounds == view.param.shift_y.bounds == (-3.2, 3.2)


def test_numbers_and_profiles_are_the_cores(view):
    """The table shows pidoc_core.exploration.numbers_table; the profile ratio is true /
    predicted, as pidoc_core.evaluation.radial_profiles and the report define it."""
    from pidoc_core.exploration import numbers_table

    view.distance = 40
    table = numbers_table(view.last)
    text = view.numbers_text()
    for row in table.index:
        assert row in text
    assert f"Field mass (Msun) | {table.loc['Field mass (Msun)', 'true']:,.0f} | " in text
    assert f"{table.loc['Field mass (Msun)', 'π-DOC']:,.0f}" in text
    assert "Distance (kpc) | 40 | " in text  # the true distance
    prof = view.last.profiles
    shown = np.asarray(view.plots.prof_src.data["m_ratio"])
    np.testing.assert_allclose(shown, prof.mass_true.values / prof.mass_pred.values, rtol=1e-6)
    np.testing.assert_allclose(shown, prof.mass_ratio.values, rtol=1e-6)


def test_changing_run_keeps_the_time_inside_the_runs_times(view):
    assert view.time == 12.0
    view.run = "A analogue"  # ends at 6 Gyr
    assert view.time == 6.0 and view.param.time.objects == [1.0, 3.0, 6.0]
    assert "Cannot observe" not in view.status.object, view.status.object
    assert "A analogue" in view.numbers_text() and "6 Gyr" in view.numbers_text()
    view.time = 3.0
    assert "3 Gyr" in view.numbers_text()
    view.run = "MW15 analogue"  # 3 Gyr is not one of its times: the nearest, 1 Gyr
    assert view.time == 1.0 and "MW15 analogue at 1 Gyr" in view.numbers_text()


def test_unphysical_predictions_are_flagged_in_words(view, monkeypatch):
    import dataclasses

    from app.views import explore as explore_module

    real = explore_module.explore

    def negative_age(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), age_gyr=-2.8,
                                   unphysical=["the predicted age, -2.8 Gyr, is negative"])

    monkeypatch.setattr(explore_module, "explore", negative_age)
    view.distance = 20
    assert view.status.alert_type == "danger"
    assert "Unphysical" in view.status.object and "-2.8 Gyr" in view.status.object


def test_colour_scale_fixed_or_automatic(view):
    from app.views.explore_plots import FIXED_RANGES

    mass = view.plots.mappers["mass"]
    assert (mass.low, mass.high) == FIXED_RANGES["mass"]
    view.colour_scale = "automatic"
    shown = np.concatenate([image(view, "true").ravel(), image(view, "pred").ravel()])
    assert mass.low == pytest.approx(np.percentile(shown, 1.0), rel=1e-5)
    resid = view.plots.mappers["residual"]
    assert resid.low == -resid.high and len(resid.palette) == 256


def test_pin_compares_and_exports_carry_the_setup(view):
    from astropy.io import fits

    view.pin_current()
    pinned_mass = view.last.totals["mass_pidoc_msun"]
    view.distance = 60
    assert "π-DOC (pinned)" in view.numbers_text()
    assert f"{pinned_mass:,.0f}" in view.numbers_text()
    assert np.isfinite(np.asarray(view.plots.prof_src.data["m_pinned"], float)).any()
    hdul = fits.open(view.export_fits())
    assert hdul[0].header["DISTANCE"] == 60 and hdul[0].header["PSF_FWHM"] == 1.0
    np.testing.assert_array_equal(hdul["MASS_PIDOC"].data, view.last.mass_pred)
    csv = view.export_csv().getvalue().decode()
    assert "# distance_kpc = 60.0" in csv and "Field mass (Msun)" in csv
    view.clear_pin()
    assert "pinned" not in view.numbers_text()


def test_panel_builds_without_sys_path_tricks(view):
    import panel as pn

    import app

    assert app.__file__.endswith("app/__init__.py")
    layout = view.panel()
    assert isinstance(layout, pn.Row) and layout.get_root() is not None


# ------------------------------------------------------------------ mass networks and intervals
@pytest.fixture(scope="module")
def three_model():
    from .test_exploration import three_network_model

    return three_network_model()


@pytest.fixture()
def three_view(three_model):
    from app.views.explore import ExploreView

    return ExploreView({"MW15 analogue": FakeRun("MW15 analogue", 1.0)}, three_model,
                       upsilon=2.0)


def test_mass_network_selector_changes_the_network(three_view, three_model):
    from app.views.explore import NETWORK_LABELS
    from pidoc_core.exploration import explore

    view = three_view
    assert view.mass_network == "distance-aware" and view.last.mass_network == "distance-aware"
    assert "Mass: distance-aware network, given the observing distance" in view.numbers_text()
    widget = view.controls()._widgets["mass_network"]
    assert list(widget.options) == list(NETWORK_LABELS)
    aware = image(view, "pred").copy()
    snap = view._snapshot(view.run, view.time)
    for choice in ("flux-only", "distance-aware/predicted", "distance-aware"):
        view.mass_network = choice
        core = explore(snap, view.setup(), model=three_model, upsilon=2.0, mass_network=choice)
        np.testing.assert_array_equal(image(view, "pred"), core.mass_pred)
        assert view.last.mass_network == choice
        if choice == "flux-only":
            assert not np.allclose(image(view, "pred"), aware)
            assert "Mass: flux-only network (the paper's)" in view.numbers_text()
    # the widget drives the parameter
    widget.value = "flux-only"
    assert view.mass_network == "flux-only" and view.last.mass_network == "flux-only"


def test_intervals_on_the_page_are_the_cores(three_view):
    from app.views.explore import _num
    from pidoc_core.exploration import numbers_table

    view = three_view
    view.distance = 40
    table = numbers_table(view.last)
    text = view.numbers_text()
    assert "68 % interval" in text and "[ ]: 68 % interval" in text
    for row in ("Field mass (Msun)", "M/L_V (Msun/Lsun)", "Age (Gyr)", "Distance (kpc)"):
        lo, hi = table.loc[row, "π-DOC 68 % low"], table.loc[row, "π-DOC 68 % high"]
        line = next(line for line in text.splitlines() if line.startswith(row))
        cells = line.split(" | ")
        assert cells[2].startswith(_num(table.loc[row, "π-DOC"]))
        assert cells[3] == f"[{_num(lo)}, {_num(hi)}]"
    lo, hi = view.last.intervals["field_mass"]
    assert lo < view.last.totals["mass_pidoc_msun"] < hi
    prof = view.plots.prof_src.data
    np.testing.assert_allclose(prof["m_lo"], view.last.profiles.mass_pred_lo.values)
    np.testing.assert_allclose(prof["m_hi"], view.last.profiles.mass_pred_hi.values)
    csv = view.export_csv().getvalue().decode()
    assert "π-DOC 68 % low" in csv and "mass_pred_lo" in csv


def test_without_intervals_or_distance_aware_network_the_page_says_so(view):
    """The module's model has the paper's flux-only network and no intervals."""
    assert view.mass_network == "distance-aware" and view.last.mass_network == "flux-only"
    assert "no distance-aware network" in view.status.object
    text = view.numbers_text()
    assert "Mass: flux-only network (the paper's) (not the one asked for" in text
    assert "this model carries no intervals" in text and "68 % interval" not in text
    assert "[" not in text.replace("[ ]", "")
    assert np.isnan(np.asarray(view.plots.prof_src.data["m_lo"], float)).all()


def test_profile_log_axes_label_decades_or_1_2_5(view):
    from app.views.explore_plots import _log_ticks

    for fig in (view.plots.mass_profile, view.plots.ml_profile):
        lo, hi = fig.y_range.start, fig.y_range.end
        ticks = fig.yaxis[0].ticker.ticks
        assert ticks == _log_ticks(lo, hi) and ticks[0] == lo and ticks[-1] == hi
        assert len(ticks) <= 7


def test_profile_legends_draw_twins_that_never_change(view):
    """Each profile legend entry is drawn from an empty twin of its line (same colour and
    dash), so the legend is not rebuilt in the browser when the profiles' data change."""
    for fig in (view.plots.mass_profile, view.plots.ml_profile):
        (legend,) = fig.legend
        shown = [r for r in fig.renderers if r.data_source is view.plots.prof_src
                 and hasattr(r.glyph, "line_dash") and r.glyph.x == "r"]
        assert [item.label.value for item in legend.items] == ["true", "π-DOC", "constant M/L",
                                                             "pinned π-DOC"]
        for item, line in zip(legend.items, shown, strict=True):
            (twin,) = item.renderers
            assert twin is not line and twin.data_source is not view.plots.prof_src
            assert all(len(v) == 0 for v in twin.data_source.data.values())
            for prop in ("line_color", "line_dash", "line_width"):
                assert getattr(twin.glyph, prop) == getattr(line.glyph, prop)
    before = [item.renderers[0].data_source.data for item in view.plots.mass_profile.legend[0].items]
    view.distance = 60
    after = [item.renderers[0].data_source.data for item in view.plots.mass_profile.legend[0].items]
    assert before == after


def test_enclosed_mass_axis_is_a_1_2_5_ceiling_of_the_curves(view):
    """M(<r) is drawn from 0 to the smallest 1, 2 or 5 × 10^k above its curves, which stays
    put while the curves stay below it (no re-layout of the page on every move)."""
    for distance in (15, 40, 90):
        view.distance = distance
        data = view.plots.prof_src.data
        top = max(np.nanmax(np.asarray(data[k], float)) for k in ("enc_true", "enc_pred",
                                                                  "enc_base"))
        end = view.plots.enclosed.y_range.end
        assert view.plots.enclosed.y_range.start == 0 and top <= end
        mantissa = round(end / 10 ** np.floor(np.log10(end)), 9)
        assert mantissa in (1, 2, 5)
        assert top > end * {1: 0.5, 2: 0.5, 5: 0.4}[mantissa]  # the step below cuts the curves
