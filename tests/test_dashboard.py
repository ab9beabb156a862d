"""The dashboard without a browser: every control changes the outputs it should."""

import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import plummer_snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))


class FakeRun:
    """A run of Plummer snapshots whose size grows with time (a stand-in source)."""

    times = np.array([1.0, 6.0, 12.0])

    def __init__(self, name, scale):
        self.name, self.scale = name, scale

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
    from explore import ExploreView

    sources = {"A analogue": FakeRun("A analogue", 0.5), "MW15 analogue": FakeRun("MW15 analogue", 1.0)}
    return ExploreView(sources, model, upsilon=2.0)


def snapshot_of(view):
    return {
        "flux": view.flux_src.data["image"][0].copy(),
        "true": view.true_src.data["image"][0].copy(),
        "pred": view.pred_src.data["image"][0].copy(),
        "resid": view.resid_src.data["image"][0].copy(),
        "hist": np.nan_to_num(view.hist_src.data["image"][0]).copy(),
        "profile": np.nan_to_num(np.asarray(view.prof_src.data["m_true"])).copy(),
        "ml_pred": np.nan_to_num(np.asarray(view.prof_src.data["ml_pred"])).copy(),
        "numbers": view.numbers.object,
        "status": view.status.object,
    }


def changed(before, after):
    return {k for k in before if not (np.array_equal(before[k], after[k]) if not isinstance(
        before[k], str) else before[k] == after[k])}


def test_initial_state_shows_the_default_run(view):
    assert view.run.value == "MW15 analogue"
    assert view.time.value == 12.0
    assert "MW15 analogue" in view.numbers.object and "12 Gyr" in view.numbers.object
    assert view.status.alert_type == "success"
    assert np.isfinite(view.flux_src.data["image"][0]).all()


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
    getattr(view, widget).value = value
    after = snapshot_of(view)
    assert must_change <= changed(before, after)


def test_psf_leaves_the_true_mass_map_alone(view):
    before = view.true_src.data["image"][0].copy()
    view.psf.value = 1.5
    np.testing.assert_array_equal(view.true_src.data["image"][0], before)


def test_quarter_turn_rotates_the_maps(view):
    before = view.true_src.data["image"][0].copy()
    view.rotation.value = "90"
    np.testing.assert_allclose(view.true_src.data["image"][0], np.rot90(before), atol=1e-5)


def test_free_angle_is_enabled_only_for_free_rotation(view):
    assert view.angle.disabled
    view.rotation.value = "free"
    assert not view.angle.disabled
    before = view.true_src.data["image"][0].copy()
    view.angle.value = 33
    assert not np.array_equal(view.true_src.data["image"][0], before)
    assert view.status.alert_type == "warning" and "rotation 33 deg" in view.status.object


def test_out_of_range_settings_are_flagged(view):
    view.distance.value = 140
    assert view.status.alert_type == "warning"
    assert "distance 140 kpc is outside the trained 10-100 kpc" in view.status.object
    view.distance.value = 50
    assert view.status.alert_type == "success"
    view.psf.value = 2.0
    assert "PSF FWHM 2&quot; is outside the trained 0.5-1.5&quot;" in view.status.object


def test_numbers_compare_pidoc_with_the_baseline(view):
    t = view.last.totals
    assert t["ml_baseline"] == pytest.approx(2.0, rel=1e-6)  # the constant-M/L baseline
    assert t["mass_true_msun"] == pytest.approx(view.last.observation.attrs["field_mass_msun"])
    assert "constant M/L" in view.numbers.object and "Distance (kpc)" in view.numbers.object


def test_sessions_do_not_share_state(model):
    from explore import ExploreView

    sources = {"MW15 analogue": FakeRun("MW15 analogue", 1.0)}
    a = ExploreView(sources, model, upsilon=2.0)
    b = ExploreView(sources, model, upsilon=2.0)
    a.distance.value = 80
    assert b.distance.value == 15
    assert not np.array_equal(a.flux_src.data["image"][0], b.flux_src.data["image"][0])


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
    from testset import TestSetView

    view = TestSetView(synthetic_aggregates())
    full = view.figures([15.0, 30.0, 60.0, 80.0], (0, 14), "pi-DOC")
    assert "200 test maps" in full[0].object
    near = view.figures([15.0], (0, 14), "pi-DOC")
    n_near = int(near[0].object.split("**")[1].split()[0])
    assert 0 < n_near < 200
    assert "No test map matches" in view.figures([], (0, 14), "pi-DOC").object
    # the perfect model has zero total-mass error; the +0.1 dex one 100 (1 - 10^-0.1) = 20.6 %
    perfect = view.tables("pi-DOC", np.arange(200))[1].object
    biased = view.tables("constant M/L", np.arange(200))[1].object
    assert perfect.iloc[0, 1] == pytest.approx(0.0, abs=1e-9)
    assert biased.iloc[0, 1] == pytest.approx(100 * (1 - 10**-0.1), abs=0.05)
    # mean residual panel: 0 for the perfect model, +0.1 dex (0.5 / 5) for the biased one
    layout = view.pixel_figure("constant M/L", [15.0, 30.0], (0, 14))
    curve = layout[1].get(0)
    values = curve.dimension_values(1)
    assert np.nanmax(np.abs(values - 0.1)) < 1e-9
