"""Statistics of the paper's Sect. 4 and the baselines on synthetic cases with known answers."""

import math

import numpy as np
import pytest
import xarray as xr

from pidoc_core import evaluation as ev

N_PIX, PIX = 160, 0.25
COORDS = (np.arange(N_PIX) + 0.5) * PIX - N_PIX * PIX / 2.0
OFFSET_PCT = 100 * (1 - 10**-0.1)  # eq. (2) with M_pred in the denominator: 20.57 %
OFFSET_PCT_TRUE = 100 * (10**0.1 - 1)  # relative to the truth: 25.89 %


def plummer_sigma(r, a, total):
    """Projected Plummer surface density, total / arcsec^2 at radius r (arcsec)."""
    return total * a**2 / (np.pi * (a**2 + r**2) ** 2)


def plummer_enclosed(r, a, total):
    return total * r**2 / (a**2 + r**2)


def plummer_map(a, total, shift=(0.0, 0.0)):
    """Linear per-pixel values of a Plummer surface density sampled at the pixel centres."""
    xx, yy = np.meshgrid(COORDS - shift[0], COORDS - shift[1])  # (y, x)
    return plummer_sigma(np.hypot(xx, yy), a, total) * PIX**2


def synthetic_dataset(n=8, *, seed=0, ml_slope=0.3):
    """A dataset in the layout of pidoc_core datasets: Plummer clusters whose M/L rises outwards
    (mass segregation), at four distances, with shifts; linear field totals included."""
    rng = np.random.default_rng(seed)
    distances = np.resize([15.0, 30.0, 60.0, 80.0], n)
    ages = rng.uniform(1, 13, n)
    shift = rng.uniform(-3, 3, (n, 2))
    a = rng.uniform(2.0, 5.0, n)
    flux, mass = [], []
    for k in range(n):
        lum = plummer_map(a[k], 10 ** rng.uniform(3.5, 4.5), shift[k])  # Lsun per pixel
        xx, yy = np.meshgrid(COORDS - shift[k, 0], COORDS - shift[k, 1])
        ml = 1.5 * (1 + ml_slope * np.hypot(xx, yy) / a[k])
        flux.append(np.log10(lum / (4 * np.pi * distances[k] ** 2)))
        mass.append(np.log10(lum * ml))
    flux, mass = np.array(flux, np.float32), np.array(mass, np.float32)
    lin_m = (10.0 ** mass.astype(float)).sum(axis=(1, 2))
    lin_l = (10.0 ** flux.astype(float)).sum(axis=(1, 2)) * 4 * np.pi * distances**2
    return xr.Dataset(
        {"flux": (("sample", "y", "x"), flux), "mass": (("sample", "y", "x"), mass)},
        coords={"run": ("sample", np.zeros(n, int)), "time": ("sample", ages),
                "distance": ("sample", distances), "psf_fwhm": ("sample", np.ones(n)),
                "shift_x": ("sample", shift[:, 0]), "shift_y": ("sample", shift[:, 1]),
                "rotation": ("sample", np.zeros(n)), "line_of_sight": ("sample", ["z"] * n),
                "field_mass": ("sample", lin_m), "field_luminosity_v": ("sample", lin_l),
                "y": COORDS, "x": COORDS},
    )


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset()


# --- eq. (1) ---------------------------------------------------------------------------------


def test_r2_known_values():
    assert ev.r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert ev.r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == pytest.approx(0.5)
    assert ev.r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(0.0)
    assert math.isnan(ev.r2_score([2.0, 2.0], [1.0, 3.0]))
    with pytest.raises(ev.EvaluationError, match="differ in size"):
        ev.r2_score([1.0], [1.0, 2.0])


# --- eq. (2), Fig. 5 -------------------------------------------------------------------------


def test_percentage_error_offsets():
    assert ev.percentage_error(0.0, 0.1) == pytest.approx(OFFSET_PCT)
    assert ev.percentage_error(0.0, 0.1, denominator="true") == pytest.approx(OFFSET_PCT_TRUE)
    # a prediction 0.1 dex low is 25.9 % of the prediction: eq. (2) is not symmetric
    assert ev.percentage_error(0.0, -0.1) == pytest.approx(OFFSET_PCT_TRUE)
    assert ev.percentage_error(2.0, 3.0, kind="linear") == pytest.approx(100 / 3)


