"""The wide training grid (issue 18): the design, the field-only cut (conserves the field's mass
and light), the reach radius, the wide splits (runs held out whole), the Table 3 comparison and
its figure."""

import itertools
import math

import numpy as np
import pytest

from pidoc_core.evolution import ClusterEvolution
from pidoc_core.evolution import grid as G
from pidoc_core.imager import ObservationSetup, observe
from pidoc_core import plots_grid as PG

from .conftest import plummer_snapshot

FACTORS = ("n_stars", "rh0_pc", "galactocentric_kpc", "feh")


def test_grid_is_a_graeco_latin_square_with_one_stated_substitution_and_two_bh_twins():
    assert len(G.WIDE_GRID) == 18 and len({r["name"] for r in G.WIDE_GRID}) == 18
    rows = [r for r in G.WIDE_GRID if not r["retain_bhs"]]
    assert len(rows) == 16 and len({r["seed"] for r in rows}) == 16
    # each twin is a square run (same seed and parameters) with retained black holes
    for twin in G.BH_TWINS:
        base = [r for r in rows if r["seed"] == twin["seed"]]
        assert len(base) == 1 and twin["retain_bhs"]
        assert {k: v for k, v in twin.items() if k not in ("name", "retain_bhs")} == {
            k: v for k, v in base[0].items() if k not in ("name", "retain_bhs")}
    for r in G.WIDE_GRID:
        assert r["metallicity"] == pytest.approx(0.019 * 10 ** r["feh"], abs=5e-8)  # 1e-7 rounding
        assert 1e-4 <= r["metallicity"] <= 0.03
    for a, b in itertools.combinations(FACTORS, 2):
        pairs = [(r[a], r[b]) for r in rows]
        if "galactocentric_kpc" in (a, b):
            # every pair once, except that the 5e4-star run of the 4 kpc cell orbits at 20 kpc
            moved = [r for r in rows if r["galactocentric_kpc"] == 20.0]
            assert len(moved) == 1 and moved[0]["n_stars"] == 50_000
            pairs = [p for p, r in zip(pairs, rows) if r is not moved[0]]
            assert len(set(pairs)) == len(pairs) == 15
        else:
            assert len(set(pairs)) == 16, (a, b)
    assert set(G.WIDE_VAL_RUNS).isdisjoint(G.WIDE_TEST_RUNS)
    held = [r for r in G.WIDE_GRID if r["name"] in G.WIDE_VAL_RUNS + G.WIDE_TEST_RUNS]
    # the extremes of N and rh0 stay in training
    assert {r["n_stars"] for r in held} == {150_000, 400_000}
    assert {r["rh0_pc"] for r in held} == {2.0, 4.0}


def test_partner_square_moves_every_runs_orbit_and_metallicity_to_the_partner_level():
    extra, square = G.WIDE_EXTRA_GRID, G.WIDE_GRID[:16]
    names = [r["name"] for r in extra]
    assert len(extra) == 12 and names[0].startswith("W19 ") and names[-1].startswith("W30 ")
    assert set(names).isdisjoint(r["name"] for r in G.WIDE_GRID)
    assert {r["seed"] for r in extra}.isdisjoint(r["seed"] for r in G.WIDE_GRID)
    assert {r["n_stars"] for r in extra} == set(G.N_LEVELS[:3]) and not any(
        r["retain_bhs"] for r in extra)
    partner = {a: b for pair in ((4.0, 8.0), (15.0, 30.0), (-2.2, -1.6), (-1.0, -0.4))
               for a, b in (pair, pair[::-1])}
    for r in extra:  # the same cell of N and rh0 as a square run, its orbit and [Fe/H] moved
        (twin,) = [q for q in square if (q["n_stars"], q["rh0_pc"]) == (r["n_stars"],
                                                                          r["rh0_pc"])]
        assert r["feh"] == partner[twin["feh"]]
        if r["galactocentric_kpc"] == 20.0:  # the 5e4-star run that would orbit at 4 kpc
            assert r["n_stars"] == 50_000 and twin["galactocentric_kpc"] == 8.0
        else:  # (the square's own 5e4-star substitute stands for 4 kpc)
            designed = 4.0 if twin["galactocentric_kpc"] == 20.0 else twin["galactocentric_kpc"]
            assert r["galactocentric_kpc"] == partner[designed]
        assert (r["galactocentric_kpc"], r["feh"]) != (twin["galactocentric_kpc"], twin["feh"])
    for a, b in itertools.combinations(FACTORS, 2):  # no pair of levels twice
        pairs = [(r[a], r[b]) for r in extra]
        assert len(set(pairs)) == 12, (a, b)
    # two more training runs feel the 4 kpc tidal field (the square's training runs had one)
    assert sum(r["galactocentric_kpc"] == 4.0 for r in extra) == 2
    assert sum(r["galactocentric_kpc"] == 4.0 for r in square
               if r["name"] not in G.WIDE_VAL_RUNS + G.WIDE_TEST_RUNS) == 1


