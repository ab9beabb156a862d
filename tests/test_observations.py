"""Tests of pidoc_core.observations: FITS images -> π-DOC flux maps, PS1 specifics, the catalogue,
the training-range check and the prediction writers.

The central test is a round trip: a mock observation of a Plummer snapshot (PSF, no smoothing) is
written as calibrated counts into a FITS file at another pixel scale (0.2") and orientation (a
rotated CD matrix); the pipeline must recover the mock's own smoothed flux map, and π-DOC's
predictions from both maps must agree.
"""

import argparse
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from pidoc_core import observations as O
from pidoc_core.imager import ObservationSetup, observe, render

from .conftest import plummer_snapshot

RELEASE = Path(__file__).resolve().parent.parent / "weights" / "pidoc-v0.1"
RA0, DEC0 = 199.112875, 17.70025  # NGC 5053 (Harris 2010)
CENTRE = SkyCoord(RA0 * u.deg, DEC0 * u.deg)
ZP = 25.0
DISTANCE = 15.0
STANDARDISATION = dict(flux_mean=-5.38, flux_std=0.97, mass_mean=-0.85, mass_std=0.45,
                       distance_age_mean=29.63, distance_age_std=32.40)


def counts_per_flux(zp=ZP):
    """Counts per unit of F (Lsun kpc^-2): the inverse of counts_to_flux's factor."""
    return 1.0 / float(O.counts_to_flux(1.0, zp))


def rotated_header(n, pixel_arcsec, theta_deg, *, ra=RA0, dec=DEC0):
    """TAN header whose pixel axes are the mock's array axes rotated by theta.

    The imager moves a star at sky (x west, y north) to array offsets R(theta) (x, y) with
    R = [[c, s], [-s, c]]; so (x, y) = R^T p and, with xi = -x (east) and eta = y, the CD matrix
    is pixel * [[-c, s], [s, c]].
    """
    c, s = math.cos(math.radians(theta_deg)), math.sin(math.radians(theta_deg))
    k = pixel_arcsec / 3600.0
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CRPIX1"] = h["CRPIX2"] = (n + 1) / 2.0
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -c * k, s * k, s * k, c * k
    return h


@pytest.fixture(scope="module")
def snapshot():
    return plummer_snapshot(20_000, seed=3)


@pytest.fixture(scope="module")
def reference(snapshot):
    """The mock observation as the networks see it: 0.25" pixels, PSF 1", sigma = 4 px."""
    return observe(snapshot, ObservationSetup(distance_kpc=DISTANCE, psf_fwhm_arcsec=1.0))


@pytest.fixture(scope="module")
def mock_counts(snapshot):
    """The same observation without smoothing at 0.2" pixels, rotated by 30 deg, 72" wide, as
    counts for ZP = 25."""
    setup = ObservationSetup(distance_kpc=DISTANCE, psf_fwhm_arcsec=1.0, rotation_deg=30.0,
                             fov_arcsec=72.0, pixel_arcsec=0.2, smooth_sigma_px=0.0)
    flux, _ = render(snapshot, setup)
    return flux * counts_per_flux()


@pytest.fixture(scope="module")
def mock_fits(mock_counts, tmp_path_factory):
    path = tmp_path_factory.mktemp("obs") / "mock.fits"
    h = rotated_header(mock_counts.shape[0], 0.2, 30.0)
    h["BUNIT"] = "count"
    h["MAGZERO"] = ZP
    fits.writeto(path, mock_counts, h)
    return path


@pytest.fixture(scope="module")
def recovered(mock_fits):
    return O.flux_map_from_image(mock_fits, centre=CENTRE)


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from pidoc_core.model import PiDOC

    keras.utils.set_random_seed(0)
    return PiDOC.build(mass=dict(filters=(4, 8, 8, 8), bottleneck_filters=8),
                       age_distance=dict(filters=(4, 4, 4, 4)), standardisation=STANDARDISATION)


# ---------------------------------------------------------------------------------------------
# round trip