def test_pixel_statistics_perfect_prediction(ds):
    st = ev.pixel_residual_statistics(ds.mass, ds.mass)
    filled = st.mu_count.values > 0
    assert filled.sum() > 10
    np.testing.assert_array_equal(st.mu_mpe.values[filled], 0.0)
    np.testing.assert_array_equal(st.xi_mean.values[filled], 0.0)
    assert st.attrs["r2"] == pytest.approx(1.0)
    # the histogram is diagonal and holds every pixel
    h = st.histogram.values
    assert h.sum() == ds.mass.size == st.attrs["n_values"]
    assert np.all(h[~np.eye(len(h), dtype=bool)] == 0)
    s = ev.bin_summary(st)
    assert s["mean"] == s["max"] == 0.0


def test_pixel_statistics_uniform_offset(ds):
    st = ev.pixel_residual_statistics(ds.mass, ds.mass + np.float32(0.1), chunk_size=3)
    filled = st.mu_count.values > 0
    np.testing.assert_allclose(st.mu_mean.values[filled], 0.1, atol=1e-5)
    np.testing.assert_allclose(st.mu_std.values[filled], 0.0, atol=1e-3)
    np.testing.assert_allclose(st.mu_mpe.values[filled], OFFSET_PCT, rtol=1e-4)
    # percentiles come from a histogram of residuals: exact to its resolution (0.005 dex)
    np.testing.assert_allclose(st.mu_percentiles.values[filled], 0.1, atol=0.0051)
    s = ev.bin_summary(st)
    assert s["mean"] == pytest.approx(OFFSET_PCT, rel=1e-4)
    true_den = ev.pixel_residual_statistics(ds.mass, ds.mass + np.float32(0.1), denominator="true")
    assert ev.bin_summary(true_den)["mean"] == pytest.approx(OFFSET_PCT_TRUE, rel=1e-4)
    assert st.attrs["r2"] < 1


def test_mu_and_xi_condition_on_different_axes():
    # pairs (true, pred): (0, 0), (0, 1), (1, 1)
    st = ev.residual_statistics([0.0, 0.0, 1.0], [0.0, 1.0, 1.0], edges=[-0.5, 0.5, 1.5],
                                kind="linear")
    assert st.xi_mean.values.tolist() == [0.5, 0.0]  # given the truth
    assert st.mu_mean.values.tolist() == [0.0, 0.5]  # given the prediction
    assert st.xi_count.values.tolist() == [2, 1] and st.mu_count.values.tolist() == [1, 2]
    assert st.histogram.values.tolist() == [[1, 0], [1, 1]]  # (pred_bin, true_bin)
    assert st.mu_mae.values.tolist() == [0.0, 0.5]


def test_bin_summary_excludes_low_mass_bins():
    rng = np.random.default_rng(1)
    pred = rng.uniform(-2, 1, 20000)
    true = pred - np.where(pred < -1, 0.3, 0.05)  # big errors only where log10 M_pred < -1
    st = ev.residual_statistics(true, pred, width=0.1)
    low = ev.bin_summary(st, lower=-1.0)
    assert low["max"] == pytest.approx(100 * (1 - 10**-0.05), rel=1e-9)
    every = ev.bin_summary(st)
    assert every["max"] == pytest.approx(100 * (1 - 10**-0.3), rel=1e-9)
    assert every["n_bins"] > low["n_bins"]


def test_exact_percentiles_are_numpys_per_bin():
    rng = np.random.default_rng(5)
    t = rng.normal(0.0, 1.0, 500)
    p = t + rng.normal(0.0, 0.3, t.size)
    edges = np.linspace(-2.0, 2.0, 9)  # some bins with 1-3 values at the tails
    st = ev.residual_statistics(t, p, edges=edges, percentiles=(5, 16, 50, 84, 95))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, -1, len(edges) - 1)
    for b in range(len(edges) - 1):
        r = (p - t)[(bins == b) & (p < edges[-1])]
        expected = (np.percentile(r, (5, 16, 50, 84, 95)) if r.size else np.full(5, np.nan))
        np.testing.assert_allclose(st.mu_percentiles.values[b], expected, rtol=0, atol=1e-12)
    assert st.mu_mpe.attrs["units"] == "%" and st.xi_mean.attrs["units"] == "dex"


