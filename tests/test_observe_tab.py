"""The dashboard's Observations tab without a browser: an uploaded FITS image becomes the same
flux map, mass map and numbers as the library computes; bad uploads give an Alert, not a traceback.

The image is a mock observation of a Plummer cluster written, as in ``test_observations.py``, as
calibrated counts with a rotated TAN WCS at the Harris (2010) centre of NGC 5053, in memory.
"""

import gzip
import io
import math

import numpy as np
import pytest
from astropy.io import fits

from pidoc_core import observations as O
from pidoc_core.imager import ObservationSetup, render

from .conftest import plummer_snapshot
from .test_observations import STANDARDISATION, ZP, counts_per_flux, rotated_header

DISTANCE = 17.4  # kpc, NGC 5053 (Harris 2010)


@pytest.fixture(scope="module")
def model():
    import keras

    from pidoc_core.model import PiDOC

    keras.utils.set_random_seed(0)
    return PiDOC.build(mass=dict(filters=(4, 8, 8, 8), bottleneck_filters=8),
                       age_distance=dict(filters=(4, 4, 4, 4)), standardisation=STANDARDISATION,
                       provenance={"training_mass_to_light": 1.0})


@pytest.fixture(scope="module")
def fits_bytes():
    """A 72" mock image (0.2" pixels, rotated 30 deg) of a Plummer cluster at NGC 5053, as bytes."""
    snap = plummer_snapshot(20_000, seed=3)
    setup = ObservationSetup(distance_kpc=DISTANCE, psf_fwhm_arcsec=1.0, rotation_deg=30.0,
                             fov_arcsec=72.0, pixel_arcsec=0.2, smooth_sigma_px=0.0)
    flux, _ = render(snap, setup)
    h = rotated_header(flux.shape[0], 0.2, 30.0)
    h["BUNIT"] = "count"
    h["MAGZERO"] = ZP
    buf = io.BytesIO()
    fits.PrimaryHDU((flux * counts_per_flux()).astype(np.float32), h).writeto(buf)
    return buf.getvalue()


@pytest.fixture()
def view(model):
    from app.views.observe import ObservationView

    return ObservationView(model)


def upload(view, data, name="ngc5053.fits"):
    view.upload.filename = name
    view.upload.value = data


def test_upload_predict_updates_maps_numbers_and_verdict(view, fits_bytes, model):
    assert np.isnan(view.flux_src.data["image"][0]).all()
    upload(view, fits_bytes)
    assert view.status.alert_type == "info" and "Predict" in view.status.object
    # the image's WCS centre picks the Table 3 cluster and fills in its A_V = 3.1 E(B-V)
    assert view.cluster == "NGC 5053" and "NGC 5053" in view.status.object
    ebv = float(O.load_catalogue()[0]["ebv"]) if O.load_catalogue()[0]["name"] == "NGC 5053" \
        else None
    assert ebv is None or view.extinction == pytest.approx(round(3.1 * ebv, 2))
    # the 40" field is drawn on the uploaded image: a square of 40" / 0.2" = 200 pixels a side
    fx, fy = np.asarray(view.footprint_src.data["x"]), np.asarray(view.footprint_src.data["y"])
    assert len(fx) == 4
    assert np.hypot(fx[0] - fx[1], fy[0] - fy[1]) == pytest.approx(200, rel=0.01)
    view.extinction = 0.0
    view.predict()
    assert view.status.alert_type == "success", view.status.object
    # the maps are the library's: the flux map of the image, the model's mass map of it
    expected = O.flux_map_from_image(fits.open(io.BytesIO(fits_bytes)), cluster="NGC 5053")
    flux = view.flux_src.data["image"][0]
    np.testing.assert_allclose(flux, expected.flux.values, atol=1e-6)
    mass = view.mass_src.data["image"][0]
    np.testing.assert_allclose(mass, model.predict(expected.flux.values).mass.values[0], atol=1e-5)
    ds = view.result
    # numbers: L_V = (sum F) 4 pi d^2 at the catalogue distance, M/L = field mass / L_V
    lum = expected.attrs["field_flux_lsun_kpc2"] * 4 * math.pi * DISTANCE ** 2
    assert float(ds.luminosity_v) == pytest.approx(lum, rel=1e-6)
    assert ds.attrs["distance_source"].startswith("catalogue")
    assert float(ds.field_mass) == pytest.approx((10.0 ** mass.astype(float)).sum(), rel=1e-4)
    ml = float(ds.field_mass) / lum
    html = view.numbers.object
    assert f"{ml:.2f}" in html and f"{lum:,.0f}" in html and f"{float(ds.age):.1f}" in html
    # beside ours: the paper's v0.1 predictions and the literature for NGC 5053 (Table 3)
    assert "1.76" in html and "2.60 ± 0.59" in html and "16.8" in html and "12.2" in html
    # and which model answered (this test's model is not saved: no shipped name, no directory)
    assert ds.attrs["model"] == "pi-DOC (not saved)"
    assert "Answered by a model that is not saved." in html
    # the verdict is shown: a Plummer field of a few 1000 Lsun at 17.4 kpc is inside
    assert view.verdict.visible and view.verdict.alert_type == "success"
    assert "Inside" in view.verdict.object
    # colour scales follow the maps
    assert view.flux_mapper.low < view.flux_mapper.high <= float(flux.max()) + 1e-6


