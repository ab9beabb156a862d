"""The paper's train / validation / test protocol (:func:`paper_splits`), the presets of
``pidoc dataset build`` (:func:`preset_splits`) and the ``fresh`` cluster check."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ._common import (_COORDS, _SPLIT_CODES, _STREAM_PLAN, _STREAM_SPLIT, PAPER_TEST_DISTANCES_KPC,
                      PAPER_TEST_PSFS_ARCSEC, PAPER_TEST_RUN, PAPER_TRAIN_DISTANCES_KPC,
                      PAPER_TRAIN_PSFS_ARCSEC, PAPER_TRAIN_RUNS, DatasetError, _check_n,
                      _check_seed)
from .plan import (_ORDERS, SamplePlan, _balanced_draw, _check_geometry, _grid_combos, _plan_from,
                   _times_by_run, plan_samples)

__all__ = ["paper_splits", "preset_splits", "fresh_cluster", "FRESH_CLUSTER", "DATASET_PRESETS"]


def paper_splits(sources=None, *, n_train=20_000, n_val=2_000, n_test=8_172, seed=2021,
                 times=None, train_runs=PAPER_TRAIN_RUNS, test_run=PAPER_TEST_RUN,
                 shift_max_arcsec=5.0, rotations_deg=(0, 90, 180, 270),
                 lines_of_sight=("z",), order="random") -> dict[str, SamplePlan]:
    """The paper's train / validation / test protocol (Chardin & Bianchini 2021, Table 1).

    - **train** and **val**: runs ``train_runs`` (MW15-R1.6 and MW15-R4 analogues) at 10, 25,
      50, 75, 100 kpc and PSF FWHM 0.5 and 1.5", the same number of samples from each run.
      Validation holds out *whole snapshot times* of each training run: no (run, time) snapshot
      is in both splits, so validation never sees a star configuration the network trained on
      (the mass map has no PSF: a snapshot observed at another seeing is the same target). Each
      run's times are shuffled and the first ``ceil(per-run val / (distances x PSFs))`` go to
      validation when the grid is large enough for both splits without repeats, else a share in
      proportion to the sizes asked (each part then drawn with repeats).
    - **test**: run ``test_run`` (the MW15 analogue, rh0 = 3.2 pc) at 15, 30, 60, 80 kpc and PSF
      1.0"; ``n_test=None`` takes every (time, distance) once.

    Parameters
    ----------
    sources : mapping, optional
        Run name -> source (or -> sequence of times); default
        :func:`pidoc_core.evolution.paper_runs` (only their ``.times`` are read here).
    n_train, n_val : int
        Total sizes, split equally between the training runs (must divide evenly). The paper's
        20,000 and 2,000 are the defaults.
    n_test : int or None
        Test size; the paper's 8,172 (its 2,043 snapshots x 4 distances) by default.
    seed : int
        Seed of the whole protocol; each split uses its own streams.
    times : sequence or mapping, optional
        Times (Gyr) for all runs or per run; default each source's ``.times``.
    train_runs : sequence of str
        Runs of the training and validation sets.
    test_run : str
        Run of the test set.
    shift_max_arcsec, rotations_deg, lines_of_sight
        As :func:`plan_samples` (the paper: 5", 0/90/180/270 degrees, one line of sight).
    order : {'random', 'snapshot'}
        Store order: seeded random, or grouped by snapshot (random inside a group) so that a
        build makes each snapshot once for all of its maps (training shuffles in memory).

    Returns
    -------
    dict
        ``{"train": SamplePlan, "val": SamplePlan, "test": SamplePlan}``.

    Raises
    ------
    DatasetError
        Unknown run names, sizes that do not split evenly, or a grid too small to keep
        train and val disjoint.

    Examples
    --------
    >>> runs = {n: list(np.arange(1.0, 15.0)) for n in (*PAPER_TRAIN_RUNS, PAPER_TEST_RUN)}
    >>> plans = paper_splits(runs, n_train=100, n_val=20, n_test=None, seed=1)
    >>> len(plans["train"]), len(plans["val"]), len(plans["test"])
    (100, 20, 56)
    >>> plans["train"].snapshots() & plans["val"].snapshots()
    set()
    """
    seed = _check_seed(seed)
    sources, train_runs, n_train, n_val, n_test = _check_paper_args(
        sources, train_runs, test_run, order, n_train, n_val, n_test)
    shift_max, rotations, los = _check_geometry(shift_max_arcsec, rotations_deg, lines_of_sight)
    wanted = [*train_runs, test_run]
    if isinstance(times, Mapping):
        bad = sorted(set(times) - set(wanted))
        if bad:
            raise DatasetError(f"times names unknown run(s) {bad}; the splits use {wanted}")
    tbr = _times_by_run({r: sources[r] for r in wanted}, times)
    geometry = dict(shift_max_arcsec=shift_max, rotations_deg=list(rotations),
                    lines_of_sight=list(los))
    draw = dict(seed=seed, shift_max=shift_max, rotations=rotations, lines_of_sight=los,
                order=order)
    plans = _train_val_plans(tbr, train_runs, n_train, n_val, wanted=wanted, geometry=geometry,
                             **draw)
    plans["test"] = _test_plan(tbr, test_run, n_test, geometry=geometry, **draw)
    return plans


def _check_paper_args(sources, train_runs, test_run, order, n_train, n_val, n_test):
    """The checked sources, training runs and sizes of :func:`paper_splits`."""
    if sources is None:
        from ..evolution import paper_runs

        sources = paper_runs(progress=False)
    if not isinstance(sources, Mapping):
        raise DatasetError(f"sources must be a mapping run name -> source, got {sources!r:.80}")
    train_runs = tuple(train_runs)
    unknown = [r for r in [*train_runs, test_run] if r not in sources]
    if unknown:
        raise DatasetError(f"paper_splits: unknown run(s) {unknown}; the sources are "
                           f"{list(sources)}")
    if not train_runs:
        raise DatasetError("paper_splits: train_runs is empty")
    if test_run in train_runs:
        raise DatasetError(f"paper_splits: the test run {test_run!r} is also a training run")
    if order not in _ORDERS:
        raise DatasetError(f"paper_splits: order must be one of {list(_ORDERS)}, got {order!r}")
    n_train = _check_n("n_train", n_train, allow_none=False)
    n_val = _check_n("n_val", n_val, allow_none=False)
    n_test = _check_n("n_test", n_test)
    k = len(train_runs)
    for name, n in (("n_train", n_train), ("n_val", n_val)):
        if n % k:
            raise DatasetError(f"{name}={n} must split equally between the {k} training runs "
                               f"{list(train_runs)}")
    return sources, train_runs, n_train, n_val, n_test


def _train_val_plans(tbr, train_runs, n_train, n_val, *, wanted, geometry, seed, shift_max,
                     rotations, lines_of_sight, order) -> dict[str, SamplePlan]:
    """The train and val plans of :func:`paper_splits`: whole times of each run held out."""
    k = len(train_runs)
    per_run_train, per_run_val = n_train // k, n_val // k
    chosen = {"train": [], "val": []}
    held_out = {}
    for r in train_runs:
        pools, rng = _time_held_out_pools(r, tbr[r], per_run_train, per_run_val, seed=seed,
                                          stream=wanted.index(r))
        held_out[r] = sorted({c[1] for c in pools["val"]})
        for split in ("train", "val"):
            m = per_run_train if split == "train" else per_run_val
            idx = _balanced_draw(len(pools[split]), m, rng, allow_repeats=True,
                                 what=f"{split} {r!r}")
            chosen[split].extend(pools[split][i] for i in idx)
    plans = {}
    for split in ("train", "val"):
        grid = dict(protocol="Chardin & Bianchini (2021) Table 1", runs=list(train_runs),
                    times_gyr={r: [t for t in tbr[r] if (t in held_out[r]) == (split == "val")]
                               for r in train_runs},
                    validation="whole snapshot times held out",
                    distances_kpc=list(PAPER_TRAIN_DISTANCES_KPC),
                    psf_fwhms_arcsec=list(PAPER_TRAIN_PSFS_ARCSEC),
                    n_samples=len(chosen[split]), per_run=n_train // k if split == "train"
                    else n_val // k, **geometry)
        rng = np.random.default_rng([seed, _STREAM_PLAN, _SPLIT_CODES[split]])
        plans[split] = _plan_from(chosen[split], seed=seed, split=split, grid=grid,
                                  shift_max=shift_max, rotations=rotations,
                                  lines_of_sight=lines_of_sight, order_rng=rng, order=order)
    return plans


def _test_plan(tbr, test_run, n_test, *, geometry, seed, shift_max, rotations, lines_of_sight,
               order) -> SamplePlan:
    """The test plan of :func:`paper_splits`: the test run at the test distances and seeing."""
    combos = _grid_combos({test_run: tbr[test_run]}, PAPER_TEST_DISTANCES_KPC,
                          PAPER_TEST_PSFS_ARCSEC)
    rng = np.random.default_rng([seed, _STREAM_PLAN, _SPLIT_CODES["test"]])
    idx = _balanced_draw(len(combos), n_test, rng, allow_repeats=True, what="test")
    grid = dict(protocol="Chardin & Bianchini (2021) Table 1", runs=[test_run],
                times_gyr={test_run: list(tbr[test_run])},
                distances_kpc=list(PAPER_TEST_DISTANCES_KPC),
                psf_fwhms_arcsec=list(PAPER_TEST_PSFS_ARCSEC), n_samples=len(idx), **geometry)
    return _plan_from([combos[i] for i in idx], seed=seed, split="test", grid=grid,
                      shift_max=shift_max, rotations=rotations, lines_of_sight=lines_of_sight,
                      order_rng=rng, order=order)


def _time_held_out_pools(run, times, per_run_train, per_run_val, *, seed, stream):
    """The (run, time, distance, psf) combinations of one training run, split by whole times
    into a training and a validation pool; also returns the generator for the draws."""
    times = np.asarray(times, float)
    n_t = times.size
    if n_t < 2:
        raise DatasetError(f"run {run!r} has {n_t} snapshot time(s); at least 2 are needed to "
                           "hold whole times out for validation")
    per_time = len(PAPER_TRAIN_DISTANCES_KPC) * len(PAPER_TRAIN_PSFS_ARCSEC)
    rng = np.random.default_rng([seed, _STREAM_SPLIT, stream])
    perm = rng.permutation(n_t)
    n_val_t = math.ceil(per_run_val / per_time)
    if n_val_t + math.ceil(per_run_train / per_time) > n_t:
        n_val_t = int(round(n_t * per_run_val / (per_run_train + per_run_val)))
    n_val_t = min(max(n_val_t, 1), n_t - 1)
    val_times = tuple(np.sort(times[perm[:n_val_t]]).tolist())
    train_times = tuple(np.sort(times[perm[n_val_t:]]).tolist())
    pools = {split: _grid_combos({run: ts}, PAPER_TRAIN_DISTANCES_KPC, PAPER_TRAIN_PSFS_ARCSEC)
             for split, ts in (("train", train_times), ("val", val_times))}
    return pools, rng


#: Presets of ``pidoc dataset build``. ``paper``: the paper's sizes (Table 1) from
#: :data:`~pidoc_core.evolution.DENSE_SNAPSHOTS` times per training run and 2,043 for the test
#: run (the paper's 8,172 test maps are its 2,043 MW15 snapshots at 4 distances), stored grouped
#: by snapshot so that each is made once. ``small``: a quick set every 1 Gyr from 1 to 14 Gyr.
#: ``wide``: the grid of embedded runs spanning the paper's Table 3 clusters
#: (:func:`pidoc_core.evolution.grid.wide_splits`: validation and test runs held out whole).
DATASET_PRESETS = {
    "paper": dict(n_train=20_000, n_val=2_000, n_test=8_172,
                  snapshots={"train": "dense", "test": 2043}, order="snapshot"),
    "small": dict(n_train=512, n_val=64, n_test=128,
                  times=[float(t) for t in range(1, 15)], order="random"),
    "wide": dict(n_train=40_000, n_val=4_000, n_test=8_000, plan="wide", order="snapshot"),
    # the partner square's 12 runs, training only, ~2,857 samples a run as the wide preset's 14
    "wide-extra": dict(n_train=34_286, n_val=0, n_test=0, plan="wide-extra", order="snapshot"),
}

#: The ``fresh`` preset: a cluster none of the networks saw, for a check beyond the test split:
#: another initial half-mass radius (2.4 pc; training 1.6 and 4.0, test 3.2) and seed, 200
#: snapshot times, distances (20, 40, 90 kpc) and seeing (0.8", 1.2") outside Table 1's grid.
FRESH_CLUSTER = dict(rh0_pc=2.4, seed=3031, galactocentric_kpc=15.0, metallicity=0.001,
                     name="MW15-R2.4 fresh analogue", n_times=200, distances_kpc=(20.0, 40.0, 90.0),
                     psf_fwhms_arcsec=(0.8, 1.2), n_samples=1200)


def fresh_cluster(*, n_stars: int = 50_000, cache_dir=None, progress: bool = True,
                  cache_snapshots: bool = False):
    """The run and the sample plan of the ``fresh`` check (:data:`FRESH_CLUSTER`).

    Parameters
    ----------
    n_stars : int, keyword-only
        Initial stars of the run.
    cache_dir, progress, cache_snapshots
        As :class:`~pidoc_core.evolution.ClusterEvolution`.

    Returns
    -------
    (dict, SamplePlan)
        ``{name: ClusterEvolution}`` and the plan (split ``'custom'``, stored by snapshot).
    """
    from ..evolution import ClusterEvolution

    f = FRESH_CLUSTER
    run = ClusterEvolution(f["rh0_pc"], n_stars=n_stars, galactocentric_kpc=f["galactocentric_kpc"],
                           metallicity=f["metallicity"], seed=f["seed"], name=f["name"],
                           cache_dir=cache_dir, progress=progress,
                           cache_snapshots=cache_snapshots)
    times = np.round(np.linspace(0.5, 14.0, f["n_times"]), 6)
    plan = plan_samples({f["name"]: times}, distances_kpc=f["distances_kpc"],
                        psf_fwhms_arcsec=f["psf_fwhms_arcsec"], n_samples=f["n_samples"],
                        seed=f["seed"])
    order = np.lexsort((plan.time,))
    plan = SamplePlan(**{k: getattr(plan, k)[order] for k in _COORDS}, seed=plan.seed,
                      split="custom", grid=plan.grid)
    return {f["name"]: run}, plan


def preset_splits(preset: str, sources, *, seed: int, n_train=None, n_val=None, n_test=None,
                  train_runs=PAPER_TRAIN_RUNS, test_run=PAPER_TEST_RUN) -> dict[str, SamplePlan]:
    """The sample plans of a :data:`DATASET_PRESETS` entry over ``sources``.

    Parameters
    ----------
    preset : {'paper', 'small', 'wide', 'wide-extra'}
        Preset name.
    sources : mapping
        Run name -> source; the ``paper`` preset needs sources with ``dense_times(n)`` (the
        embedded :class:`~pidoc_core.evolution.ClusterEvolution` runs), the ``wide`` preset the
        grid's runs (:func:`pidoc_core.evolution.grid.wide_sources`; ``train_runs`` and
        ``test_run`` do not apply: its held-out runs are the grid's), ``wide-extra`` the partner
        square's (``wide_sources(grid=WIDE_EXTRA_GRID)``; a training split only).
    seed : int, keyword-only
        Seed of the plans.
    n_train, n_val, n_test : int, optional
        Sizes overriding the preset's.

    Returns
    -------
    dict
        As :func:`paper_splits`.
    """
    if preset not in DATASET_PRESETS:
        raise DatasetError(f"preset must be one of {sorted(DATASET_PRESETS)}, got {preset!r}")
    spec = DATASET_PRESETS[preset]
    sizes = {k: spec[k] if v is None else v
             for k, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))}
    if spec.get("plan") in ("wide", "wide-extra"):
        from ..evolution.grid import wide_splits

        # wide-extra: training runs only, nothing is held out
        held = {} if spec["plan"] == "wide" else dict(val_runs=(), test_runs=())
        return wide_splits(sources, **sizes, seed=seed, order=spec["order"], **held)
    times = spec.get("times")
    if "snapshots" in spec:
        times = {}
        for role, runs in (("train", train_runs), ("test", (test_run,))):
            n = spec["snapshots"][role]
            for r in runs:
                src = sources.get(r)
                if not hasattr(src, "dense_times"):
                    raise DatasetError(f"preset {preset!r}: source {r!r} "
                                       f"({type(src).__name__}) has no dense_times(); pass "
                                       "times= to paper_splits instead")
                times[r] = src.dense_times() if n == "dense" else src.dense_times(n)
    return paper_splits(sources, **sizes, seed=seed, times=times, train_runs=train_runs,
                        test_run=test_run, order=spec["order"])
