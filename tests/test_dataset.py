"""Datasets: plans and splits (paper Table 1), zarr stores, determinism, resume after SIGKILL,
selection by coordinates, errors, standardisation and the Keras batch stream."""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from pidoc_core import dataset as D
from pidoc_core.dataset import DatasetError
from pidoc_core.imager import ObservationSetup, observe

from .conftest import plummer_snapshot

REPO = Path(__file__).resolve().parent.parent


class PlummerRun:
    """A tiny deterministic snapshot source: a Plummer sphere per time whose scale grows with
    time; ``delay`` (s) slows every snapshot load (for the kill/resume test)."""

    def __init__(self, name, scale_pc, *, n_stars=1500, times=(1.0, 2.0, 3.0, 4.0),
                 delay=0.0):
        self.name, self.scale_pc, self.n_stars, self.delay = name, scale_pc, n_stars, delay
        self.times = np.asarray(times, float)

    def snapshot(self, time_gyr):
        if self.delay:
            time.sleep(self.delay)
        seed = int(round(time_gyr * 1000)) + int(self.scale_pc * 10)
        return plummer_snapshot(self.n_stars, scale_pc=self.scale_pc * (1 + 0.1 * time_gyr),
                                seed=seed, time=time_gyr, name=self.name)

    def __repr__(self):
        return f"PlummerRun({self.name!r}, {self.scale_pc})"


def small_sources(**kw):
    return {"R1": PlummerRun("R1", 1.0, **kw), "R2": PlummerRun("R2", 2.0, **kw)}


SMALL = dict(distances_kpc=[10, 50], psf_fwhms_arcsec=[0.5, 1.5], seed=7, chunk_size=4,
             progress=False)


def store_digest(path):
    """sha256 of every file of a store, by relative path."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One small store (24 samples from 2 runs x 4 times x 2 distances x 2 PSFs = 32 combos)."""
    path = tmp_path_factory.mktemp("ds") / "small.zarr"
    sources = small_sources()
    ds = D.build_dataset(sources, n_samples=24, store=path, **SMALL)
    return path, ds, sources


# ------------------------------------------------------------------------------ plans and splits


def test_plan_draws_without_replacement_then_reuses_evenly():
    runs = {"a": [1.0, 2.0, 3.0]}
    plan = D.plan_samples(runs, distances_kpc=[10, 20], psf_fwhms_arcsec=[1.0], n_samples=5,
                          seed=1)
    assert len(plan) == plan.n_combinations == 5  # 5 of 6 combinations, none twice
    full = D.plan_samples(runs, distances_kpc=[10, 20], psf_fwhms_arcsec=[1.0], seed=1)
    assert len(full) == full.n_combinations == 6
    big = D.plan_samples(runs, distances_kpc=[10, 20], psf_fwhms_arcsec=[1.0], n_samples=14,
                         seed=1)
    counts = big.to_dataframe().groupby(["run", "time", "distance", "psf_fwhm"]).size()
    assert len(counts) == 6 and set(counts) == {2, 3}  # 14 = 6 * 2 + 2
    # repeats of a combination differ by their geometry
    df = big.to_dataframe()
    assert df.groupby(["time", "distance"])["shift_x"].nunique().min() >= 2
    assert np.all(np.abs(big.shift_x) <= 5) and set(big.rotation) <= {0, 90, 180, 270}
    with pytest.raises(DatasetError, match="allow_repeats"):
        D.plan_samples(runs, distances_kpc=[10, 20], psf_fwhms_arcsec=[1.0], n_samples=7,
                       seed=1, allow_repeats=False)


def test_plan_is_a_function_of_the_seed():
    runs = {"a": np.arange(1.0, 10.0), "b": np.arange(1.0, 10.0)}
    kw = dict(distances_kpc=[10, 25, 50], psf_fwhms_arcsec=[0.5, 1.5], n_samples=40)
    p1, p2 = D.plan_samples(runs, seed=3, **kw), D.plan_samples(runs, seed=3, **kw)
    p3 = D.plan_samples(runs, seed=4, **kw)
    assert p1.sha256() == p2.sha256() != p3.sha256()
    # sample i's geometry depends only on (seed, split, i): a longer plan shares its prefix draws
    longer = D.plan_samples(runs, seed=3, **{**kw, "n_samples": 80})
    np.testing.assert_array_equal(longer.shift_x[:40], p1.shift_x)
    np.testing.assert_array_equal(longer.rotation[:40], p1.rotation)