def test_round_trip_recovers_the_mock_flux_map(recovered, reference):
    a = recovered.flux.values.astype(float)
    b = reference.flux.values.astype(float)
    assert a.shape == (160, 160)
    np.testing.assert_allclose(recovered.x.values, reference.x.values)
    # total flux in the field: resampling conserves counts; the only loss is light that fell
    # beyond the 72" FITS field before the PSF
    assert recovered.attrs["field_flux_lsun_kpc2"] == pytest.approx(
        reference.attrs["field_flux_lsun_kpc2"], rel=1e-3)
    # per pixel: 0.2" vs 0.25" binning of the stars moves light by < 0.1", i.e. a few per cent
    # after the 1" PSF and 1" smoothing; orientation errors would give > 0.3 dex
    diff = a - b
    assert np.sqrt(np.mean(diff ** 2)) < 0.015
    assert np.abs(diff).max() < 0.08
    assert recovered.attrs["zero_point_source"] == "header MAGZERO"
    assert recovered.attrs["masked_pixels"] == 0


def test_round_trip_predictions_agree(recovered, reference, tiny_model):
    from pidoc_core.model import PiDOC

    if not (RELEASE / "CNN_100.h5").is_file():
        pytest.skip("the v0.1 age/distance weights are not in weights/pidoc-v0.1")
    v01 = PiDOC.from_v01(RELEASE)
    p_rec = v01.predict(recovered.flux.values)
    p_ref = v01.predict(reference.flux.values)
    p_2x = v01.predict(reference.flux.values + math.log10(2.0))
    d_rec, d_ref, d_2x = (float(p.distance[0]) for p in (p_rec, p_ref, p_2x))
    a_rec, a_ref, a_2x = (float(p.age[0]) for p in (p_rec, p_ref, p_2x))
    assert abs(d_rec - d_ref) < 0.5  # kpc
    assert abs(a_rec - a_ref) < 0.1  # Gyr
    # the tolerances are meaningful: twice the flux moves the predictions by far more
    assert abs(d_2x - d_ref) > 4 * 0.5 or abs(a_2x - a_ref) > 4 * 0.1
    # the mass network (a small fixed one): per-pixel mass and field mass
    m_rec = tiny_model.predict(recovered.flux.values).mass.values[0].astype(float)
    m_ref = tiny_model.predict(reference.flux.values).mass.values[0].astype(float)
    assert np.abs(m_rec - m_ref).max() < 0.02
    assert (10 ** m_rec).sum() == pytest.approx((10 ** m_ref).sum(), rel=1e-3)


def test_flux_is_linear_in_counts_and_extinction(mock_fits, recovered):
    fainter = O.flux_map_from_image(mock_fits, centre=CENTRE, zero_point=ZP + 2.5)
    # one count is 2.5 mag fainter: every pixel 1 dex less flux
    np.testing.assert_allclose(fainter.flux.values, recovered.flux.values - 1.0, atol=2e-5)
    dered = O.flux_map_from_image(mock_fits, centre=CENTRE, extinction_av=0.5)
    np.testing.assert_allclose(dered.flux.values, recovered.flux.values + 0.2, atol=2e-5)


def test_counts_to_flux_is_the_solar_definition():
    # a V = M_V,sun star at 10 pc is 1 Lsun: F = 1 Lsun / (4 pi (0.01 kpc)^2), for any ZP
    for zp in (20.0, 25.0, 31.4):
        counts = 10 ** (-0.4 * (4.83 - zp))
        assert float(O.counts_to_flux(counts, zp)) * 4 * math.pi * 1e-4 == pytest.approx(1.0)
    # and a 1 Lsun star at 15 kpc has m = 4.83 + 5 log10(1500) and F = 1 / (4 pi 15^2)
    m = 4.83 + 5 * math.log10(1500.0)
    f = float(O.counts_to_flux(10 ** (-0.4 * (m - ZP)), ZP))
    assert f == pytest.approx(1 / (4 * math.pi * 15.0 ** 2))


# ---------------------------------------------------------------------------------------------
# PS1 specifics