def test_streamed_percentiles_match_exact():
    rng = np.random.default_rng(2)
    t = rng.normal(-1, 0.5, (20, 30, 30))
    p = t + rng.normal(0, 0.2, t.shape)
    edges = np.arange(-3.0, 1.01, 0.25)
    streamed = ev.pixel_residual_statistics(t, p, edges=edges, true_floor=None, chunk_size=7)
    exact = ev.residual_statistics(t, p, edges=edges)
    ok = exact.mu_count.values > 200
    np.testing.assert_allclose(streamed.mu_mean.values[ok], exact.mu_mean.values[ok], atol=1e-12)
    np.testing.assert_allclose(streamed.mu_percentiles.values[ok],
                               exact.mu_percentiles.values[ok], atol=0.006)
    assert streamed.attrs["r2"] == pytest.approx(ev.r2_score(t, p))


# --- totals, Fig. 6 --------------------------------------------------------------------------


def test_totals_and_ml(ds):
    tot = ev.map_totals(ds.mass, ds.mass + np.float32(0.1), ds.flux, ds.distance.values)
    np.testing.assert_allclose(tot.mass_true, ds.field_mass, rtol=1e-5)
    np.testing.assert_allclose(tot.luminosity_v, ds.field_luminosity_v, rtol=1e-5)
    np.testing.assert_allclose(tot.mass_pred / tot.mass_true, 10**0.1, rtol=1e-5)
    np.testing.assert_allclose(tot.ml_true, ds.field_mass / ds.field_luminosity_v, rtol=1e-5)
    st = ev.residual_statistics(np.log10(tot.ml_true), np.log10(tot.ml_pred))
    assert ev.bin_summary(st)["mean"] == pytest.approx(OFFSET_PCT, rel=1e-4)


# --- eq. (3), Fig. 7 -------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [(0.0, 0.0), (2.5, -1.75)])
def test_plummer_profile_recovered(shift):
    a, total = 3.0, 1e4
    m = plummer_map(a, total, shift)
    edges = ev.radial_edges()
    assert len(edges) == 26 and np.diff(edges) == pytest.approx(1.2)
    prof, npix = ev.radial_profile(m, *shift, edges=edges)
    r1, r2 = edges[:-1], edges[1:]
    expected = ((plummer_enclosed(r2, a, total) - plummer_enclosed(r1, a, total))
                / (np.pi * (r2**2 - r1**2)) * PIX**2)  # mean mass per pixel in the annulus
    full = r2 <= 20.0 - max(abs(shift[0]), abs(shift[1]))  # annuli wholly inside the field
    np.testing.assert_allclose(prof[0, full], expected[full], rtol=0.02)
    # pixel counts ~ annulus area / pixel area
    np.testing.assert_allclose(npix[0, full][1:], (np.pi * (r2**2 - r1**2) / PIX**2)[full][1:],
                               rtol=0.05)
    if shift != (0.0, 0.0):  # the centring matters: about the field centre the core is missed
        off, _ = ev.radial_profile(m, 0.0, 0.0, edges=edges)
        assert off[0, 0] < 0.8 * expected[0]


def test_log_input_profile_equals_linear():
    m = plummer_map(3.0, 1e4)
    lin, _ = ev.radial_profile(m, 0, 0)
    log, _ = ev.radial_profile(np.log10(m), 0, 0, log10_input=True)
    np.testing.assert_allclose(log, lin, rtol=1e-12)


def test_profiles_dataset(ds):
    prof = ev.radial_profiles(ds.mass, ds.mass, ds.flux, ds.distance.values, ds.shift_x.values,
                              ds.shift_y.values)
    assert prof.mass_true.dims == ("sample", "radius") and prof.sizes["radius"] == 25
    ok = np.isfinite(prof.mass_ratio.values)
    np.testing.assert_allclose(prof.mass_ratio.values[ok], 1.0, rtol=1e-12)
    np.testing.assert_allclose(prof.ml_ratio.values[ok], 1.0, rtol=1e-12)
    # mass segregation in the synthetic clusters: M/L rises outwards
    ml = prof.ml_true.isel(sample=0).values[:10]
    assert np.all(np.diff(ml) > 0)