def test_paper_splits_follow_table_1_and_are_disjoint():
    times = list(np.round(np.arange(0, 141) * 0.1, 6))
    runs = {name: times for name in (*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN)}
    plans = D.paper_splits(runs, n_train=600, n_val=100, n_test=None, seed=5)
    train, val, test = plans["train"], plans["val"], plans["test"]
    assert (len(train), len(val), len(test)) == (600, 100, 141 * 4)
    for plan in (train, val):
        assert set(plan.distance) == {10.0, 25.0, 50.0, 75.0, 100.0}
        assert set(plan.psf_fwhm) == {0.5, 1.5}
        runs_, counts = np.unique(plan.run, return_counts=True)
        assert runs_.tolist() == sorted(D.PAPER_TRAIN_RUNS) and counts.tolist() == [
            len(plan) // 2] * 2
    assert train.combinations().isdisjoint(val.combinations())
    assert len(train) == train.n_combinations  # 600 < 1410 combinations: no repeats needed
    assert set(test.run) == {D.PAPER_TEST_RUN}
    assert set(test.distance) == {15.0, 30.0, 60.0, 80.0} and set(test.psf_fwhm) == {1.0}
    assert test.n_combinations == 141 * 4
    assert not {(r, t) for r, t, *_ in test.combinations()} & {
        (r, t) for r, t, *_ in train.combinations() | val.combinations()}


def test_paper_sizes_reuse_combinations_but_keep_val_disjoint():
    runs = {name: list(np.arange(1.0, 15.0)) for name in (*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN)}
    plans = D.paper_splits(runs, seed=1)  # paper sizes 20,000 / 2,000 / 8,172 on 14 times
    train, val, test = plans["train"], plans["val"], plans["test"]
    assert (len(train), len(val), len(test)) == (20_000, 2_000, 8_172)
    assert train.combinations().isdisjoint(val.combinations())
    assert train.snapshots().isdisjoint(val.snapshots())
    # 14 times x 10 conditions per run, whole times split ~ 10:1 between train and val
    assert train.n_combinations + val.n_combinations == 2 * 140
    assert val.n_combinations == 2 * 10 and len(val.snapshots()) == 2
    assert test.n_combinations == 14 * 4


class DenseRun(PlummerRun):
    """A PlummerRun offering ``dense_times(n)`` like the embedded evolution runs."""

    def __init__(self, name, scale_pc):
        super().__init__(name, scale_pc, times=self.dense_times())

    def dense_times(self, n=1401):
        return np.round(np.linspace(0.0, 14.0, n), 6)


def test_paper_preset_uses_dense_times_without_repeats_and_holds_out_whole_snapshots():
    sources = {name: DenseRun(name, 1.0) for name in (*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN)}
    plans = D.preset_splits("paper", sources, seed=2021)
    train, val, test = plans["train"], plans["val"], plans["test"]
    assert (len(train), len(val), len(test)) == (20_000, 2_000, 8_172)
    # >= 1,000 snapshot times per training run; the test run has 2,043 (8,172 = 2,043 x 4)
    for plan in (train, val):
        for run in D.PAPER_TRAIN_RUNS:
            assert len(plan.grid["times_gyr"][run]) >= 100
    assert sum(len(v) for v in train.grid["times_gyr"].values()) + sum(
        len(v) for v in val.grid["times_gyr"].values()) == 2 * 1401
    assert len(test.snapshots()) == 2043
    # no repeated (run, time, distance, psf) combination anywhere
    assert train.repeat_factor == val.repeat_factor == test.repeat_factor == 1.0
    # validation holds out whole snapshots: no (run, time) in both, and none shared with test
    assert train.snapshots().isdisjoint(val.snapshots())
    assert not (train.snapshots() | val.snapshots()) & test.snapshots()
    # every held-out time is used at all 10 (distance, psf) conditions of Table 1
    assert len(val) == 10 * len(val.snapshots())
    # stored grouped by snapshot: each (run, time) is one contiguous block of samples
    keys = list(zip(train.run.tolist(), train.time.tolist()))
    blocks = [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
    assert len(blocks) == len(set(keys))


def test_built_splits_share_no_snapshot(tmp_path):
    runs = {name: PlummerRun(name, 1.0 + i, n_stars=300, times=np.arange(1.0, 9.0))
            for i, name in enumerate((*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN))}
    plans = D.paper_splits(runs, n_train=40, n_val=20, n_test=8, seed=3, order="snapshot")
    paths = D.build_splits(plans, runs, tmp_path, chunk_size=8, progress=False)
    stored = {}
    for split, path in paths.items():
        ds = D.open_dataset(path)
        stored[split] = set(zip(ds.run.values.tolist(), ds.time.values.tolist()))
        info = D.dataset_info(path)
        assert info["n_snapshots"] == len(stored[split])
        assert info["repeat_factor"] == pytest.approx(len(plans[split]) /
                                                     plans[split].n_combinations)
    assert stored["train"].isdisjoint(stored["val"])
    assert len(stored["val"]) >= 2 and len(stored["train"]) >= 4


def test_paper_splits_refuses_a_run_with_a_single_time():
    runs = {name: [12.0] for name in (*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN)}
    with pytest.raises(DatasetError, match="has 1 snapshot time.*at least 2 are needed to hold "
                                           "whole times out"):
        D.paper_splits(runs, n_train=20, n_val=2, n_test=4, seed=0)


def test_preset_needs_dense_times():
    runs = {name: PlummerRun(name, 1.0) for name in (*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN)}
    with pytest.raises(DatasetError, match=r"preset 'paper': source 'MW15-R1.6 analogue' "
                                           r"\(PlummerRun\) has no dense_times\(\)"):
        D.preset_splits("paper", runs, seed=0)


# ------------------------------------------------------------------------------ the store


def test_store_holds_imager_maps_with_units_and_provenance(built):
    path, ds, sources = built
    assert ds.flux.dtype == np.float32 and ds.flux.dims == ("sample", "y", "x")
    assert ds.flux.shape == ds.mass.shape == (24, 160, 160)
    assert ds.flux.attrs["units"] == "log10(Lsun kpc-2)" and ds.mass.attrs["units"] == "log10(Msun)"
    for name, unit in (("time", "Gyr"), ("distance", "kpc"), ("psf_fwhm", "arcsec"),
                       ("shift_x", "arcsec"), ("rotation", "degree"), ("field_mass", "Msun"),
                       ("field_luminosity_v", "Lsun")):
        assert ds[name].attrs["units"] == unit
    assert ds.attrs["seed"] == 7 and ds.attrs["code_version"]
    assert "PlummerRun('R1', 1.0)" in ds.attrs["source_parameters_json"]
    assert '"smooth_sigma_px": 4.0' in ds.attrs["imager_setup_json"]
    # every sample is exactly the imager's observation of its recorded conditions
    for i in (0, 13, 23):
        s = ds.isel(sample=i)
        setup = ObservationSetup(distance_kpc=float(s.distance), psf_fwhm_arcsec=float(s.psf_fwhm),
                                 shift_arcsec=(float(s.shift_x), float(s.shift_y)),
                                 rotation_deg=float(s.rotation),
                                 line_of_sight=str(s.line_of_sight.values))
        obs = observe(sources[str(s.run.values)].snapshot(float(s.time)), setup)
        np.testing.assert_array_equal(s.flux.values, obs.flux.values)
        np.testing.assert_array_equal(s.mass.values, obs.mass.values)
        assert float(s.field_mass) == obs.attrs["field_mass_msun"]
    # linear totals: L_V = F * 4 pi d^2, and the mass map holds the field mass
    ds_ = ds.load()
    np.testing.assert_allclose(ds_.field_luminosity_v,
                               ds_.field_flux * 4 * math.pi * ds_.distance**2, rtol=1e-12)
    np.testing.assert_allclose((10.0 ** ds_.mass.astype(float)).sum(("y", "x")),
                               ds_.field_mass, rtol=1e-4)


def test_concat_splits_appends_stores_of_one_imager_setup_and_names_a_mismatch(built,
                                                                                 tmp_path):
    path, ds, _ = built
    more = {"R3": PlummerRun("R3", 3.0)}
    other = D.build_dataset(more, n_samples=8, store=tmp_path / "more.zarr", **SMALL)
    both = D.concat_splits([path, tmp_path / "more.zarr"])
    assert both.sizes["sample"] == 32 and both.sample.values.tolist() == list(range(32))
    assert both.run.values.tolist() == ds.run.values.tolist() + other.run.values.tolist()
    np.testing.assert_array_equal(both.flux[24:].values, other.flux.values)
    np.testing.assert_array_equal(both.field_mass[:24].values, ds.field_mass.values)
    assert both.attrs["store"] == f"{path} + {tmp_path / 'more.zarr'}"
    assert [s["n_samples"] for s in json.loads(both.attrs["stores_json"])] == [24, 8]
    assert D.training_mass_to_light(both) == pytest.approx(np.mean(np.concatenate(
        [ds.field_mass.values / ds.field_luminosity_v.values,
         other.field_mass.values / other.field_luminosity_v.values])))
    arrays = D.load_arrays(both, standardisation=D.standardisation(both), targets=["flux"])
    assert arrays["flux"].shape == (32, *ds.flux.shape[1:])
    D.build_dataset(more, n_samples=8, store=tmp_path / "coarse.zarr",
                    imager_options={"smooth_sigma_px": 2.0}, **SMALL)
    with pytest.raises(DatasetError, match=r"concat_splits: the stores differ in "
                                           r"imager_setup_json: .*small\.zarr: .*coarse\.zarr"):
        D.concat_splits([path, tmp_path / "coarse.zarr"])
    with pytest.raises(DatasetError, match="concat_splits: no store given"):
        D.concat_splits([])


def test_selection_by_coordinates(built):
    _, ds, _ = built
    n50 = int((ds.distance == 50).sum())
    assert 0 < n50 < 24
    sub = ds.where(ds.distance == 50, drop=True)
    assert sub.sizes["sample"] == n50 and set(sub.distance.values) == {50.0}
    assert ds.set_xindex("distance").sel(distance=50).sizes["sample"] == n50
    one = D.select(ds, run="R1", distance=50, psf_fwhm=[0.5, 1.5])
    assert set(one.run.values) == {"R1"} and set(one.distance.values) == {50.0}
    assert one.sizes["sample"] == int(((ds.run == "R1") & (ds.distance == 50)).sum())
    assert ds.isel(sample=(ds.psf_fwhm == 1.5).values).psf_fwhm.values.tolist() == [1.5] * int(
        (ds.psf_fwhm == 1.5).sum())
    with pytest.raises(DatasetError, match="per-sample coordinate"):
        D.select(ds, seeing=1.0)


def test_same_seed_same_store_byte_for_byte(built, tmp_path):
    path, ds, _ = built
    again = D.build_dataset(small_sources(), n_samples=24, store=tmp_path / "again.zarr",
                            scheduler="synchronous", **SMALL)
    np.testing.assert_array_equal(again.flux.values, ds.flux.values)
    np.testing.assert_array_equal(again.mass.values, ds.mass.values)
    assert store_digest(tmp_path / "again.zarr") == store_digest(path)
    other = D.build_dataset(small_sources(), n_samples=24, store=tmp_path / "other.zarr",
                            **{**SMALL, "seed": 8})
    assert not np.array_equal(other.shift_x.values, ds.shift_x.values)


def test_rebuild_of_a_finished_store_is_a_no_op_and_other_plans_are_refused(built):
    path, ds, _ = built
    before = store_digest(path)

    class Exploding(PlummerRun):
        def snapshot(self, time_gyr):
            raise AssertionError("a finished store must not be recomputed")

    D.build_dataset({"R1": Exploding("R1", 1.0), "R2": Exploding("R2", 2.0)}, n_samples=24,
                    store=path, **SMALL)
    assert store_digest(path) == before
    with pytest.raises(DatasetError, match="another sample plan.*overwrite=True"):
        D.build_dataset(small_sources(), n_samples=20, store=path, **SMALL)
    with pytest.raises(DatasetError, match="other sources"):  # n_stars is recorded
        D.build_dataset(small_sources(n_stars=900), n_samples=24, store=path, **SMALL)
    assert store_digest(path) == before


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from tests.test_dataset import SMALL, small_sources
    from pidoc_core import dataset as D
    D.build_dataset(small_sources(delay=0.05), n_samples=32, store={store!r},
                    scheduler="synchronous", snapshot_cache_mb=1e-6, **SMALL)
""")


def test_build_killed_midway_resumes_to_the_same_store(tmp_path):
    store = tmp_path / "killed.zarr"
    script = tmp_path / "build.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO), store=str(store)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (store / "zarr.json").exists():
                done, total = D.completion(store)
                if done >= 2:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done, total = D.completion(store)
    assert 2 <= done < total == 8
    with pytest.raises(DatasetError, match="incomplete"):
        D.open_dataset(store)
    with pytest.warns(UserWarning, match="incomplete"):
        partial = D.open_dataset(store, allow_incomplete=True)
    assert int(partial.complete.sum()) == 4 * done
    assert np.isnan(partial.flux.values[~partial.complete.values]).all()
    assert np.isfinite(partial.flux.values[partial.complete.values]).all()

    resumed = D.build_dataset(small_sources(), n_samples=32, store=store, **SMALL)
    assert D.completion(store) == (8, 8)
    fresh = D.build_dataset(small_sources(), n_samples=32, store=tmp_path / "fresh.zarr",
                            **SMALL)
    np.testing.assert_array_equal(resumed.flux.values, fresh.flux.values)
    np.testing.assert_array_equal(resumed.field_mass.values, fresh.field_mass.values)
    assert store_digest(store) == store_digest(tmp_path / "fresh.zarr")


def test_processes_scheduler_gives_the_same_store(tmp_path, built):
    pytest.importorskip("distributed")
    path, ds, _ = built
    D.build_dataset(small_sources(), n_samples=24, store=tmp_path / "proc.zarr",
                    scheduler="processes", workers=2, **SMALL)
    assert store_digest(tmp_path / "proc.zarr") == store_digest(path)


def test_snapshot_directory_source(tmp_path):
    from pidoc_core.readers import write_table

    run = PlummerRun("files", 1.5, n_stars=800)
    (tmp_path / "snaps").mkdir()
    for t in (2.0, 5.0, 9.5):
        write_table(run.snapshot(t), tmp_path / "snaps" / f"snap_{t:04.1f}.ecsv")
    src = D.SnapshotDirectory(tmp_path / "snaps", pattern="*.ecsv", name="files")
    assert src.times.tolist() == [2.0, 5.0, 9.5]
    ds = D.build_dataset({"files": src}, distances_kpc=[20], psf_fwhms_arcsec=[1.0], seed=1,
                         store=tmp_path / "f.zarr", chunk_size=2, progress=False)
    assert sorted(ds.time.values.tolist()) == [2.0, 5.0, 9.5]
    with pytest.raises(DatasetError, match="no snapshot at"):
        D.plan_samples({"files": src}, distances_kpc=[20], psf_fwhms_arcsec=[1.0], seed=1,
                       times=[2.0, 3.0])
    with pytest.raises(DatasetError, match="not a directory"):
        D.SnapshotDirectory(tmp_path / "nowhere")


@pytest.mark.parametrize("kwargs, match", [
    (dict(distances_kpc=[10, -5]), "distances_kpc must all be finite and > 0"),
    (dict(distances_kpc=[]), "distances_kpc is empty"),
    (dict(psf_fwhms_arcsec=[0.0]), "psf_fwhms_arcsec"),
    (dict(n_samples=0), "n_samples must be a positive integer"),
    (dict(times={"R9": [1.0]}), r"unknown run\(s\) \['R9'\]"),
    (dict(times=[1.0, 99.0]), "outside its snapshots' range"),
    (dict(times=[]), "is empty"),
    (dict(seed=-1), "seed"),
    (dict(rotations_deg=[]), "rotations_deg"),
    (dict(lines_of_sight=("w",)), "lines_of_sight"),
    (dict(shift_max_arcsec=-1), "shift_max_arcsec"),
])
def test_bad_arguments_raise_dataset_errors(kwargs, match, tmp_path):
    args = dict(distances_kpc=[10], psf_fwhms_arcsec=[1.0], seed=1, store=tmp_path / "x.zarr",
                progress=False)
    args.update(kwargs)
    with pytest.raises(DatasetError, match=match):
        D.build_dataset(small_sources(), **args)
    assert not (tmp_path / "x.zarr").exists()


def test_other_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="non-empty mapping"):
        D.plan_samples({}, distances_kpc=[10], psf_fwhms_arcsec=[1.0], seed=1)
    with pytest.raises(DatasetError, match=r"unknown run\(s\)"):
        D.paper_splits({"R1": [1.0]}, n_train=2, n_val=2, n_test=2)
    runs = {n: [1.0, 2.0] for n in (*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN)}
    with pytest.raises(DatasetError, match="split equally"):
        D.paper_splits(runs, n_train=3, n_val=2, n_test=2)
    plan = D.plan_samples({"R1": [1.0], "Rx": [1.0]}, distances_kpc=[10], psf_fwhms_arcsec=[1],
                          seed=1)
    with pytest.raises(DatasetError, match=r"not in sources"):
        D.write_dataset(plan, small_sources(), tmp_path / "y.zarr", progress=False)
    with pytest.raises(DatasetError, match="imager_options cannot set"):
        D.build_dataset(small_sources(), distances_kpc=[10], psf_fwhms_arcsec=[1.0], seed=1,
                        store=tmp_path / "z.zarr", imager_options={"distance_kpc": 3})
    with pytest.raises(DatasetError, match="no dataset store"):
        D.open_dataset(tmp_path / "missing.zarr")


# ------------------------------------------------------------------------------ training inputs


def test_standardisation_uses_the_training_split_only(tmp_path):
    sources = small_sources(n_stars=600, times=(1.0, 2.0, 3.0))
    runs = {D.PAPER_TRAIN_RUNS[0]: sources["R1"], D.PAPER_TRAIN_RUNS[1]: sources["R2"],
            D.PAPER_TEST_RUN: PlummerRun("mid", 1.5, n_stars=600, times=(1.0, 2.0, 3.0))}
    plans = D.paper_splits(runs, n_train=8, n_val=4, n_test=4, seed=2)
    paths = D.build_splits(plans, runs, tmp_path, chunk_size=4, progress=False,
                           imager_options={"fov_arcsec": 10.0})
    train, val = D.open_dataset(paths["train"]), D.open_dataset(paths["val"])
    consts = D.standardisation(train)
    f = train.flux.values.astype(float)
    assert consts["flux_mean"] == pytest.approx(f.mean(), rel=1e-12)
    assert consts["flux_std"] == pytest.approx(f.std(), rel=1e-9)
    assert consts["mass_mean"] == pytest.approx(train.mass.values.astype(float).mean(), rel=1e-12)
    both = np.concatenate([train.distance.values, train.time.values])
    assert consts["distance_age_mean"] == pytest.approx(both.mean())
    assert consts["distance_age_std"] == pytest.approx(both.std())
    assert consts["flux_mean"] != pytest.approx(val.flux.values.astype(float).mean(), rel=1e-6)
    with pytest.raises(DatasetError, match="training split only"):
        D.standardisation(val)
    pair = D.standardisation(train, joint_distance_age=False)
    assert pair["distance_age_mean"] == pytest.approx([train.distance.values.mean(),
                                                       train.time.values.mean()])
    from pidoc_core.model import _STANDARDISATION_KEYS

    assert set(consts) == set(_STANDARDISATION_KEYS)


def test_batch_stream_yields_standardised_batches(built):
    path, ds, _ = built
    consts = D.standardisation(ds)
    stream = D.batch_stream(path, standardisation=consts, seed=3)
    assert isinstance(stream, D.BatchStream) and len(stream) == 6  # 24 samples, chunks of 4
    xs, ys = zip(*(stream[i] for i in range(len(stream))))
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == y.shape == (24, 160, 160, 1) and x.dtype == y.dtype == np.float32
    assert abs(x.mean()) < 1e-3 and x.std() == pytest.approx(1.0, rel=1e-3)
    assert abs(y.mean()) < 1e-3 and y.std() == pytest.approx(1.0, rel=1e-3)
    # every sample exactly once per epoch, flux and mass paired; order shuffled
    expect = (ds.flux.values - np.float32(consts["flux_mean"])) / np.float32(consts["flux_std"])
    key = lambda a: np.round(a.reshape(len(a), -1).sum(axis=1), 2)  # noqa: E731
    assert sorted(key(x[..., 0])) == pytest.approx(sorted(key(expect)), abs=0.05)
    first = x[:4, ..., 0]
    assert not np.allclose(first, expect[:4])
    masses = (ds.mass.values - np.float32(consts["mass_mean"])) / np.float32(consts["mass_std"])
    j = int(np.argmin(np.abs(key(expect) - key(x[:1, ..., 0])[0])))
    np.testing.assert_allclose(y[0, ..., 0], masses[j], atol=1e-5)
    # a new epoch reshuffles
    stream.on_epoch_end()
    assert not np.array_equal(np.concatenate([stream[i][0] for i in range(len(stream))]), x)

    ad = D.batch_stream(ds, standardisation=consts, target="age_distance", shuffle=False)
    xb, yb = ad[0]
    assert xb.shape == (4, 160, 160, 1) and yb.shape == (4, 2)
    want = (np.stack([ds.distance.values[:4], ds.time.values[:4]], -1)
            - consts["distance_age_mean"]) / consts["distance_age_std"]
    np.testing.assert_allclose(yb, want, rtol=1e-6)
    with pytest.raises(DatasetError, match="target"):
        D.batch_stream(ds, standardisation=consts, target="age")


def test_info_reports_sizes_ranges_and_completeness(built):
    path, _, _ = built
    info = D.dataset_info(path)
    assert info["n_samples"] == 24 and info["complete"] and info["chunks_total"] == 6
    assert info["ranges"]["distance"]["min"] == 10 and info["ranges"]["distance"]["max"] == 50
    assert sum(info["runs"].values()) == 24


def test_cli_dataset_info(built, capsys):
    from pidoc_core.cli import main

    path, _, _ = built
    assert main(["dataset", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "24 samples" in out and "complete" in out and "distance" in out
    info = D.dataset_info(path)
    assert f"{info['n_snapshots']} distinct (run, time) snapshots" in out
    assert f"repeat factor {info['repeat_factor']:.2f}" in out


def test_fresh_cluster_is_outside_every_training_and_test_condition(tmp_path):
    from pidoc_core import paper
    from pidoc_core.evolution import PAPER_RUNS

    runs, plan = D.fresh_cluster(cache_dir=tmp_path, progress=False)
    (run,) = runs.values()
    assert run.rh0_pc not in PAPER_RUNS.values()
    assert set(plan.distance).isdisjoint(paper.TRAIN_DISTANCES_KPC + paper.TEST_DISTANCES_KPC)
    assert set(plan.psf_fwhm).isdisjoint(paper.TRAIN_PSFS_ARCSEC + paper.TEST_PSFS_ARCSEC)
    assert len(plan) == 1200 and len(plan.snapshots()) == 200 and plan.repeat_factor == 1.0
    assert np.all(np.diff(plan.time) >= 0)  # stored by snapshot: each is made once