def test_grid_runs_are_cluster_evolutions_with_the_grid_parameters(tmp_path):
    runs = G.grid_runs(cache_dir=tmp_path, progress=False)
    assert list(runs) == [r["name"] for r in G.WIDE_GRID]
    for row, run in zip(G.WIDE_GRID, runs.values()):
        assert isinstance(run, ClusterEvolution) and run._state is None  # nothing computed
        assert (run.n_stars, run.rh0_pc, run.galactocentric_kpc, run.seed, run.retain_bhs) == (
            row["n_stars"], row["rh0_pc"], row["galactocentric_kpc"], row["seed"],
            row["retain_bhs"])
    cut = G.grid_runs(names=[G.WIDE_GRID[0]["name"]], cache_dir=tmp_path, field_radius_pc=12.0)
    assert isinstance(next(iter(cut.values())), G.FieldEvolution)
    wide = G.wide_sources(cache_dir=tmp_path, progress=False)
    assert len(wide) == 18 and all(isinstance(r, G.FieldEvolution) for r in wide.values())
    assert {r.field_radius_pc for r in wide.values()} == {
        G.reach_radius_pc(G.WIDE_DISTANCES_KPC, G.WIDE_PSFS_ARCSEC)}
    with pytest.raises(ValueError, match="names has unknown"):
        G.grid_runs(names=["nope"], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="field_radius_pc"):
        G.FieldEvolution(2.0, field_radius_pc=-1.0, cache_dir=tmp_path)


@pytest.mark.slow
def test_every_grid_run_survives_past_14_gyr():
    for h in G.grid_histories(times_gyr=(12.0,), grid=G.WIDE_GRID + G.WIDE_EXTRA_GRID):
        assert h["t_end_gyr"] == pytest.approx(14.0), h["name"]
        assert h["mass_msun"][0] > 1000.0


def test_reach_radius_bounds_what_can_fall_on_a_map():
    from pidoc_core.snapshot import Snapshot

    distances, psfs, shift = [8.0, 42.0], [0.5, 1.5], 5.0
    r = G.reach_radius_pc(distances, psfs, shift_max_arcsec=shift, margin_pc=0.0)
    diag = np.array([1.0, 1.0]) / math.sqrt(2.0)
    for scale, lands in ((1.0001, False), (0.6, True)):
        # a heavy star pins the centre at the origin; a light one sits along the diagonal
        x, y = diag * r * scale
        snap = Snapshot(x=[0.0, x], y=[0.0, y], z=[0.0, 0.0], vx=[0.0] * 2, vy=[0.0] * 2,
                        vz=[0.0] * 2, mass=[1e9, 1.0], radius=[1.0] * 2, luminosity=[1.0] * 2)
        setup = ObservationSetup(distance_kpc=42.0, psf_fwhm_arcsec=1.5,
                                 shift_arcsec=(-shift, -shift))
        obs = observe(snap, setup)
        extra = obs.attrs["field_mass_msun"] - 1e9
        assert (extra > 1e-3) == lands, (scale, extra)
    with pytest.raises(ValueError, match="shift_max_arcsec"):
        G.reach_radius_pc(distances, psfs, shift_max_arcsec=-1.0)


@pytest.mark.parametrize("lines_of_sight", [("z",), ("x", "y", "z")])
def test_field_stars_conserve_the_field_mass_and_light(lines_of_sight):
    full = plummer_snapshot(20_000, scale_pc=3.0, seed=5)
    distances, psfs = [8.0, 30.0], [0.5, 1.5]
    radius = G.reach_radius_pc(distances, psfs)
    cut = G.field_stars(full, radius, lines_of_sight=lines_of_sight)
    assert 0 < len(cut) < len(full) and cut.meta["n_dropped"] == len(full) - len(cut)
    assert cut.mass.sum() + cut.meta["mass_dropped_msun"] == pytest.approx(full.mass.sum())
    assert cut.luminosity.sum() + cut.meta["luminosity_dropped_lsun"] == pytest.approx(
        full.luminosity.sum())
    # the density centre moves little although ~15 % of this Plummer sphere's stars are dropped
    assert np.linalg.norm(cut.density_centre - full.density_centre) < 0.01
    for d, psf, shift, rot, los in itertools.product(distances, psfs, [(0.0, 0.0), (5.0, -5.0)],
                                                     [0.0, 90.0], lines_of_sight):
        s = ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=psf, shift_arcsec=shift,
                             rotation_deg=rot, line_of_sight=los)
        a, b = observe(full, s), observe(cut, s)
        # equal but for the density centre, computed from the kept stars
        assert b.attrs["field_mass_msun"] == pytest.approx(a.attrs["field_mass_msun"], rel=3e-4)
        assert b.attrs["field_luminosity_v_lsun"] == pytest.approx(
            a.attrs["field_luminosity_v_lsun"], rel=3e-4)
    with pytest.raises(ValueError, match="lines_of_sight"):
        G.field_stars(full, radius, lines_of_sight=("w",))


