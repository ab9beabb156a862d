"""pidoc_core.exploration with the three networks: which mass network answers, and intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pidoc_core.exploration import MASS_NETWORKS, explore, numbers_table, to_fits
from pidoc_core.imager import ObservationSetup

from .conftest import plummer_snapshot

STANDARDISATION = dict(flux_mean=-5.38, flux_std=0.97, mass_mean=-0.85, mass_std=0.45,
                       distance_age_mean=29.63, distance_age_std=32.40, ml_mean=0.0, ml_std=0.2,
                       log_distance_mean=1.3, log_distance_std=0.4)
#: Hand-made calibration (as tests/test_report.py): +-0.2 dex mass, +-5 Gyr and +-5 kpc.
INTERVALS = {
    "level": 0.68, "n_maps": 12,
    "age": {"edges": [-1e9, 1e9], "q_lo": [-5.0], "q_hi": [5.0], "count": [12]},
    "distance": {"edges": [-1e9, 1e9], "q_lo": [-5.0], "q_hi": [5.0], "count": [12]},
    "mass": {m: {"log_field_mass": {"edges": [0.0, 1e9], "q_lo": [-0.2], "q_hi": [0.2],
                                    "count": [12]},
                 "pixel_log_mass": {"edges": [0.0, 1e9], "q_lo": [-0.3], "q_hi": [0.3],
                                    "count": [12]}}
             for m in ("distance-aware/given", "distance-aware/predicted", "flux-only")},
}


def three_network_model(*, intervals: bool = True, mass_ml: bool = True, mass: bool = True,
                        age_distance: bool = True):
    """A small untrained model with the networks asked for (and a hand-made calibration)."""
    from pidoc_core.model import PiDOC
    from pidoc_core.networks import build_age_distance_net, build_mass_unet

    import keras

    keras.utils.set_random_seed(7)
    model = PiDOC(
        mass_ml_network=build_mass_unet(filters=(4, 8), input_shape=(160, 160, 2))
        if mass_ml else None,
        mass_network=build_mass_unet(filters=(4, 8), input_shape=(160, 160, 1)) if mass else None,
        age_distance_network=build_age_distance_net(filters=(4, 8), input_shape=(160, 160, 1))
        if age_distance else None,
        standardisation=dict(STANDARDISATION),
        provenance={"training_mass_to_light": 2.0})
    if intervals:
        model.provenance["intervals"] = INTERVALS
    return model


@pytest.fixture(scope="module")
def model():
    return three_network_model()


@pytest.fixture(scope="module")
def snap():
    return plummer_snapshot(3000, scale_pc=1.0, time=12.0, name="MW15 analogue")


SETUP = ObservationSetup(distance_kpc=30.0, psf_fwhm_arcsec=1.0)


def test_each_mass_network_is_the_models_answer(model, snap):
    flux = None
    for choice in MASS_NETWORKS:
        res = explore(snap, SETUP, model=model, upsilon=2.0, mass_network=choice)
        assert res.mass_network == choice and res.network_note == ""
        flux = res.observation.flux.values
        if choice == "distance-aware":
            want = model.predict(flux, distance_kpc=30.0, mass_network="distance-aware")
            assert want.attrs["distance_source"] == "given"
        elif choice == "distance-aware/predicted":
            want = model.predict(flux, mass_network="distance-aware")
            assert want.attrs["distance_source"] == "predicted"
        else:
            want = model.predict(flux, mass_network="flux-only")
        np.testing.assert_allclose(res.mass_pred, want.mass.values[0], atol=1e-6)
        assert res.intervals["field_mass"] == pytest.approx(
            (float(want.field_mass_lo[0]), float(want.field_mass_hi[0])))
        assert res.intervals["age"] == pytest.approx((float(want.age_lo[0]),
                                                      float(want.age_hi[0])))
        assert res.intervals["distance"] == pytest.approx((float(want.distance_lo[0]),
                                                           float(want.distance_hi[0])))
        np.testing.assert_allclose(res.mass_lo, want.mass_lo.values[0], atol=1e-6)
        lo, hi = res.intervals["field_mass"]
        assert lo < res.totals["mass_pidoc_msun"] < hi
        # the per-pixel band is the ring mean of the per-pixel bounds, around the prediction
        prof = res.profiles
        ok = np.isfinite(prof.mass_pred.values)
        assert np.all(prof.mass_pred_lo.values[ok] <= prof.mass_pred.values[ok])
        assert np.all(prof.mass_pred_hi.values[ok] >= prof.mass_pred.values[ok])
    aware = explore(snap, SETUP, model=model, upsilon=2.0, mass_network="distance-aware")
    direct = explore(snap, SETUP, model=model, upsilon=2.0, mass_network="flux-only")
    assert not np.allclose(aware.mass_pred, direct.mass_pred)


def test_default_is_the_distance_aware_network_given_the_observing_distance(model, snap):
    res = explore(snap, SETUP, model=model, upsilon=2.0)
    assert res.mass_network == "distance-aware"
    near = explore(snap, ObservationSetup(distance_kpc=20.0, psf_fwhm_arcsec=1.0), model=model,
                   upsilon=2.0)
    want = model.predict(near.observation.flux.values, distance_kpc=20.0)
    np.testing.assert_allclose(near.mass_pred, want.mass.values[0], atol=1e-6)


@pytest.mark.parametrize(("parts", "asked", "answered", "note"), [
    (dict(mass_ml=False), "distance-aware", "flux-only", "no distance-aware network"),
    (dict(mass_ml=False), "distance-aware/predicted", "flux-only", "no distance-aware network"),
    (dict(mass=False), "flux-only", "distance-aware", "no flux-only network"),
    (dict(age_distance=False), "distance-aware/predicted", "distance-aware",
     "no age/distance network"),
])
def test_a_model_without_the_network_asked_for_falls_back_and_says_so(snap, parts, asked,
                                                                       answered, note):
    model = three_network_model(intervals=False, **parts)
    res = explore(snap, SETUP, model=model, upsilon=2.0, mass_network=asked)
    assert res.mass_network == answered and note in res.network_note
    assert numbers_table(res).attrs["network_note"] == res.network_note


def test_unknown_mass_network_is_refused(model, snap):
    with pytest.raises(ValueError, match="mass_network must be one of"):
        explore(snap, SETUP, model=model, upsilon=2.0, mass_network="both")


def test_numbers_table_carries_intervals_and_the_network(model, snap):
    res = explore(snap, SETUP, model=model, upsilon=2.0, mass_network="flux-only")
    df = numbers_table(res)
    assert df.attrs["mass_network"] == "flux-only"
    lo, hi = res.intervals["field_mass"]
    assert df.loc["Field mass (Msun)", "π-DOC 68 % low"] == lo
    assert df.loc["Field mass (Msun)", "π-DOC 68 % high"] == hi
    lum = res.totals["luminosity_v_lsun"]
    assert df.loc["M/L_V (Msun/Lsun)", "π-DOC 68 % low"] == pytest.approx(lo / lum)
    assert df.loc["Age (Gyr)", "π-DOC 68 % high"] == res.intervals["age"][1]
    assert df.loc["Distance (kpc)", "π-DOC 68 % low"] == res.intervals["distance"][0]
    line = df.attrs["text"][0]
    assert line.startswith("Field mass (Msun): true ")
    assert f"π-DOC {res.totals['mass_pidoc_msun']:.3g} [{lo:.2g}, {hi:.2g}] (68 %)" in line
    header = to_fits(res)[0].header
    assert header["MASSNET"] == "flux-only" and header["MFLD_LO"] == pytest.approx(lo)


def test_without_intervals_nothing_pretends_to_be_one(snap):
    res = explore(snap, SETUP, model=three_network_model(intervals=False), upsilon=2.0)
    assert res.intervals == {} and res.mass_lo is None and res.mass_hi is None
    assert "mass_pred_lo" not in res.profiles
    df = numbers_table(res)
    assert not any("68 %" in c for c in df.columns)
    assert not any("68 %" in line for line in df.attrs["text"])
    assert "MFLD_LO" not in to_fits(res)[0].header
    assert math.isfinite(res.totals["mass_pidoc_msun"])