def test_ps1_asinh_linearises_exactly(mock_counts, recovered, tmp_path):
    rng = np.random.default_rng(0)
    exptime = 330.0
    linear = mock_counts * 10 ** (0.4 * 2.5 * math.log10(exptime))  # ZP = 25 + 2.5 log10(t)
    linear = linear + rng.normal(0.0, 1e-3 * linear.max(), linear.shape)
    boffset = float(linear.mean())
    bsoften = float(math.sqrt(O.PS1_ASINH_ALPHA) * linear.std())  # the IPP's choices
    compressed = O.ps1_compress(linear, boffset, bsoften)
    np.testing.assert_allclose(O.ps1_linearise(compressed, boffset, bsoften), linear,
                               rtol=1e-10, atol=1e-9 * abs(linear).max())
    h = rotated_header(linear.shape[0], 0.2, 30.0)
    h["BSOFTEN"], h["BOFFSET"], h["EXPTIME"] = bsoften, boffset, exptime
    h["HIERARCH FPA.ZP"] = 25.0
    path = tmp_path / "ps1.fits"
    fits.writeto(path, compressed, h)
    img = O.read_image(path)
    assert img["linearised"]
    np.testing.assert_allclose(img["data"], linear, rtol=1e-9, atol=1e-9 * abs(linear).max())
    assert img["zero_point"] == pytest.approx(25.0 + 2.5 * math.log10(exptime))
    ds = O.flux_map_from_image(path, centre=CENTRE)
    assert ds.attrs["ps1_asinh_linearised"] == 1
    assert ds.attrs["field_flux_lsun_kpc2"] == pytest.approx(
        recovered.attrs["field_flux_lsun_kpc2"], rel=2e-3)
    bright = recovered.flux.values > np.percentile(recovered.flux.values, 50)
    np.testing.assert_allclose(ds.flux.values[bright], recovered.flux.values[bright], atol=0.01)


def test_ps1_zero_point_without_fpa_zp():
    h = fits.Header()
    h["BSOFTEN"], h["BOFFSET"], h["EXPTIME"] = 2.0, 1.0, 100.0
    zp, source = O.header_zero_point(h)
    assert zp == pytest.approx(30.0) and "PS1" in source
    del h["EXPTIME"]
    with pytest.raises(O.ObservationInputError, match="EXPTIME"):
        O.header_zero_point(h)


def test_tonry_2012_v_transformation_reproduces_table_6():
    # Tonry et al. (2012) Table 6, V - r_P1 against x = (g - r)_P1: linear B0 = 0.006, B1 = 0.474;
    # quadratic A0 = 0.005, A1 = 0.462, A2 = 0.013
    assert float(O.ps1_gr_to_v(15.0, 15.0)) == pytest.approx(15.006)
    assert float(O.ps1_gr_to_v(16.0, 15.0)) == pytest.approx(15.480)
    assert float(O.ps1_gr_to_v(16.0, 15.0, kind="quadratic")) == pytest.approx(15.480)
    assert float(O.ps1_gr_to_v(15.5, 15.0, kind="quadratic")) == pytest.approx(
        15.0 + 0.005 + 0.231 + 0.013 * 0.25)
    # the same table's independent V - g_P1 row (B0 = 0.006, B1 = -0.525) agrees within 0.002 mag
    x = np.linspace(0.0, 1.5, 16)
    g, r = 15.0 + x, np.full_like(x, 15.0)
    np.testing.assert_allclose(O.ps1_gr_to_v(g, r), g + 0.006 - 0.525 * x, atol=0.002)
    # linear and quadratic fits agree within their rms (0.012 mag) over GC colours
    np.testing.assert_allclose(O.ps1_gr_to_v(g, r), O.ps1_gr_to_v(g, r, kind="quadratic"),
                               atol=0.012)
    with pytest.raises(O.ObservationInputError):
        O.ps1_gr_to_v(1.0, 1.0, kind="cubic")


def test_ps1_g_r_images_give_the_v_map(mock_counts, recovered, tmp_path):
    colour = 0.6  # g - r, mag
    a0, a1, _ = O.TONRY2012_V["linear"]["coefficients"]
    r_counts = mock_counts * 10 ** (0.4 * (a0 + a1 * colour))  # V - r = a0 + a1 (g - r)
    g_counts = r_counts * 10 ** (-0.4 * colour)
    paths = {}
    for band, data in (("g", g_counts), ("r", r_counts)):
        h = rotated_header(data.shape[0], 0.2, 30.0)
        h["MAGZERO"] = ZP
        paths[band] = tmp_path / f"{band}.fits"
        fits.writeto(paths[band], data, h)
    ds = O.flux_map_from_ps1(paths["g"], paths["r"], centre=CENTRE)
    assert ds.attrs["field_gr_colour_mag"] == pytest.approx(colour, abs=1e-6)
    np.testing.assert_allclose(ds.gr_colour.values, colour, atol=1e-3)
    np.testing.assert_allclose(ds.flux.values, recovered.flux.values, atol=1e-3)
    assert "Tonry" in ds.attrs["v_transformation"]