def test_radec_centre_distance_and_outside_verdict(view, fits_bytes):
    upload(view, gzip.compress(fits_bytes), name="ngc5053.fits.gz")
    view.mode = "RA / Dec"
    assert view.param.ra.precedence > 0 and view.param.cluster.precedence < 0
    view.ra, view.dec = "13:16:27.09", "+17:42:00.9"
    view.extinction = 0.0
    view.distance = 120.0  # beyond the trained 10-100 kpc, and far too luminous
    view.predict()
    assert view.status.alert_type == "success", view.status.object
    ds = view.result
    assert ds.attrs["distance_used_kpc"] == 120.0 and ds.attrs["distance_source"] == "given"
    assert view.verdict.visible and view.verdict.alert_type == "warning"
    assert "Outside" in view.verdict.object and "120 kpc is outside" in view.verdict.object
    # no catalogue row for a free centre: only our column
    assert "Table 3" not in view.numbers.object
    # the luminosity scales as d^2 at fixed flux
    view.distance = 60.0
    view.predict()
    assert float(view.result.luminosity_v) == pytest.approx(float(ds.luminosity_v) / 4, rel=1e-6)


def test_oversize_upload_is_refused_before_parsing(model, fits_bytes, monkeypatch):
    from app.views import observe as observe_tab
    from app.views.observe import ObservationView

    small = ObservationView(model, max_upload_mb=0.1)
    assert len(fits_bytes) > 0.1 * 2 ** 20

    def no_parsing(*args, **kwargs):
        raise AssertionError("an oversize upload was parsed")

    monkeypatch.setattr(observe_tab.fits, "open", no_parsing)
    upload(small, fits_bytes, name="big.fits")
    assert small.status.alert_type == "danger"
    assert "larger than the 0.1 MB upload limit" in small.status.object
    assert "big.fits" in small.status.object
    small.predict()
    assert small.status.alert_type == "danger" and "0.1 MB upload limit" in small.status.object
    assert np.isnan(small.flux_src.data["image"][0]).all() and small.result is None


def test_decompression_bomb_is_refused(model):
    from app.views.observe import ObservationView

    tiny = ObservationView(model, max_megapixels=0.01)  # 10,000 pixels
    buf = io.BytesIO()
    fits.PrimaryHDU(np.zeros((200, 200), dtype=np.float64)).writeto(buf)
    upload(tiny, gzip.compress(buf.getvalue()), name="bomb.fits.gz")
    tiny.predict()
    assert tiny.status.alert_type == "danger" and "million pixels" in tiny.status.object