# --- eq. (4), Fig. 8 -------------------------------------------------------------------------


def test_age_mae_per_bin():
    centres = np.arange(14) + 0.5  # Gyr, one age per 1-Gyr bin, 10 maps each
    offsets = 0.1 * (np.arange(14) % 4)  # bin k is off by 0.1 (k mod 4) Gyr, alternating sign
    age_true = np.repeat(centres, 10)
    age_pred = age_true + np.repeat(offsets, 10) * np.resize([1, -1], 140)
    st = ev.residual_statistics(age_true, age_pred, kind="linear", width=1.0, units="Gyr")
    assert len(st.pred_bin) == 14
    np.testing.assert_allclose(st.mu_mae.values, offsets, atol=1e-12)
    s = ev.bin_summary(st, statistic="mae")
    assert s["mean"] == pytest.approx(offsets.mean()) and s["max"] == pytest.approx(0.3)
    assert s["min"] == pytest.approx(0.0, abs=1e-12)


# --- Table 2, Fig. 9 -------------------------------------------------------------------------


def test_distance_table_and_pdfs():
    true = [15, 15, 15, 15, 60, 60]
    pred = [14, 18, 16, 20, 60.5, 59.5]
    tab = ev.distance_table(true, pred)
    assert tab.true_distance.values.tolist() == [15, 60]
    assert tab["mean"].values.tolist() == [17.0, 60.0]
    assert tab["std"].values == pytest.approx([math.sqrt(5.0), 0.5])
    assert tab["mae"].values == pytest.approx([2.5, 0.5])
    assert tab["bias"].values == pytest.approx([2.0, 0.0])
    assert tab["count"].values.tolist() == [4, 2]
    pdfs = ev.distance_pdfs(true, pred, width=1.0)
    widths = pdfs.distance_upper - pdfs.distance_lower
    np.testing.assert_allclose((pdfs.pdf * widths).sum("distance"), 1.0)
    assert pdfs.distance_lower.values[0] == 0.0


# --- baselines -------------------------------------------------------------------------------


def test_constant_ml_baseline_exact_for_constant_ml():
    upsilon, d = 2.3, 30.0
    lum = plummer_map(3.0, 1e4, (1.0, -2.0))  # Lsun per pixel
    flux = np.log10(lum / (4 * np.pi * d**2))[None]
    mass = np.log10(upsilon * lum)[None]
    train = xr.Dataset(coords={"field_mass": ("sample", [upsilon * 10.0, upsilon * 3.0]),
                               "field_luminosity_v": ("sample", [10.0, 3.0])})
    assert ev.training_mass_to_light(train) == pytest.approx(upsilon)
    pred = ev.constant_ml_mass(flux, d, ev.training_mass_to_light(train))
    np.testing.assert_allclose(pred, mass, atol=2e-6)
    st = ev.pixel_residual_statistics(mass, pred)
    assert ev.bin_summary(st)["max"] < 1e-3
    tot = ev.map_totals(mass, pred, flux, d)
    assert float(tot.ml_pred[0]) == pytest.approx(upsilon, rel=1e-5)


def test_training_mass_to_light_errors():
    from pidoc_core.dataset import DatasetError

    with pytest.raises(DatasetError, match="field_luminosity_v"):
        ev.training_mass_to_light(xr.Dataset(coords={"field_mass": ("sample", [1.0])}))


def test_photometric_features_of_plummer():
    a = 2.0
    lum = plummer_map(a, 1e4, (3.0, 1.0))
    f = np.log10(lum)[None]
    feats = ev.photometric_features(f, [[3.0, 1.0]])
    names = dict(zip(ev.FEATURE_NAMES, feats[0]))
    # projected Plummer: R^2/(a^2+R^2) = 1/2 at R = a (the field holds ~98 % of the light)
    assert 10 ** names["log10_r50"] == pytest.approx(a, rel=0.05)
    assert names["concentration_r90_r50"] == pytest.approx(3.0, rel=0.15)
    assert 10 ** names["log10_total_flux"] == pytest.approx(lum.sum())
    # without the shifts the centre is estimated from the brightest pixels
    guess = ev.photometric_features(f)
    assert guess[0, 1] == pytest.approx(feats[0, 1], abs=0.02)