# ---------------------------------------------------------------------------------------------
# errors and masking


def test_fits_without_wcs_is_refused(tmp_path):
    path = tmp_path / "nowcs.fits"
    fits.writeto(path, np.ones((50, 50)))
    with pytest.raises(O.ObservationInputError, match="no celestial WCS"):
        O.flux_map_from_image(path, centre=CENTRE, zero_point=ZP)


def test_centre_outside_the_image_is_refused(mock_fits):
    far = SkyCoord((RA0 + 1.0) * u.deg, DEC0 * u.deg)
    with pytest.raises(O.ObservationInputError, match="outside the 360 x 360 image"):
        O.flux_map_from_image(mock_fits, centre=far)
    # inside the image but too near its edge for the 40" field
    edge = SkyCoord(RA0 * u.deg, (DEC0 + 30 / 3600) * u.deg)
    with pytest.raises(O.ObservationInputError, match="not entirely inside the image"):
        O.flux_map_from_image(mock_fits, centre=edge)


def test_wrong_units_are_refused(mock_counts, tmp_path):
    h = rotated_header(mock_counts.shape[0], 0.2, 30.0)
    h["MAGZERO"] = ZP
    h["BUNIT"] = "MJy/sr"
    path = tmp_path / "jy.fits"
    fits.writeto(path, mock_counts, h)
    with pytest.raises(O.ObservationInputError, match="BUNIT = 'MJy/sr' is not a count unit"):
        O.flux_map_from_image(path, centre=CENTRE)
    h["BUNIT"] = "counts/s"
    fits.writeto(path, mock_counts, h, overwrite=True)
    with pytest.raises(O.ObservationInputError, match="count rate"):
        O.flux_map_from_image(path, centre=CENTRE)
    assert O.flux_map_from_image(path, centre=CENTRE, zero_point=ZP).flux.shape == (160, 160)


def test_missing_zero_point_is_refused(mock_counts, tmp_path):
    path = tmp_path / "nozp.fits"
    fits.writeto(path, mock_counts, rotated_header(mock_counts.shape[0], 0.2, 30.0))
    with pytest.raises(O.ObservationInputError, match="no zero point"):
        O.flux_map_from_image(path, centre=CENTRE)


def test_nan_pixels_are_interpolated_up_to_the_limit(mock_counts, recovered, tmp_path):
    h = rotated_header(mock_counts.shape[0], 0.2, 30.0)
    h["MAGZERO"] = ZP
    rng = np.random.default_rng(2)
    data = mock_counts.copy()
    centre = data.shape[0] // 2
    idx = rng.integers(centre - 100, centre + 100, size=(150, 2))  # scattered bad pixels
    data[idx[:, 0], idx[:, 1]] = np.nan
    data[centre + 40: centre + 43, centre - 30: centre - 27] = np.nan  # a 3x3 hole
    path = tmp_path / "nan.fits"
    fits.writeto(path, data, h)
    ds = O.flux_map_from_image(path, centre=CENTRE)
    n_bad = int(np.isnan(data).sum())
    assert ds.attrs["masked_pixels"] == n_bad
    assert 0 < ds.attrs["masked_fraction"] <= 0.01
    assert np.isfinite(ds.flux.values).all()
    assert ds.attrs["field_flux_lsun_kpc2"] == pytest.approx(
        recovered.attrs["field_flux_lsun_kpc2"], rel=5e-3)
    np.testing.assert_allclose(ds.flux.values, recovered.flux.values, atol=0.02)
    # above the limit the image is refused, naming the fraction
    data[centre - 60: centre + 60, centre - 60: centre - 40] = np.nan
    fits.writeto(path, data, h, overwrite=True)
    with pytest.raises(O.ObservationInputError, match=r"NaN/inf \(masked\)"):
        O.flux_map_from_image(path, centre=CENTRE)
    assert O.flux_map_from_image(path, centre=CENTRE,
                                 max_masked_fraction=0.2).attrs["masked_pixels"] > n_bad