@pytest.mark.parametrize("case, message", [
    ("no_wcs", "no celestial WCS"),
    ("not_fits", "not a readable FITS file"),
    ("wrong_unit", "is not a count unit"),
    ("nan", "NaN/inf (masked)"),
    ("outside", "outside the"),
    ("nothing", "no file uploaded"),
])
def test_bad_inputs_give_an_error_alert(view, fits_bytes, case, message):
    data = fits_bytes
    view.cluster = "NGC 5053"
    if case == "no_wcs":
        buf = io.BytesIO()
        fits.PrimaryHDU(np.ones((300, 300), dtype=np.float32),
                        fits.Header({"MAGZERO": ZP})).writeto(buf)
        data = buf.getvalue()
    elif case == "not_fits":
        data = b"SIMPLE? no, this is a text file\n" * 100
    elif case in ("wrong_unit", "nan"):
        hdu = fits.open(io.BytesIO(fits_bytes))[0]
        if case == "wrong_unit":
            hdu.header["BUNIT"] = "MJy/sr"
        else:
            hdu.data[100:260, 100:260] = np.nan
        buf = io.BytesIO()
        hdu.writeto(buf)
        data = buf.getvalue()
    if case != "nothing":
        upload(view, data, name=f"{case}.fits")
    if case == "outside":
        view.cluster = "NGC 4590"
    view.predict()
    assert view.status.alert_type == "danger"
    assert message in view.status.object, view.status.object
    assert "Traceback" not in view.status.object
    assert not view.verdict.visible and view.result is None
    # the previous prediction is gone: no maps, no numbers under the error
    assert np.isnan(view.mass_src.data["image"][0]).all() and view.numbers.object == ""
    assert "=..." not in view.status.object and "=True" not in view.status.object


def test_an_error_clears_the_previous_prediction(view, fits_bytes):
    upload(view, fits_bytes)
    view.predict()
    assert view.status.alert_type == "success" and view.numbers.object
    view.mode = "RA / Dec"  # and no coordinates entered
    view.predict()
    assert view.status.alert_type == "danger" and "enter both RA and Dec" in view.status.object
    assert view.result is None and view.numbers.object == "" and not view.verdict.visible
    assert np.isnan(view.flux_src.data["image"][0]).all()


def test_messages_use_the_dashboards_words():
    from app.views.observe import dashboard_words

    said = dashboard_words("BUNIT = 'count/s' is a count rate; pass the zero point for 1 count/s "
                           "explicitly (zero_point=...), header zero points refer to counts")
    assert "zero_point" not in said and "Zero point field" in said
    assert "training_luminosity_range" not in dashboard_words(
        "the model records no training_luminosity_range; using the paper's range")


def test_panel_builds(view):
    import panel as pn

    layout = view.panel()
    assert isinstance(layout, pn.Row)
    assert view.upload.accept == ".fits,.fit,.fz,.fits.gz"
    root = layout.get_root()  # the Bokeh models of the tab build
    assert root is not None


def test_network_and_intervals_are_the_cores(fits_bytes):
    """A three-network model with intervals: the tab says which network answered and shows the
    library's 68 % intervals; the module's model (no intervals) shows none."""
    from app.views.observe import ObservationView

    from .test_exploration import STANDARDISATION as STD3, three_network_model

    model = three_network_model()
    assert set(STD3) >= {"ml_mean", "log_distance_mean"}
    view = ObservationView(model)
    upload(view, fits_bytes)
    view.extinction = 0.0
    view.predict()
    assert view.status.alert_type == "success", view.status.object
    ds = view.result
    expected = O.predict_image(fits.open(io.BytesIO(fits_bytes)), cluster="NGC 5053", model=model)
    assert ds.attrs["mass_network"] == expected.attrs["mass_network"] == "distance-aware"
    html = view.numbers.object
    assert "Mass from the distance-aware network, given this distance." in html
    lo, hi = float(expected.field_mass_lo), float(expected.field_mass_hi)
    assert float(ds.field_mass_lo) == pytest.approx(lo) and lo < float(ds.field_mass) < hi
    assert f"[{lo:,.0f}, {hi:,.0f}]" in html
    assert f"[{float(expected.age_lo):.1f}, {float(expected.age_hi):.1f}]" in html
    assert f"[{float(expected.distance_lo):.1f}, {float(expected.distance_hi):.1f}]" in html
    lum = float(ds.luminosity_v)
    assert f"[{lo / lum:.2f}, {hi / lum:.2f}]" in html
    assert "68 % interval" in html
    # a typed distance is given to the distance-aware network too
    view.distance = 25.0
    view.predict()
    assert view.result.attrs["distance_source"] == "given"
    assert "given this distance" in view.numbers.object


def test_without_intervals_the_tab_shows_none(view, fits_bytes):
    upload(view, fits_bytes)
    view.predict()
    html = view.numbers.object
    assert "68 % interval" not in html and "This model carries no intervals" in html
    assert "Mass from the flux-only network (the paper&#x27;s)" in html