def test_gbt_baseline_learns_synthetic_relation():
    rng = np.random.default_rng(3)
    n = 160
    a = rng.uniform(1.0, 6.0, n)
    log_l = rng.uniform(3.0, 4.5, n)
    shifts = rng.uniform(-4, 4, (n, 2))
    flux = np.array([np.log10(plummer_map(a[k], 10 ** log_l[k], shifts[k]) + 1e-12)
                     for k in range(n)])
    age = 2.0 * a  # Gyr, set by the size
    distance = 10 + 40 * (log_l - 3.0)  # kpc, set by the brightness
    train, test = slice(0, 120), slice(120, None)
    gbt = ev.GBTBaseline(seed=0).fit(flux[train], {"age": age[train], "distance": distance[train]},
                                     shifts=shifts[train])
    pred = gbt.predict(flux[test], shifts=shifts[test])
    assert set(pred.data_vars) == {"age", "distance"} and pred.age.attrs["units"] == "Gyr"
    assert np.abs(pred.age.values - age[test]).mean() < 0.5  # range 2-12 Gyr
    assert np.abs(pred.distance.values - distance[test]).mean() < 3.0  # range 10-70 kpc
    again = ev.GBTBaseline(seed=0).fit(flux[train], {"age": age[train]}, shifts=shifts[train])
    np.testing.assert_array_equal(again.predict(flux[test], shifts=shifts[test]).age, pred.age)


# --- statistics that cannot mislead (issue 13) ------------------------------------------------


def _constant_vs_spread():
    """999 maps whose log10 M/L spans 0-0.29 plus one at 0.1; a constant predictor (all maps in
    one predicted bin) and a spread predictor 10 % high on 999 maps and 10x high on one."""
    t = np.r_[np.linspace(0.0, 0.29, 999), 0.1]
    const = np.full(1000, 0.15)
    spread = np.r_[t[:999] + np.log10(1.1), t[999] + 1.0]
    return t, const, spread


def test_mean_over_bins_favours_a_constant_that_min_share_and_per_map_do_not():
    t, const, spread = _constant_vs_spread()
    st_c = ev.residual_statistics(t, const, width=0.05)
    st_s = ev.residual_statistics(t, spread, width=0.05)
    # the paper's statistic: the constant's one bin against 7 bins at 9.09 % and 1 at 90 %
    c, s = ev.bin_summary(st_c), ev.bin_summary(st_s)
    by_hand = 100 * np.mean(np.abs(1 - 10 ** (t - 0.15)))
    assert (c["n_bins"], s["n_bins"]) == (1, 8)
    assert c["mean"] == pytest.approx(by_hand, rel=1e-12) == pytest.approx(16.687, abs=1e-3)
    assert s["mean"] == pytest.approx((7 * 100 / 11 + 90.0) / 8, rel=1e-9)  # 19.20 %
    assert c["mean"] < s["mean"]  # misleading: the constant looks better
    # bins holding >= 0.1 % of the maps (and >= 2 maps): the lone outlier bin drops out
    c_ms = ev.bin_summary(st_c, min_share=ev.DEFAULT_MIN_SHARE)
    s_ms = ev.bin_summary(st_s, min_share=ev.DEFAULT_MIN_SHARE)
    assert ev.DEFAULT_MIN_SHARE == 0.001
    assert (s_ms["n_bins"], s_ms["share"]) == (7, pytest.approx(0.999))
    assert s_ms["mean"] == pytest.approx(100 / 11, rel=1e-9)
    assert s_ms["mean"] < c_ms["mean"] == c["mean"]
    # per map, no bins: the spread predictor is better in mean and median
    pm_c, pm_s = ev.per_map_errors(10**t, 10**const), ev.per_map_errors(10**t, 10**spread)
    assert pm_s == {"mean": pytest.approx((999 * 10.0 + 900.0) / 1000), "median":
                    pytest.approx(10.0), "n_maps": 1000}
    assert pm_c["mean"] == pytest.approx(100 * np.mean(np.abs(10 ** (0.15 - t) - 1)))
    assert pm_s["mean"] < pm_c["mean"] and pm_s["median"] < pm_c["median"]


