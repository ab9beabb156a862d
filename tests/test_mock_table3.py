"""Mock Table 3 (pidoc_core.observations.mock): matching grid runs to the catalogue clusters and
running π-DOC on their mocks, with toy sources whose field light is known by construction."""

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, Table

from pidoc_core.evolution.grid import projected_radii
from pidoc_core.imager import ObservationSetup, observe
from pidoc_core.observations import predict_flux_map
from pidoc_core.observations.mock import MATCH_SCALES, catalogue_age_gyr, match_mocks, mock_table3
from pidoc_core.snapshot import Snapshot

from .conftest import plummer_snapshot
from .test_observations import tiny_model  # noqa: F401 - fixture


class ScaledPlummer:
    """A source whose every snapshot is one Plummer sphere with its luminosities times ``factor``;
    records the times asked for."""

    def __init__(self, factor, scale_pc=1.0):
        base = plummer_snapshot(4_000, scale_pc=scale_pc, seed=5)
        self.snap = Snapshot(x=base.x, y=base.y, z=base.z, vx=base.vx, vy=base.vy, vz=base.vz,
                             mass=base.mass, radius=base.radius,
                             luminosity=base.luminosity * factor, time=12.0, name="toy")
        self.times = []

    def snapshot(self, time_gyr):
        self.times.append(float(time_gyr))
        return self.snap


def _field(src, d):
    obs = observe(src.snap, ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=1.0))
    r_h = projected_radii(src.snap)["r_h_pc"] * 180 * 60 / (math.pi * d * 1e3)
    return obs, float(obs.attrs["field_luminosity_v_lsun"]), r_h


@pytest.fixture(scope="module")
def toy():
    sources = {"faint": ScaledPlummer(1.0), "bright": ScaledPlummer(10.0),
               "bright metal-rich": ScaledPlummer(10.0)}
    feh = {"faint": -1.5, "bright": -1.6, "bright metal-rich": -0.4}
    _, l_faint, rh_faint = _field(sources["faint"], 20.0)
    _, l_bright, rh_bright = _field(sources["bright"], 15.0)
    age = MaskedColumn([13.0, 12.5], mask=[False, True], unit=u.Gyr)
    cat = Table({"name": ["Faint one", "Bright one"], "distance": [20.0, 15.0] * u.kpc,
                 "age": age, "fe_h": [-1.5, -1.7], "l_fov": [l_faint, l_bright] * u.solLum,
                 "r_h": [rh_faint, rh_bright] * u.arcmin, "pidoc_ml_v": [1.1, 0.5],
                 "pidoc_age": [10.0, 3.0], "pidoc_distance": [18.0, 30.0]})
    return sources, feh, cat


def test_catalogue_age_is_twelve_gyr_where_table_3_prints_none(toy):
    _, _, cat = toy
    assert [catalogue_age_gyr(row) for row in cat] == [13.0, 12.0]


def test_each_cluster_gets_the_run_whose_mock_is_most_like_it(toy):
    sources, feh, cat = toy
    for src in sources.values():
        src.times.clear()
    matches = match_mocks(sources, catalogue=cat, feh=feh)
    assert [m["name"] for m in matches] == ["Faint one", "Bright one"]
    faint, bright = matches
    # same light and radius: only [Fe/H] is left in the distance
    assert faint["run"] == "faint" and faint["match_distance"] == pytest.approx(0.0, abs=1e-9)
    # two runs with the right light and radius: the nearer [Fe/H] wins, by 0.1 dex / scale
    assert bright["run"] == "bright"
    assert bright["match_distance"] == pytest.approx(0.1 / MATCH_SCALES["fe_h"], rel=1e-6)
    assert bright["mock_fe_h"] == -1.6
    assert (faint["age_gyr"], bright["age_gyr"]) == (13.0, 12.0)
    assert (faint["distance_kpc"], bright["distance_kpc"]) == (20.0, 15.0)
    # a snapshot per run and distinct catalogue age, observed at each cluster's distance
    assert all(sorted(src.times) == [12.0, 13.0] for src in sources.values())


def test_match_needs_every_runs_metallicity(toy):
    sources, feh, cat = toy
    with pytest.raises(ValueError, match=r"feh: no \[Fe/H\] for run\(s\) \['bright metal-rich'\]"):
        match_mocks(sources, catalogue=cat, feh={"faint": -1.5, "bright": -1.6})