def test_background_estimators_recover_a_flat_sky():
    rng = np.random.default_rng(5)
    data = 7.0 + rng.normal(0.0, 0.5, (300, 300))
    yy, xx = np.indices(data.shape)
    data += 500.0 * np.exp(-((xx - 150) ** 2 + (yy - 150) ** 2) / (2 * 15.0 ** 2))
    wcs = O.target_wcs(CENTRE, n_pixels=300, pixel_arcsec=0.25)
    for method in ("median", "mesh"):
        out, notes = O.flux_map._subtract_background(data, wcs, CENTRE, method, 20.0, 50, "test")
        assert notes["background_level"] == pytest.approx(7.0, abs=0.05)
        assert abs(np.median(out[:50, :50])) < 0.1
    with pytest.raises(O.ObservationInputError, match="background must be"):
        O.flux_map._subtract_background(data, wcs, CENTRE, "mode", 20.0, 50, "test")


def test_centre_and_inputs_are_validated(mock_fits):
    with pytest.raises(O.ObservationInputError, match="exactly one"):
        O.flux_map_from_image(mock_fits)
    with pytest.raises(O.ObservationInputError, match="not in the catalogue"):
        O.flux_map_from_image(mock_fits, cluster="NGC 9999")
    sky, _ = O.resolve_centre(("13:16:27.09", "+17:42:00.9"))
    assert sky.separation(CENTRE).arcsec < 0.01
    sky, _ = O.resolve_centre((RA0, DEC0))
    assert sky.separation(CENTRE).arcsec < 1e-6
    with pytest.raises(O.ObservationInputError, match="no such file"):
        O.flux_map_from_image("/nonexistent.fits", centre=CENTRE)


# ---------------------------------------------------------------------------------------------
# catalogue and range check


PAPER_INSIDE = {"NGC 5053", "Pal 11", "NGC 7492", "NGC 5466", "NGC 6517"}


def test_catalogue_has_the_17_clusters_with_units():
    t = O.load_catalogue()
    assert len(t) == 17
    assert t["distance"].unit == u.kpc and t["ra"].unit == u.deg and t["dec"].unit == u.deg
    assert t["l_fov"].unit == u.Lsun and t["r_h"].unit == u.arcmin and t["age"].unit == u.Gyr
    assert t["ml_v"].unit == u.Msun / u.Lsun and t["ebv"].unit == u.mag
    assert all(t[c].description for c in t.colnames)
    assert set(t.meta["references"]) >= {"1", "2", "3", "paper"}
    # sorted by field luminosity, as in the paper
    assert np.all(np.diff(t["l_fov"]) > 0)
    # ages only where VandenBerg et al. (2013) have one
    assert int(np.sum(~t["age"].mask)) == 8
    row = O.cluster("ngc5053")
    assert row["ra_hms"] == "13 16 27.09" and row["dec_dms"] == "+17 42 00.9"
    assert float(row["ra"]) == pytest.approx(RA0, abs=1e-6)
    assert O.cluster("M 68")["name"] == "NGC 4590"
    assert O.cluster("Palomar 11")["name"] == "Pal 11"


def test_paper_luminosity_verdicts_are_reproduced():
    for row in O.load_catalogue():
        verdict = O.check_luminosity(float(row["l_fov"]), float(row["distance"]))
        assert verdict.inside == (row["name"] in PAPER_INSIDE), row["name"]
        assert any("paper's range" in n for n in verdict.notes)


def test_range_check_uses_the_model_provenance(reference, tiny_model):
    lum = O.field_luminosity(reference, DISTANCE)
    assert lum == pytest.approx(reference.attrs["field_luminosity_v_lsun"], rel=1e-5)
    verdict = O.range_check(reference, DISTANCE, model=tiny_model)
    assert verdict.inside, verdict.reasons

    class Narrow:
        provenance = {"training_luminosity_range": {"luminosity_v_lsun": [10.0, 100.0]},
                      "training_grid": {"distance_kpc": [20.0, 40.0]}}
        standardisation = STANDARDISATION
        map_shape = (160, 160)

    with pytest.warns(O.RangeWarning, match="above the training range"):
        verdict = O.range_check(reference, DISTANCE, model=Narrow())
    assert not verdict.inside and verdict.verdict == "outside"
    assert any("distance 15 kpc is outside" in r for r in verdict.reasons)
    assert verdict.reference == "model provenance training_luminosity_range"
    # a map of mostly empty (floored) pixels fails the image-statistics check
    empty = np.full((160, 160), math.log10(1e-12), dtype=np.float32)
    empty[70:90, 70:90] = -2.0
    with pytest.warns(O.RangeWarning):
        verdict = O.range_check(empty, DISTANCE, model=tiny_model)
    assert any("flux floor" in r for r in verdict.reasons)