def test_per_map_errors_by_hand():
    out = ev.per_map_errors([2.0, 4.0, 10.0, np.nan], [3.0, 4.0, 5.0, 1.0])
    assert out == {"mean": pytest.approx((50 + 0 + 50) / 3), "median": 50.0, "n_maps": 3}
    logs = ev.per_map_errors(np.log10([2.0, 4.0]), np.log10([3.0, 2.0]), kind="log")
    assert logs["mean"] == pytest.approx(50.0) and logs["median"] == pytest.approx(50.0)
    pred_den = ev.per_map_errors([2.0], [4.0], denominator="predicted")
    assert pred_den["mean"] == pytest.approx(50.0)
    assert np.isnan(ev.per_map_errors([np.nan], [1.0])["mean"])
    with pytest.raises(ev.EvaluationError, match=r"^true and pred differ in size: 2 vs 1$"):
        ev.per_map_errors([1.0, 2.0], [1.0])


def test_min_share_is_checked_and_never_keeps_a_single_entry():
    st = ev.residual_statistics([0.0, 1.0], [0.0, 1.0], edges=[-0.5, 0.5, 1.5])
    assert ev.bin_summary(st)["n_bins"] == 2
    assert ev.bin_summary(st, min_share=0.0)["n_bins"] == 0  # one value per bin
    with pytest.raises(ev.EvaluationError,
                       match=r"^min_share must be a fraction in \[0, 1\], got 5$"):
        ev.bin_summary(st, min_share=5)


# --- summary ---------------------------------------------------------------------------------


def test_summary_side_by_side(ds):
    train = synthetic_dataset(24, seed=5)
    perfect = xr.Dataset({"mass": ds.mass, "age": ("sample", ds.time.values),
                          "distance": ("sample", ds.distance.values)})
    preds = {"pi-DOC": perfect, **ev.baseline_predictions(train, ds, seed=0)}
    assert preds["constant M/L"].attrs["upsilon"] > 0
    df = ev.summary(ds, preds)
    assert list(df.columns) == ["unit", "pi-DOC", "constant M/L", "GBT", "paper", "paper_source"]
    col = df["pi-DOC"]
    for key in ("pixel_mpe_mean", "pixel_mpe_max_excl_low", "total_mass_mpe_mean",
                "total_ml_mpe_max", "age_mae_mean", "distance_mae_15", "profile_mpe"):
        assert col[key] == pytest.approx(0.0, abs=1e-9), key
    for key in ("mass_r2", "age_r2", "distance_r2", "age_distance_r2"):
        assert col[key] == pytest.approx(1.0), key
    # the constant-M/L baseline misses the M/L gradient; it predicts no age or distance
    assert df.loc["pixel_mpe_mean", "constant M/L"] > 1.0
    assert np.isnan(df.loc["age_mae_mean", "constant M/L"])
    assert np.isnan(df.loc["pixel_mpe_mean", "GBT"]) and np.isfinite(df.loc["age_mae_mean", "GBT"])
    assert df.loc["pixel_mpe_mean", "paper"] == 27.4
    assert df.loc["distance_mae_60", "paper"] == 6.5
    assert "Table 2" in df.loc["distance_mean_15", "paper_source"]
    assert df.loc["age_mae_mean", "unit"] == "Gyr"
    # beside every binned statistic: the min-share mean and the bin counts; per-map errors
    assert df.attrs["min_share"] == ev.DEFAULT_MIN_SHARE
    for key in ("pixel_mpe_mean_min_share", "total_ml_mpe_mean_min_share",
                "total_mass_ape_mean", "total_ml_ape_median", "age_mae_mean_min_share"):
        assert col[key] == pytest.approx(0.0, abs=1e-9), key
    assert df.loc["total_ml_ape_mean", "unit"] == "%"
    assert df.loc["total_ml_mpe_n_bins", "unit"] == "bins"
    tot = ev.map_totals(ds.mass, preds["constant M/L"].mass, ds.flux, ds.distance.values)
    ape = 100 * np.abs(tot.ml_pred.values - tot.ml_true.values) / tot.ml_true.values
    assert df.loc["total_ml_ape_mean", "constant M/L"] == pytest.approx(ape.mean())
    assert df.loc["total_ml_ape_median", "constant M/L"] == pytest.approx(np.median(ape))
    assert df.loc["total_ml_mpe_n_bins", "constant M/L"] == 1  # one predicted M/L: one bin
    assert np.isnan(df.loc["total_ml_ape_mean", "GBT"])