def test_table_holds_truth_predictions_and_the_papers_numbers(toy, tiny_model):  # noqa: F811
    sources, feh, cat = toy
    matches = match_mocks(sources, catalogue=cat, feh=feh)
    table = mock_table3(tiny_model, sources=sources, matches=matches, catalogue=cat)
    assert list(table["name"]) == ["Faint one", "Bright one"]
    assert list(table["run"]) == ["faint", "bright"]
    for row, (d, src) in zip(table, ((20.0, sources["faint"]), (15.0, sources["bright"]))):
        obs, _, _ = _field(src, d)
        truth = obs.attrs["field_mass_msun"] / obs.attrs["field_luminosity_v_lsun"]
        assert row["true_ml"] == pytest.approx(truth, rel=1e-12)
        # π-DOC's numbers are those of the real-image path on the same flux map
        pred = predict_flux_map(obs[["flux"]], tiny_model, distance_kpc=d,
                                age_gyr=row["age_gyr"])
        assert row["pidoc_ml"] == pytest.approx(float(pred["mass_to_light"]), rel=1e-6)
        assert row["pidoc_age"] == pytest.approx(float(pred["age"]), rel=1e-6)
        assert row["pidoc_distance"] == pytest.approx(float(pred["distance"]), rel=1e-6)
        assert row["range_verdict"] == pred.attrs["range_verdict"]
        # the tiny model's only mass network is the flux-only one, so both columns agree
        assert row["mass_network"] == "flux-only"
        assert row["pidoc_ml_flux_only"] == pytest.approx(row["pidoc_ml"], rel=1e-5)
        # no calibrated intervals in this model: the bounds are NaN, not made up
        assert np.isnan([row["pidoc_ml_lo"], row["pidoc_age_hi"], row["pidoc_distance_lo"]]).all()
    assert not any(table["run_in_training"])  # the tiny model is not saved: no training record
    assert list(table["paper_ml"]) == [1.1, 0.5]
    assert list(table["paper_age"]) == [10.0, 3.0]
    assert table["true_ml"].unit == u.solMass / u.solLum
    assert table["pidoc_distance"].unit == u.kpc and table["mock_l_fov"].unit == u.solLum
    # each row describes one mock: its light and radius are the observed mock's, also when the
    # matches come from an earlier table whose snapshots differed
    stale = [dict(m, mock_l_fov=2.0 * m["mock_l_fov"], mock_r_h_arcmin=0.0) for m in matches]
    again = mock_table3(tiny_model, sources=sources, matches=stale, catalogue=cat)
    np.testing.assert_allclose(again["mock_l_fov"], table["mock_l_fov"], rtol=1e-12)
    np.testing.assert_allclose(again["mock_r_h_arcmin"], table["mock_r_h_arcmin"], rtol=1e-12)
    np.testing.assert_allclose(table["mock_l_fov"], [m["mock_l_fov"] for m in matches], rtol=1e-12)
    with pytest.raises(ValueError, match=r"matches name run\(s\) \['W99'\] that are not among"):
        mock_table3(tiny_model, sources=sources, catalogue=cat,
                    matches=[dict(matches[0], run="W99")])


def test_table_round_trips_through_ecsv_with_units(toy, tiny_model, tmp_path):  # noqa: F811
    from pidoc_core.observations.mock import write_mock_table3

    sources, feh, cat = toy
    table = mock_table3(tiny_model, sources=sources, catalogue=cat,
                        matches=match_mocks(sources, catalogue=cat, feh=feh))
    path = tmp_path / "mock_table3.ecsv"
    write_mock_table3(table, path)
    back = Table.read(path, format="ascii.ecsv")
    assert back.colnames == table.colnames
    assert back["true_ml"].unit == u.solMass / u.solLum
    np.testing.assert_allclose(back["pidoc_ml"], table["pidoc_ml"], rtol=1e-12)
    assert back.meta["match_scales"] == MATCH_SCALES
    assert [p.name for p in tmp_path.iterdir()] == ["mock_table3.ecsv"]
    # the matches read back are those the table was made from, so another model reuses them
    from pidoc_core.observations.mock import matches_from_table

    again = matches_from_table(back)
    assert again == match_mocks(sources, catalogue=cat, feh=feh)
    with pytest.raises(ValueError, match=r"no column\(s\) \['run'\]: not a mock Table 3"):
        matches_from_table(back[[c for c in back.colnames if c != "run"]])


def test_training_runs_come_from_the_manifest(tiny_model, tmp_path):  # noqa: F811
    import json

    from pidoc_core.model import PiDOC
    from pidoc_core.observations.mock import training_runs

    saved = tiny_model.save(tmp_path / "m")
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["training"] = {"mass": {"data": {"train_info": {"runs": {"W01": 10, "W02": 5}}}},
                            "age_distance": {"data": {"train_info": {"runs": {"W03": 7}},
                                                      "extra_train_info_0": {"runs": {"W19": 4}},
                                                      "validation_info": {"runs": {"W07": 3}}}}}
    (saved / "manifest.json").write_text(json.dumps(manifest))
    assert training_runs(PiDOC.load(saved)) == {"W01", "W02", "W03", "W19"}
    assert training_runs(tiny_model) == set()