def test_field_evolution_cuts_the_parents_snapshot(tmp_path, monkeypatch):
    snap = plummer_snapshot(5_000, scale_pc=3.0, seed=2)
    monkeypatch.setattr(ClusterEvolution, "snapshot", lambda self, t: snap)
    run = G.FieldEvolution(3.0, field_radius_pc=2.0, lines_of_sight=("z",), cache_dir=tmp_path,
                           centre_stars=500)
    cut = run.snapshot(12.0)
    assert len(cut) == int((np.hypot(snap.x, snap.y) <= 2.0).sum())
    assert cut.meta["field_radius_pc"] == 2.0 and "field_radius_pc=2" in repr(run)
    # the density centre the imager will use is that of the 500 innermost kept stars
    assert cut.meta["density_centre_stars"] == 500
    np.testing.assert_array_equal(cut.density_centre, G.inner_density_centre(cut, 500))
    with pytest.raises(ValueError, match="centre_stars"):
        G.FieldEvolution(3.0, field_radius_pc=2.0, centre_stars=3, cache_dir=tmp_path)


def test_inner_density_centre_gives_the_same_field():
    # a compact Plummer sphere (old embedded clusters are more concentrated still: cusped centres,
    # where the two centres agree to ~1e-4 pc and the field totals to ~1e-5)
    full = plummer_snapshot(60_000, scale_pc=0.5, seed=11)
    inner = G.inner_density_centre(full, 10_000)
    assert np.linalg.norm(inner - full.density_centre) < 0.0125  # pc, 2.5 % of the scale radius
    given = full.select(np.arange(len(full)))
    given.__dict__["density_centre"] = inner
    for d in (8.0, 40.0):
        s = ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=1.0)
        a, b = observe(full, s), observe(given, s)
        assert b.attrs["field_mass_msun"] == pytest.approx(a.attrs["field_mass_msun"], rel=1e-3)
        assert b.attrs["field_luminosity_v_lsun"] == pytest.approx(
            a.attrs["field_luminosity_v_lsun"], rel=1e-3)
    np.testing.assert_array_equal(G.inner_density_centre(full, 10**6), full.density_centre)


def test_wide_splits_hold_out_whole_runs():
    names = [r["name"] for r in G.WIDE_GRID]
    sources = {n: list(np.round(np.linspace(0, 14, 29), 6)) for n in names}
    plans = G.wide_splits(sources, n_train=600, n_val=100, n_test=100, seed=3)
    runs = {k: set(p.run.tolist()) for k, p in plans.items()}
    assert runs["val"] == set(G.WIDE_VAL_RUNS) and runs["test"] == set(G.WIDE_TEST_RUNS)
    assert runs["train"] == set(names) - runs["val"] - runs["test"]
    assert (len(plans["train"]), len(plans["val"]), len(plans["test"])) == (600, 100, 100)
    train = plans["train"]
    keys = list(zip(train.run.tolist(), train.time.tolist()))
    assert keys == sorted(keys)  # grouped by snapshot
    assert train.grid["held_out"] == {"val": list(G.WIDE_VAL_RUNS),
                                      "test": list(G.WIDE_TEST_RUNS)}
    assert set(train.distance.tolist()) <= set(G.WIDE_DISTANCES_KPC)
    from pidoc_core.dataset import DatasetError

    with pytest.raises(DatasetError, match="both val_runs and test_runs"):
        G.wide_splits(sources, val_runs=names[:2], test_runs=names[1:3], seed=1)
    with pytest.raises(DatasetError, match="not among the sources"):
        G.wide_splits({"a": [1.0, 2.0]}, seed=1)


def _rows(run, lum_by_d, *, t=12.0, r_h=0.5, r_c=0.1, mass=1e5, rh=5.0):
    return [dict(run=run, time_gyr=t, distance_kpc=d, field_luminosity_v_lsun=lum,
                 field_mass_msun=2 * lum, mass_msun=mass, rh_model_pc=rh, r_h_pc=rh * 0.6,
                 r_h_arcmin=r_h, r_c_arcmin=r_c) for d, lum in lum_by_d.items()]