def test_baselines_have_one_home():
    """report uses evaluation's baselines: fit_baselines then FittedBaselines.predict."""
    train, test = synthetic_dataset(24, seed=5), synthetic_dataset(4, seed=6)
    fitted = ev.fit_baselines(train, seed=0, max_train=10)
    assert fitted.n_train == 10 and fitted.upsilon == ev.training_mass_to_light(train)
    out = fitted.predict(test.flux.values, test.distance.values)
    np.testing.assert_array_equal(out["mass"], ev.constant_ml_mass(test.flux, test.distance.values,
                                                                   fitted.upsilon))
    assert out["age"].shape == out["distance"].shape == (4,)
    with pytest.raises(ev.EvaluationError, match=r"^max_train must be >= 1 map, got 0$"):
        ev.fit_baselines(train, max_train=0)


def test_paper_results_record():
    from pidoc_core import paper

    assert ev.PAPER_RESULTS is paper.RESULTS
    p = ev.PAPER_RESULTS
    expected = {"pixel_mpe_mean": 27.4, "pixel_mpe_min": 13.7, "pixel_mpe_max": 95.0,
                "pixel_mpe_mean_excl_low": 17.6, "pixel_mpe_max_excl_low": 22.1,
                "total_mass_mpe_mean": 15.6, "total_mass_mpe_min": 6.2,
                "total_mass_mpe_max": 43.5, "total_ml_mpe_mean": 11.8, "total_ml_mpe_min": 5.1,
                "total_ml_mpe_max": 18.1, "age_mae_mean": 1.26, "age_mae_min": 0.33,
                "age_mae_max": 1.64, "distance_mean_15": 20.3, "distance_std_30": 8.3,
                "distance_mae_80": 6.0, "distance_mean_60": 60.6}
    for k, v in expected.items():
        assert p[k]["value"] == v, k
        assert p[k]["section"] and p[k]["quote"]


def test_summary_reports_log_bias_per_distance_and_interval_coverage():
    ds = synthetic_dataset(16, seed=4)
    d = ds.distance.values
    offset = np.where(d < 40, 0.1, -0.05)  # dex, by distance
    true_field = (10.0 ** ds.mass.values.astype(float)).sum(axis=(1, 2))
    ages = ds.time.values
    inside = np.arange(16) % 4 != 0  # 12 of 16 maps inside their intervals
    lo = np.where(inside, true_field * 0.9, true_field * 1.1)
    pred = xr.Dataset({
        "mass": (("sample", "y", "x"), ds.mass.values + offset[:, None, None]),
        "field_mass_lo": ("sample", lo), "field_mass_hi": ("sample", true_field * 1.2),
        "age": ("sample", ages), "age_lo": ("sample", ages - 1), "age_hi": ("sample", ages + 1),
    })
    df = ev.summary(ds, {"model": pred})
    for g in (15.0, 30.0, 60.0, 80.0):
        expected = 0.1 if g < 40 else -0.05
        assert df.loc[f"total_mass_log_bias_{g:g}", "model"] == pytest.approx(expected, abs=1e-5)
        assert df.loc[f"total_mass_log_bias_{g:g}", "unit"] == "dex"
    assert df.loc["field_mass_coverage_68", "model"] == pytest.approx(75.0)
    assert df.loc["age_coverage_68", "model"] == pytest.approx(100.0)
    assert "distance_coverage_68" not in df.index  # no distance interval given