# ---------------------------------------------------------------------------------------------
# prediction, writers and the command line


def test_predict_and_write(recovered, tiny_model, tmp_path):
    ds = O.predict_flux_map(recovered, tiny_model, distance_kpc=DISTANCE)
    for name in ("flux", "mass", "field_mass", "luminosity_v", "mass_to_light", "age", "distance"):
        assert name in ds
    assert float(ds.mass_to_light) == pytest.approx(
        float(ds.field_mass) / float(ds.luminosity_v))
    assert float(ds.luminosity_v) == pytest.approx(
        recovered.attrs["field_flux_lsun_kpc2"] * 4 * math.pi * DISTANCE ** 2)
    assert ds.attrs["distance_source"] == "given"
    assert ds.attrs["range_verdict"] == "inside"
    nc = O.write_netcdf(ds, tmp_path / "out" / "pred.nc")
    back = xr.open_dataset(nc)
    np.testing.assert_array_equal(back.mass.values, ds.mass.values)
    assert back.attrs["range_verdict"] == "inside"
    back.close()
    png = O.write_figure(ds, tmp_path / "out" / "pred.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = O.write_figure(ds, tmp_path / "out" / "pred.html").read_text()
    assert "data:image/png;base64," in page and "inside" in page
    assert not list((tmp_path / "out").glob("*.part"))
    # without a distance, a catalogue cluster gives Harris's distance
    named = recovered.copy()
    named.attrs["cluster"] = "NGC 5053"
    ds2 = O.predict_flux_map(named, tiny_model)
    assert ds2.attrs["distance_used_kpc"] == 17.4
    assert ds2.attrs["literature_ml_v"] == 2.60


def test_cli_predict_end_to_end(mock_fits, tiny_model, tmp_path, capsys):
    weights = tiny_model.save(tmp_path / "model")
    parser = O.add_predict_arguments(argparse.ArgumentParser(prog="pidoc predict"))
    args = parser.parse_args([str(mock_fits), "--centre", "13:16:27.09", "+17:42:00.9",
                              "--distance", "15", "--weights", str(weights),
                              "--out", str(tmp_path / "res" / "ngc5053")])
    assert O.run_predict(args) == 0
    for suffix in (".nc", ".png", ".html"):
        assert (tmp_path / "res" / f"ngc5053{suffix}").is_file()
    out = capsys.readouterr().out
    assert f"training range: inside; model: {weights}" in out  # which model answered
    assert xr.load_dataset(tmp_path / "res" / "ngc5053.nc").attrs["model"] == str(weights)
    with pytest.raises(SystemExit):
        parser.parse_args([str(mock_fits), "--out", "x"])  # neither --centre nor --cluster
    bad = parser.parse_args(["--g", str(mock_fits), "--cluster", "NGC 5053", "--out", "x"])
    with pytest.raises(SystemExit, match="both --g and --r"):
        O.run_predict(bad)
    outside = parser.parse_args([str(mock_fits), "--cluster", "NGC 4590", "--weights",
                                 str(weights), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="outside the 360 x 360 image"):
        O.run_predict(outside)


def test_one_training_range_check_and_no_back_edge():
    """observations holds the training-range check; it imports neither exploration nor plots,
    and matplotlib, which draws its figure, is a declared dependency."""
    import ast
    import tomllib

    from pidoc_core import paper
    from pidoc_core.imager import ObservationSetup

    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "pidoc_core" / "observations").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("exploration", "plots"), (path.name, node.module)
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("matplotlib") for d in deps)
    assert O.TRAINING_GRID is paper.TRAINING_GRID
    setup = ObservationSetup(distance_kpc=150, psf_fwhm_arcsec=2.0, rotation_deg=45.0)
    assert O.training_grid_flags(setup, 15.0) == [
        "distance 150 kpc is outside the trained 10-100 kpc",
        'PSF FWHM 2" is outside the trained 0.5-1.5"',
        "rotation 45 deg is not one of the trained 0, 90, 180, 270 deg",
        "age 15 Gyr is outside the trained 0-14 Gyr",
    ]
    assert O.training_grid_flags(ObservationSetup(distance_kpc=30, psf_fwhm_arcsec=1.0), 12) == []