def test_grid_reach_interpolates_the_mocks_at_each_clusters_distance():
    records = (_rows("a", {10.0: 1000.0, 40.0: 4000.0}, r_h=0.4, r_c=0.05)
               + _rows("b", {10.0: 100.0, 40.0: 400.0}, r_h=2.0, r_c=1.0)
               + _rows("young", {10.0: 1e6, 40.0: 1e6}, t=5.0))
    clusters = [dict(name="in", distance_kpc=20.0, l_fov_lsun=1000.0, r_h_arcmin=1.0,
                     r_c_arcmin=0.5),
                dict(name="bright", distance_kpc=20.0, l_fov_lsun=3000.0, r_h_arcmin=1.0,
                     r_c_arcmin=0.5),
                dict(name="far", distance_kpc=60.0, l_fov_lsun=1000.0, r_h_arcmin=1.0,
                     r_c_arcmin=0.5)]
    reach = {r["name"]: r for r in PG.grid_reach(records, clusters)}
    assert reach["in"]["reached"] and reach["in"]["n_mocks"] == 2  # the young mock is not used
    assert (reach["in"]["l_lo"], reach["in"]["l_hi"]) == pytest.approx((200.0, 2000.0))
    assert not reach["bright"]["l_inside"] and reach["bright"]["r_h_inside"]
    assert not reach["far"]["reached"] and reach["far"]["n_mocks"] == 0


def test_homologous_estimate_scales_mass_and_radius_and_the_figure_draws():
    ref = _rows("ref", {10.0: 1000.0, 20.0: 2000.0, 40.0: 4000.0}, mass=1e5, rh=5.0)
    same = dict(name="twice", times_gyr=[12.0], mass_msun=[2e5], rh_pc=[5.0])
    wider = dict(name="wider", times_gyr=[12.0], mass_msun=[1e5], rh_pc=[10.0])
    est = PG.homologous_estimate(ref, [same, wider])
    twice = {r["distance_kpc"]: r["field_luminosity_v_lsun"] for r in est if r["run"] == "twice"}
    assert twice == pytest.approx({10.0: 2000.0, 20.0: 4000.0, 40.0: 8000.0})
    # twice the radius: the field at 20 kpc holds what the reference's holds at 10 kpc
    wide = {r["distance_kpc"]: r["field_luminosity_v_lsun"] for r in est if r["run"] == "wider"}
    assert wide == pytest.approx({20.0: 1000.0, 40.0: 2000.0})
    assert all(r["estimated"] for r in est)
    clusters = PG.table3_clusters()
    assert len(clusters) == 17 and clusters[0]["name"] == "NGC 5053"
    assert clusters[0]["r_h_pc"] == pytest.approx(2.61 * 17.4 * PG.PC_PER_ARCMIN_PER_KPC)
    fig = PG.figure_grid_vs_table3(ref, clusters, estimates=est)
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"


def test_wide_preset_holds_out_the_grids_runs_whole(tmp_path):
    import pidoc_core.dataset as D

    sources = G.wide_sources(cache_dir=tmp_path, progress=False)
    plans = D.preset_splits("wide", sources, seed=7, n_train=180, n_val=40, n_test=40)
    assert {k: len(v) for k, v in plans.items()} == {"train": 180, "val": 40, "test": 40}
    runs = {k: set(v.run.tolist()) for k, v in plans.items()}
    assert runs["val"] <= set(G.WIDE_VAL_RUNS) and runs["test"] <= set(G.WIDE_TEST_RUNS)
    assert runs["train"].isdisjoint(G.WIDE_VAL_RUNS + G.WIDE_TEST_RUNS)
    assert len(runs["train"]) == 18 - len(G.WIDE_VAL_RUNS) - len(G.WIDE_TEST_RUNS)
    for plan in plans.values():
        assert set(plan.distance.tolist()) <= set(G.WIDE_DISTANCES_KPC)
        assert plan.grid["held_out"] == {"val": list(G.WIDE_VAL_RUNS),
                                         "test": list(G.WIDE_TEST_RUNS)}
    assert D.DATASET_PRESETS["wide"]["n_train"] == 40_000


def test_wide_extra_preset_trains_on_the_partner_square_only(tmp_path):
    import pidoc_core.dataset as D

    sources = G.wide_sources(cache_dir=tmp_path, progress=False, grid=G.WIDE_EXTRA_GRID)
    assert list(sources) == [r["name"] for r in G.WIDE_EXTRA_GRID]
    plans = D.preset_splits("wide-extra", sources, seed=7, n_train=240)
    assert list(plans) == ["train"] and len(plans["train"]) == 240
    assert set(plans["train"].run.tolist()) == set(sources)
    assert plans["train"].grid["held_out"] == {"val": [], "test": []}
    # as many maps a run as the wide preset's 14 training runs
    assert D.DATASET_PRESETS["wide-extra"]["n_train"] / 12 == pytest.approx(
        D.DATASET_PRESETS["wide"]["n_train"] / 14, abs=1)
