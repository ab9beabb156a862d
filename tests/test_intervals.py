"""68 % intervals calibrated on validation residuals (pidoc_core.model.intervals)."""

from __future__ import annotations

import numpy as np
import pytest

from pidoc_core.model import PiDOC
from pidoc_core.model.intervals import calibrate_intervals, interval, quantile_table
from pidoc_core.model.spec import ModelError


def test_quantile_table_bins_by_the_known_quantity_and_covers_68_percent():
    rng = np.random.default_rng(0)
    by = np.r_[np.full(4000, 10.0), np.full(4000, 80.0)]
    sigma = np.where(by < 50, 0.05, 0.3)
    r = rng.normal(0.02, sigma)
    table = quantile_table(r, by, n_bins=2)
    assert table["count"] == [4000, 4000]
    np.testing.assert_allclose(table["q_lo"], [0.02 - 0.05, 0.02 - 0.3], atol=0.02)
    np.testing.assert_allclose(table["q_hi"], [0.02 + 0.05, 0.02 + 0.3], atol=0.02)
    # fresh predictions p = truth + r': the interval [p - q84, p - q16] holds the truth 68 %
    truth = rng.uniform(3, 4, 8000)
    pred = truth + rng.normal(0.02, sigma)
    lo, hi = interval(pred, by, table)
    assert np.mean((truth >= lo) & (truth <= hi)) == pytest.approx(0.68, abs=0.02)
    # maps take their sample's bin
    lo_map, hi_map = interval(np.zeros((2, 3, 3)), np.array([10.0, 80.0]), table)
    assert lo_map.shape == (2, 3, 3) and np.all(lo_map[1] < lo_map[0])


def test_quantile_table_refuses_too_few_residuals():
    with pytest.raises(ModelError, match="at least 20 finite residuals, got 5"):
        quantile_table(np.zeros(5), np.zeros(5))


@pytest.fixture(scope="module")
def val_path(tmp_path_factory):
    from pidoc_core import dataset as D

    from .test_dataset import PlummerRun

    runs = {name: PlummerRun(name, scale, n_stars=400, times=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0))
            for name, scale in zip((*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN), (1.0, 2.0, 1.5))}
    plans = D.paper_splits(runs, n_train=40, n_val=120, n_test=8, seed=3, order="snapshot")
    path = tmp_path_factory.mktemp("val") / "val.zarr"
    D.write_dataset(plans["val"], runs, path, chunk_size=8, progress=False,
                    imager_options={"fov_arcsec": 8.0})
    return path


@pytest.fixture(scope="module")
def val_store(val_path):
    from pidoc_core import dataset as D

    return D.open_dataset(val_path)


def test_calibrated_model_predicts_intervals_that_cover_its_validation_maps(val_store):
    from pidoc_core import dataset as D
    from pidoc_core.networks import build_age_distance_net, build_mass_unet

    consts = D.standardisation(val_store, allow_other_split=True)
    model = PiDOC(mass_ml_network=build_mass_unet(filters=(4, 8), input_shape=(32, 32, 2)),
                  age_distance_network=build_age_distance_net(filters=(4, 8),
                                                              input_shape=(32, 32, 1)),
                  standardisation=consts)
    cal = calibrate_intervals(model, val_store, n_bins=2)
    assert set(cal["mass"]) == {"distance-aware/given", "distance-aware/predicted"}
    model.provenance["intervals"] = cal
    flux = val_store.flux.values
    d = val_store.distance.values
    out = model.predict(flux, distance_kpc=d)
    assert {"field_mass_lo", "field_mass_hi", "mass_lo", "mass_hi", "distance_lo",
            "age_hi"} <= set(out.data_vars)
    true_field = np.sum(10.0 ** val_store.mass.values.astype(float), axis=(1, 2))
    inside = (true_field >= out.field_mass_lo.values) & (true_field <= out.field_mass_hi.values)
    # calibrated on these very maps: 68 % per bin up to the bins' discreteness
    assert inside.mean() == pytest.approx(0.68, abs=0.05)
    t = val_store.time.values
    assert np.mean((t >= out.age_lo.values) & (t <= out.age_hi.values)) == pytest.approx(
        0.68, abs=0.05)
    assert np.all(out.field_mass_lo.values <= out.field_mass_hi.values)
    predicted = model.predict(flux)
    assert predicted.attrs["distance_source"] == "predicted"
    assert "field_mass_lo" in predicted


def test_calibration_refuses_the_test_split(val_store):
    from pidoc_core.networks import build_age_distance_net

    model = PiDOC(age_distance_network=build_age_distance_net(filters=(4, 8),
                                                              input_shape=(32, 32, 1)),
                  standardisation=dict(flux_mean=0.0, flux_std=1.0, distance_age_mean=10.0,
                                       distance_age_std=10.0))
    test_like = val_store.assign_attrs(split="test")
    with pytest.raises(ModelError, match="not the test split"):
        calibrate_intervals(model, test_like)


def test_pidoc_combine_ships_networks_with_intervals_and_the_measured_range(val_store, val_path,
                                                                          tmp_path):
    from pidoc_core import dataset as D
    from pidoc_core.cli import main
    from pidoc_core.networks import build_age_distance_net, build_mass_unet

    consts = D.standardisation(val_store, allow_other_split=True)
    parts = {
        "mass-ml": PiDOC(mass_ml_network=build_mass_unet(filters=(4, 8), input_shape=(32, 32, 2)),
                         standardisation=consts, provenance={"training_mass_to_light": 1.2}),
        "mass": PiDOC(mass_network=build_mass_unet(filters=(4, 8), input_shape=(32, 32, 1)),
                      standardisation=consts),
        "age-distance": PiDOC(age_distance_network=build_age_distance_net(
            filters=(4, 8), input_shape=(32, 32, 1)), standardisation=consts),
    }
    for name, part in parts.items():
        part.save(tmp_path / name)
    assert main(["combine", "--mass-ml", str(tmp_path / "mass-ml"), "--mass",
                 str(tmp_path / "mass"), "--age-distance", str(tmp_path / "age-distance"),
                 "--calibrate", str(val_path), "--train", str(val_path), "--out",
                 str(tmp_path / "shipped")]) == 0
    shipped = PiDOC.load(tmp_path / "shipped")
    assert shipped.has_distance_aware_mass and shipped.has_flux_only_mass
    assert shipped.has_age_distance
    assert set(shipped.provenance["intervals"]["mass"]) == set(
        ["distance-aware/given", "distance-aware/predicted", "flux-only"])
    assert shipped.provenance["training_mass_to_light"] == 1.2
    assert "training_luminosity_range" in shipped.provenance
    out = shipped.predict(val_store.flux.values[:2], distance_kpc=val_store.distance.values[:2])
    assert out.attrs["mass_network"] == "distance-aware" and "field_mass_hi" in out
    flux_only = shipped.predict(val_store.flux.values[:2], mass_network="flux-only")
    assert flux_only.attrs["mass_network"] == "flux-only" and "ml" not in flux_only
    # networks trained on several stores (--extra-train): the range is measured on all of them
    assert main(["combine", "--mass-ml", str(tmp_path / "mass-ml"), "--age-distance",
                 str(tmp_path / "age-distance"), "--train", str(val_path), str(val_path),
                 "--out", str(tmp_path / "two")]) == 0
    record = PiDOC.load(tmp_path / "two").provenance["training_luminosity_range"]
    assert f"{val_path} + {val_path}" in record["source"]
