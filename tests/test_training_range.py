"""The training set's field-luminosity range is measured from the set (paper Fig. 10), stored as
JSON, and used by the range check (interpolated in distance and age)."""

import json
import math

import numpy as np
import pytest

from pidoc_core import dataset as D
from pidoc_core import observations as O
from pidoc_core import training_range as TR

from .test_dataset import PlummerRun

EDGES = (0.0, 2.5, 5.0)


@pytest.fixture(scope="module")
def train_store(tmp_path_factory):
    """Every (run, time, distance, PSF) of 2 Plummer runs x 4 times x 2 distances x 2 PSFs."""
    path = tmp_path_factory.mktemp("range") / "train.zarr"
    sources = {"R1": PlummerRun("R1", 1.0), "R2": PlummerRun("R2", 2.0)}
    D.build_dataset(sources, distances_kpc=[10, 40], psf_fwhms_arcsec=[0.5, 1.5], seed=3,
                    store=path, chunk_size=8, progress=False)
    return path


def _by_hand(ds):
    lum = np.asarray(ds["field_luminosity_v"].values, float)
    t, d = np.asarray(ds["time"].values), np.asarray(ds["distance"].values)
    out = {}
    for i, (a0, a1) in enumerate(zip(EDGES[:-1], EDGES[1:])):
        for j, dist in enumerate((10.0, 40.0)):
            sel = (t >= a0) & ((t < a1) | (a1 == EDGES[-1]) & (t <= a1)) & (d == dist)
            out[i, j] = (lum[sel].min(), lum[sel].max(), int(sel.sum()))
    return out


def test_measured_range_equals_min_max_by_hand_and_is_json(train_store):
    ds = D.open_dataset(train_store)
    rec = TR.measure_luminosity_range(train_store, age_edges_gyr=EDGES, age_min_gyr=2.5)
    assert json.loads(json.dumps(rec)) == rec  # JSON-serialisable as is
    assert rec["kind"] == TR.RANGE_KIND and rec["distance_kpc"] == [10.0, 40.0]
    assert rec["n_maps"] == ds.sizes["sample"] == 32 and rec["psf_fwhm_arcsec"] == [0.5, 1.5]
    for (i, j), (lo, hi, n) in _by_hand(ds).items():
        assert rec["count"][i][j] == n == 8
        assert rec["min_lsun"][i][j] == pytest.approx(lo, rel=1e-12)
        assert rec["max_lsun"][i][j] == pytest.approx(hi, rel=1e-12)
        assert lo <= rec["p_lo_lsun"][i][j] <= rec["p_hi_lsun"][i][j] <= hi
    old = np.asarray(ds["time"].values) >= 2.5
    lum = np.asarray(ds["field_luminosity_v"].values)
    assert rec["luminosity_v_lsun"] == pytest.approx([lum[old].min(), lum[old].max()])
    # an opened dataset gives the same numbers
    again = TR.measure_luminosity_range(ds, age_edges_gyr=EDGES, age_min_gyr=2.5)
    assert again["min_lsun"] == rec["min_lsun"] and again["max_lsun"] == rec["max_lsun"]


def test_bounds_interpolate_in_log_distance_and_age():
    lum = [100.0, 400.0, 1000.0, 4000.0, 50.0, 200.0, 500.0, 2000.0]
    age = [1.0] * 4 + [3.0] * 4
    dist = [10.0, 10.0, 40.0, 40.0] * 2
    rec = TR.luminosity_range_from_arrays(lum, age, dist, age_edges_gyr=EDGES, age_min_gyr=2.5)
    at_node = TR.luminosity_bounds(rec, 10.0, 1.25)
    assert (at_node["lo"], at_node["hi"]) == pytest.approx((100.0, 400.0))
    mid = TR.luminosity_bounds(rec, 20.0, 1.25)  # halfway in log d: geometric mean
    assert (mid["lo"], mid["hi"]) == pytest.approx((math.sqrt(1e5), math.sqrt(1.6e6)))
    # halfway between the bin centres 1.25 and 3.75 Gyr: halfway in log L
    between = TR.luminosity_bounds(rec, 10.0, 2.5)
    assert (between["lo"], between["hi"]) == pytest.approx((math.sqrt(5e3), math.sqrt(8e4)))
    # no age: the old bins (>= age_min_gyr) only
    unknown = TR.luminosity_bounds(rec, 40.0)
    assert (unknown["lo"], unknown["hi"]) == pytest.approx((500.0, 2000.0))
    assert unknown["ages_gyr"] == (2.5, 5.0)
    clamped = TR.luminosity_bounds(rec, 80.0, 4.0)  # past the last bin centre
    assert clamped["distance_clamped"] and clamped["hi"] == pytest.approx(2000.0)
    with pytest.raises(ValueError, match="distance_kpc"):
        TR.luminosity_bounds(rec, -1.0)
    with pytest.raises(ValueError, match="age_edges_gyr"):
        TR.luminosity_range_from_arrays(lum, age, dist, age_edges_gyr=(3.0, 1.0))
    with pytest.raises(ValueError, match="one value per map"):
        TR.luminosity_range_from_arrays(lum, age[:3], dist)


def test_range_check_uses_the_measured_range(train_store):
    rec = TR.measure_luminosity_range(train_store, age_edges_gyr=EDGES, age_min_gyr=2.5)

    class Model:
        provenance = {"training_luminosity_range": rec,
                      "training_grid": {"distance_kpc": [10.0, 40.0]}}

    lo, hi = rec["min_lsun"][1][0], rec["max_lsun"][1][0]  # 2.5-5 Gyr at 10 kpc
    inside = O.check_luminosity(math.sqrt(lo * hi), 10.0, model=Model(), age_gyr=3.75)
    assert inside.inside, inside.reasons
    assert inside.luminosity_range_lsun == pytest.approx((lo, hi))
    assert "measured" in inside.reference
    assert any("measured from the model's training set" in n for n in inside.notes)
    above = O.check_luminosity(1.5 * hi, 10.0, model=Model(), age_gyr=3.75)
    assert not above.inside
    assert any("above the training range" in r for r in above.reasons)
    below = O.check_luminosity(0.5 * lo, 10.0, model=Model(), age_gyr=3.75)
    assert not below.inside and any("below the training range" in r for r in below.reasons)
    # without an age: the bins older than age_min_gyr (2.5 Gyr here)
    old = O.check_luminosity(1.5 * hi, 10.0, model=Model())
    assert not old.inside and any("age unknown" in n for n in old.notes)
    # range_check on a map takes the same path (a uniform map of known total luminosity)
    total = 1.5 * hi
    flux = np.full((160, 160), math.log10(total / (4 * math.pi * 100.0) / 160**2))
    with pytest.warns(O.RangeWarning, match="above the training range"):
        verdict = O.range_check(flux, 10.0, model=Model(), age_gyr=3.75)
    assert verdict.luminosity_v_lsun == pytest.approx(total, rel=1e-9)