def _mock_rows():
    """A mock Table 3 as pidoc mock-table3 writes it: two clusters, the second without
    intervals (a model that carries none)."""
    from astropy.table import Table

    nan = float("nan")
    rows = [dict(name="NGC 5053", run="W17 N50k rh8 Rg15 FeH-1.6 BH", age_gyr=12.25,
                 distance_kpc=17.4, match_distance=3.2, mock_l_fov=705.4, mock_r_h_arcmin=1.7,
                 mock_fe_h=-1.6, l_fov=341.23, r_h_arcmin=2.61, fe_h=-2.27, true_ml=1.93,
                 pidoc_ml=1.41, pidoc_ml_lo=1.02, pidoc_ml_hi=1.88, mass_network="distance-aware",
                 pidoc_ml_flux_only=1.2, pidoc_age=11.2, pidoc_age_lo=9.1, pidoc_age_hi=13.0,
                 pidoc_distance=15.9, pidoc_distance_lo=11.0, pidoc_distance_hi=21.5,
                 range_verdict="inside", paper_ml=1.756, paper_age=13.7, paper_distance=16.8),
            dict(name="Pal 11", run="W04 N50k rh8 Rg30 FeH-0.4", age_gyr=12.0, distance_kpc=13.4,
                 match_distance=1.0, mock_l_fov=700.0, mock_r_h_arcmin=1.2, mock_fe_h=-0.4,
                 l_fov=681.17, r_h_arcmin=1.46, fe_h=-0.4, true_ml=2.5, pidoc_ml=2.25,
                 pidoc_ml_lo=nan, pidoc_ml_hi=nan, mass_network="flux-only",
                 pidoc_ml_flux_only=2.25, pidoc_age=12.5, pidoc_age_lo=nan, pidoc_age_hi=nan,
                 pidoc_distance=14.0, pidoc_distance_lo=nan, pidoc_distance_hi=nan,
                 range_verdict="outside", paper_ml=0.772, paper_age=14.9, paper_distance=16.2)]
    rows[0]["run_in_training"], rows[1]["run_in_training"] = False, True
    table = Table(rows=rows)
    table.meta["psf_fwhm_arcsec"] = 1.0
    return table


def test_mock_table3_is_shown_for_the_chosen_cluster_and_in_full(model):
    from app.views.observe import ObservationView

    view = ObservationView(model, mock_table=_mock_rows())
    view.cluster = "NGC 5053"
    note = view.mock_note.object
    assert "On a mock of NGC 5053" in note and "W17 N50k rh8 Rg15 FeH-1.6 BH" in note
    assert "M/L<sub>V</sub> 1.41 [1.02, 1.88] against the mock's true 1.93" in note
    assert "age 11.2 [9.1, 13.0] Gyr; distance 15.9 [11.0, 21.5] kpc (inside)" in note
    assert "Gyr, this model gives" in note  # the table names no model
    view.cluster = "Pal 11"  # no intervals: none shown, none made up
    assert "M/L<sub>V</sub> 2.25 against the mock's true 2.50; age 12.5 Gyr" in view.mock_note.object
    view.cluster = "NGC 4590"  # a cluster the table lacks: nothing
    assert view.mock_note.object == ""
    named = _mock_rows()
    named.meta["model"] = "wide"
    wide = ObservationView(model, mock_table=named)
    wide.cluster = "NGC 5053"
    assert "Gyr, the wide model gives M/L" in wide.mock_note.object
    frame = view.mock_table_frame()
    assert list(frame["cluster"]) == ["NGC 5053", "Pal 11"]
    assert frame.loc[0, "M/L π-DOC [68 %]"] == "1.41 [1.02, 1.88]"
    assert frame.loc[1, "M/L π-DOC [68 %]"] == "2.25"
    assert frame.loc[0, "L_FoV: cluster / mock (Lsun)"] == "341 / 705"
    assert frame.loc[1, "training range"] == "outside"
    assert frame.loc[1, "grid run"] == "W04 N50k rh8 Rg30 FeH-0.4 (a training run)"
    assert frame.loc[0, "grid run"] == "W17 N50k rh8 Rg15 FeH-1.6 BH"


def test_without_a_mock_table3_the_tab_says_how_to_make_one(model):
    from app.views.observe import ObservationView

    view = ObservationView(model)
    assert view.mock_note.object == ""
    assert "pidoc mock-table3" in view._mock_card().object
