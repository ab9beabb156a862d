"""A grid of embedded runs spanning the globular clusters of the paper's Table 3.

The paper's networks were trained on three N = 50,000 runs; only 5 of the 17 clusters it
applied them to (Chardin & Bianchini 2021, Table 3, Fig. 10) have a field luminosity inside the
training range. Table 3 spans, in the 40" field: L_FoV = 341-68,421 Lsun at 8.1-41.2 kpc;
half-light radii 0.36-2.61' (1.5-13 pc), core radii 0.06-2.08' (0.2-10 pc), ages 11.25-13 Gyr
and [Fe/H] = -2.27 to -0.40.

How the grid was chosen
-----------------------
Four levels of each of the four inputs of :class:`~pidoc_core.evolution.ClusterEvolution`:

- initial N: 5e4, 1.5e5, 4e5, 1e6 (about x2.5 apart). cbhbd gives M(12 Gyr) from ~4,000 Msun
  (5e4 stars at 8 kpc) to ~3.4e5 Msun (1e6 stars); a measured 3e5-star run (rh0 = 2 pc, 8 kpc)
  has 11,000-13,000 Lsun in the field at 10 kpc and 23,000-27,000 Lsun at 40 kpc at 12-13 Gyr,
  so the brightest Table 3 fields (NGC 6229: 68,421 Lsun at 30.5 kpc; NGC 5694: 50,433 at
  35 kpc) need ~1e6 stars, the faintest (NGC 5053: 341 Lsun at 17.4 kpc) 5e4 extended ones;
- initial half-mass radius rh0: 1, 2, 4, 8 pc: cbhbd's rh at 12 Gyr is 3.5-15 pc, bracketing
  Table 3's half-light radii (the 3D half-mass radius of a segregated cluster is ~1.3-1.5x its
  projected half-light radius);
- Galactocentric radius (circular orbit): 4, 8, 15, 30 kpc (Table 3's clusters lie at ~2-40 kpc);
  the tidal field sets mass loss and so the present mass function and M/L;
- [Fe/H]: -2.2, -1.6, -1.0, -0.4 (Z = 0.019 x 10^[Fe/H], the SSE convention; COSMIC/SSE are valid
  for Z >= 1e-4, so -2.2 stands for Table 3's -2.27).

A full factorial would be 256 runs; the grid's core is the 16 runs of a Graeco-Latin square: rows N,
columns rh0, and two orthogonal Latin squares over GF(4) (``i XOR j`` and ``i XOR alpha*j``) give
the orbit and the metallicity, so every pair of levels of any two inputs occurs exactly once and
each input's effect is estimated over all levels of the others. One substitution: the square puts
the 5e4-star, rh0 = 1 pc run at 4 kpc, where cbhbd dissolves every 5e4-star cluster before 9 Gyr
(no mock older than 11 Gyr); that run orbits at 20 kpc instead. All 16 runs survive to 14 Gyr
(cbhbd; :func:`grid_histories`).

Two black-hole twins (:data:`BH_TWINS`, runs 17-18) follow, measured, not designed in advance: the
concentration law of :mod:`pidoc_core.evolution.dynamics` makes every old run of the square
centrally concentrated, so its faintest fields older than 11 Gyr hold ~1,000 Lsun at 17 kpc and
its largest projected half-light radii are ~6 pc, short of Table 3's low-density clusters
(NGC 5053: 341 Lsun, 13 pc; Pal 11: 681 Lsun; NGC 7492: 1,067 Lsun). The two most extended runs
of the square (rh0 = 8 pc, 5e4 and 1.5e5 stars) are repeated with the same seed and
``retain_bhs=True``: cbhbd's retained black holes keep rh at 16-17 pc instead of 12 pc, and the
5e4-star twin has 705 Lsun in the field at 17 kpc (its square twin 1,305) and a half-light
radius of 8.4 pc (5.9 pc).

The partner square (:data:`WIDE_EXTRA_GRID`, runs 19-30, the ``wide-extra`` preset): the same
cells of N and rh0 with every run's orbit and metallicity moved to the partner level (level
index XOR 1: 4 <-> 8 and 15 <-> 30 kpc, -2.2 <-> -1.6 and -1.0 <-> -0.4 dex), so no cell repeats
a run of the square and the pairs of levels stay balanced. Measured, not designed in advance:
the square's validation and test runs (interior cells of N and rh0) orbit at 4 and 30 kpc, so
with them held out only one training run (W16, 10^6 stars, rh0 = 8 pc, hardly stripped) felt
the 4 kpc tidal field, and the networks trained on the square erred most on unseen runs. The
partner square adds two runs at 4 kpc. Its 10^6-star row is left out (each such run costs
about three 4e5-star ones to build and the square already has four); as in the square, the
5e4-star run that would orbit at 4 kpc (dissolved at 8.2 Gyr) orbits at 20 kpc. All twelve
survive to 14 Gyr. They only train: the held-out runs stay the square's.

Validation and test hold out whole runs (:data:`WIDE_VAL_RUNS`, :data:`WIDE_TEST_RUNS`): four
runs inside the ranges of N and rh0, so the extremes that reach the faintest and brightest
Table 3 fields stay in training (:func:`wide_splits`).

Large N: stars that cannot reach the field
------------------------------------------
The runs are :class:`~pidoc_core.evolution.field.FieldEvolution`: snapshots cut to the stars
that can reach the field, with a density centre from the innermost stars (measured and
explained in :mod:`pidoc_core.evolution.field`, whose names this module re-exports).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from .cluster import ClusterEvolution
from .field import _AXES, FieldEvolution, field_stars, inner_density_centre, reach_radius_pc
from .stellar import AGE_STEP_GYR

__all__ = ["N_LEVELS", "RH0_LEVELS_PC", "RG_LEVELS_KPC", "FEH_LEVELS", "WIDE_GRID",
           "BH_TWINS", "WIDE_EXTRA_GRID", "WIDE_VAL_RUNS", "WIDE_TEST_RUNS",
           "WIDE_DISTANCES_KPC", "WIDE_PSFS_ARCSEC", "WIDE_SNAPSHOTS", "WIDE_SSE_AGE_STEP_GYR",
           "metallicity_z", "grid_runs", "wide_sources", "grid_histories", "reach_radius_pc",
           "field_stars", "inner_density_centre", "FieldEvolution", "wide_splits", "field_records",
           "projected_radii", "map_core_radius_arcsec"]

#: Initial numbers of stars.
N_LEVELS = (50_000, 150_000, 400_000, 1_000_000)
#: Initial half-mass radii, pc.
RH0_LEVELS_PC = (1.0, 2.0, 4.0, 8.0)
#: Galactocentric radii of the circular orbits, kpc.
RG_LEVELS_KPC = (4.0, 8.0, 15.0, 30.0)
#: Metallicities [Fe/H], dex.
FEH_LEVELS = (-2.2, -1.6, -1.0, -0.4)
#: The run that replaces the square's 4 kpc orbit for 5e4 stars (see the module notes), kpc.
_SUBSTITUTE_RG_KPC = 20.0
_SEED0 = 1800


def metallicity_z(feh: float) -> float:
    """Z from [Fe/H] with the SSE convention Z = 0.019 x 10^[Fe/H], rounded to 1e-7.

    Examples
    --------
    >>> round(metallicity_z(-1.0), 5)
    0.0019
    """
    return round(0.019 * 10.0 ** float(feh), 7)


def _square(*, partner=0, n_levels=N_LEVELS, first=1):
    """The 16 runs of the Graeco-Latin square, or with ``partner=1`` the partner square's (see
    the module notes), numbered from ``first``."""
    alpha = (0, 2, 3, 1)  # multiplication by a generator of GF(4), elements as 2-bit ints
    rows = []
    for i, n in enumerate(n_levels):
        for j, rh0 in enumerate(RH0_LEVELS_PC):
            rg = RG_LEVELS_KPC[i ^ j ^ partner]
            if n == N_LEVELS[0] and rg == RG_LEVELS_KPC[0]:
                rg = _SUBSTITUTE_RG_KPC
            feh = FEH_LEVELS[i ^ alpha[j] ^ partner]
            k = len(rows) + first
            rows.append(dict(name=f"W{k:02d} N{n // 1000}k rh{rh0:g} Rg{rg:g} FeH{feh:+.1f}",
                             n_stars=n, rh0_pc=rh0, galactocentric_kpc=rg, feh=feh,
                             metallicity=metallicity_z(feh), seed=_SEED0 + k, retain_bhs=False))
    return tuple(rows)


def _bh_twins(square):
    """The square's rh0 = 8 pc runs of 5e4 and 1.5e5 stars again, with retained black holes."""
    twins = [r for r in square if r["rh0_pc"] == RH0_LEVELS_PC[-1] and r["n_stars"] <= 150_000]
    return tuple(dict(r, name=f"W{len(square) + i + 1:02d}{r['name'][3:]} BH", retain_bhs=True)
                 for i, r in enumerate(twins))


_SQUARE = _square()
#: The two black-hole twins (see the module notes).
BH_TWINS = _bh_twins(_SQUARE)
#: The 18 runs: the square's 16 then :data:`BH_TWINS`; keys name, n_stars, rh0_pc (pc),
#: galactocentric_kpc (kpc), feh (dex), metallicity (Z), seed, retain_bhs.
WIDE_GRID = _SQUARE + BH_TWINS
#: The partner square's 12 runs of N <= 4e5 (runs 19-30; see the module notes): training runs of
#: the ``wide-extra`` preset, keys as :data:`WIDE_GRID`.
WIDE_EXTRA_GRID = _square(partner=1, n_levels=N_LEVELS[:3], first=len(WIDE_GRID) + 1)
#: Runs held out whole for validation and for testing (interior levels of N and rh0).
WIDE_VAL_RUNS = tuple(r["name"] for r in WIDE_GRID
                      if (r["n_stars"], r["rh0_pc"]) in ((150_000, 4.0), (400_000, 2.0)))
WIDE_TEST_RUNS = tuple(r["name"] for r in WIDE_GRID
                       if (r["n_stars"], r["rh0_pc"]) in ((150_000, 2.0), (400_000, 4.0)))
#: Distances of the wide preset, kpc: dense over Table 3's 8-41 kpc, then the paper's 50-100.
WIDE_DISTANCES_KPC = (8.0, 10.0, 13.0, 17.0, 22.0, 28.0, 35.0, 42.0, 50.0, 75.0, 100.0)
#: Seeing of the wide preset, arcsec (Pan-STARRS1 images have ~1-1.3").
WIDE_PSFS_ARCSEC = (0.5, 1.0, 1.5)
#: Snapshot times per run of the wide preset (every 0.02 Gyr over 0-14 Gyr).
WIDE_SNAPSHOTS = 701
#: Age step of the wide runs' SSE tables, Gyr: that of the preset's snapshot times, so that every
#: snapshot falls on a table age and only stars whose mass cell straddles a phase boundary are
#: evolved exactly (~100 instead of ~1,700 at N = 10^6; :mod:`pidoc_core.evolution.stellar`).
WIDE_SSE_AGE_STEP_GYR = round(14.0 / (WIDE_SNAPSHOTS - 1), 10)


def grid_runs(*, names=None, cache_dir=None, progress=True, cache_snapshots=False,
              sse_grid_masses=None, sse_age_step_gyr=AGE_STEP_GYR, field_radius_pc=None,
              lines_of_sight=("x", "y", "z"), grid=WIDE_GRID) -> dict:
    """The runs of :data:`WIDE_GRID` (or another grid) as snapshot sources.

    Parameters
    ----------
    names : sequence of str, keyword-only
        Subset of run names (default all of ``grid``).
    cache_dir : path, keyword-only
        Cache directory (default ``$PIDOC_CACHE_DIR`` or the user cache).
    progress : bool, keyword-only
        Show set-up progress bars.
    cache_snapshots : bool, keyword-only
        Keep snapshots on disk (a 1e6-star snapshot is ~40 MB; default False).
    sse_grid_masses : int, keyword-only
        Initial masses of the SSE table (default: ClusterEvolution's, 11,000 here).
    sse_age_step_gyr : float, keyword-only
        Age step of the SSE table, Gyr (ClusterEvolution's ``sse_age_step_gyr``).
    field_radius_pc : float, keyword-only
        Keep only stars within this projected radius, pc (:class:`FieldEvolution`; see
        :func:`reach_radius_pc`); None draws every star (:class:`ClusterEvolution`).
    lines_of_sight : sequence of {'x', 'y', 'z'}, keyword-only
        Lines of sight along which the field radius is applied.
    grid : sequence of dict, keyword-only
        Rows in the form of :data:`WIDE_GRID` (e.g. :data:`WIDE_EXTRA_GRID`).

    Returns
    -------
    dict
        Run name -> :class:`~pidoc_core.evolution.ClusterEvolution` (or :class:`FieldEvolution`),
        in ``grid`` order. Nothing is computed until a snapshot is asked for.
    """
    known = [r["name"] for r in grid]
    wanted = known if names is None else list(names)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"names has unknown run(s) {unknown}; the grid's runs are {known}")
    out = {}
    for row in grid:
        if row["name"] not in wanted:
            continue
        kw = dict(n_stars=row["n_stars"], galactocentric_kpc=row["galactocentric_kpc"],
                  metallicity=row["metallicity"], seed=row["seed"], name=row["name"],
                  cache_dir=cache_dir, progress=progress, cache_snapshots=cache_snapshots,
                  sse_grid_masses=sse_grid_masses, sse_age_step_gyr=sse_age_step_gyr,
                  retain_bhs=row["retain_bhs"])
        if field_radius_pc is None:
            out[row["name"]] = ClusterEvolution(row["rh0_pc"], **kw)
        else:
            out[row["name"]] = FieldEvolution(row["rh0_pc"], field_radius_pc=field_radius_pc,
                                              lines_of_sight=lines_of_sight, **kw)
    return out


def wide_sources(*, cache_dir=None, progress=True, sse_grid_masses=None,
                 grid=WIDE_GRID) -> dict:
    """The grid's runs as the ``wide`` (and ``wide-extra``) preset builds them.

    :class:`FieldEvolution` runs cut at :func:`reach_radius_pc` of :data:`WIDE_DISTANCES_KPC` and
    :data:`WIDE_PSFS_ARCSEC` along the preset's line of sight (z), density centre from the
    20,000 innermost stars, SSE tables with the preset's 0.02-Gyr age step
    (:data:`WIDE_SSE_AGE_STEP_GYR`), snapshots not kept on disk (a dataset build uses each
    snapshot for all of its maps at once).

    Parameters
    ----------
    cache_dir, progress, sse_grid_masses, grid
        As :func:`grid_runs` (``grid=WIDE_EXTRA_GRID``: the ``wide-extra`` preset's runs).

    Returns
    -------
    dict
        Run name -> :class:`FieldEvolution`, in ``grid`` order.
    """
    return grid_runs(grid=grid, cache_dir=cache_dir, progress=progress, cache_snapshots=False,
                     sse_grid_masses=sse_grid_masses, sse_age_step_gyr=WIDE_SSE_AGE_STEP_GYR,
                     lines_of_sight=("z",),
                     field_radius_pc=reach_radius_pc(WIDE_DISTANCES_KPC, WIDE_PSFS_ARCSEC))


def grid_histories(*, times_gyr=(11.0, 12.0, 13.0), grid=WIDE_GRID) -> list[dict]:
    """cbhbd's global evolution of every grid run (no stars drawn; ~0.1-0.5 s per run).

    Parameters
    ----------
    times_gyr : sequence of float, keyword-only
        Times at which to report, Gyr.
    grid : sequence of dict, keyword-only
        Rows in the form of :data:`WIDE_GRID`.

    Returns
    -------
    list of dict
        Per run: its row, ``t_end_gyr`` (Gyr; < 14 if the cluster dissolves) and per time
        ``mass_msun`` (Msun), ``rh_pc`` and ``r_jacobi_pc`` (pc) as lists.
    """
    from .dynamics import run_cbhbd

    out = []
    for row in grid:
        h = run_cbhbd(n_stars=row["n_stars"], rh0_pc=row["rh0_pc"],
                      galactocentric_kpc=row["galactocentric_kpc"],
                      metallicity=row["metallicity"], seed=row["seed"],
                      retain_bhs=row.get("retain_bhs", False))
        ts = [float(t) for t in times_gyr]
        out.append(dict(row, t_end_gyr=float(h.t[-1]), times_gyr=ts,
                        mass_msun=[float(h.at("mass", t)) for t in ts],
                        rh_pc=[float(h.at("rh", t)) for t in ts],
                        r_jacobi_pc=[float(h.at("r_jacobi", t)) for t in ts]))
    return out


def _group_by_snapshot(plan):
    """The plan with its samples grouped by (run, time), each keeping its own geometry."""
    order = np.lexsort((plan.time, plan.run))
    arrays = {f.name: getattr(plan, f.name)[order] for f in dataclasses.fields(plan)
              if isinstance(getattr(plan, f.name), np.ndarray)}
    return dataclasses.replace(plan, **arrays)


def _source_times(src, n):
    if hasattr(src, "dense_times"):
        return src.dense_times(n)
    if isinstance(src, Mapping) or not hasattr(src, "times"):
        return np.asarray(src, float)
    return np.asarray(src.times, float)


def wide_splits(sources=None, *, n_train=40_000, n_val=4_000, n_test=8_000, seed=2021,
                snapshots_per_run=WIDE_SNAPSHOTS, distances_kpc=WIDE_DISTANCES_KPC,
                psf_fwhms_arcsec=WIDE_PSFS_ARCSEC, val_runs=WIDE_VAL_RUNS,
                test_runs=WIDE_TEST_RUNS, shift_max_arcsec=5.0,
                rotations_deg=(0, 90, 180, 270), lines_of_sight=("z",),
                order="snapshot") -> dict:
    """The ``wide`` protocol: train on the grid's runs, validate and test on runs held out whole.

    Parameters
    ----------
    sources : mapping, optional
        Run name -> source (or -> times, Gyr); default :func:`grid_runs` (only their times are
        read: no set-up runs).
    n_train, n_val, n_test : int, keyword-only
        Sizes of the splits (drawn evenly over each split's (run, time, distance, PSF)
        combinations, without repeats while the grid is large enough).
    seed : int, keyword-only
        Seed of the plans.
    snapshots_per_run : int, keyword-only
        Times per run (``dense_times(n)`` of the embedded runs).
    distances_kpc, psf_fwhms_arcsec : sequence of float, keyword-only
        Distances (kpc) and seeing (arcsec) of every split.
    val_runs, test_runs : sequence of str, keyword-only
        Runs held out whole for validation and testing; every other source trains. With none,
        that split is not planned (``wide-extra``: its runs only train).
    shift_max_arcsec, rotations_deg, lines_of_sight, order
        As :func:`pidoc_core.dataset.paper_splits`.

    Returns
    -------
    dict
        ``{"train": SamplePlan, "val": SamplePlan, "test": SamplePlan}`` (the splits with runs);
        each plan's ``grid`` records the protocol and the held-out runs.

    Raises
    ------
    pidoc_core.dataset.DatasetError
        Unknown or overlapping held-out runs, or bad sizes.
    """
    from ..dataset import DatasetError, plan_samples

    if sources is None:
        sources = grid_runs(progress=False)
    names = list(sources)
    val_runs, test_runs = tuple(val_runs), tuple(test_runs)
    unknown = [r for r in (*val_runs, *test_runs) if r not in sources]
    if unknown:
        raise DatasetError(f"wide_splits: held-out run(s) {unknown} are not among the sources "
                           f"{names}")
    if set(val_runs) & set(test_runs):
        raise DatasetError(f"wide_splits: runs {sorted(set(val_runs) & set(test_runs))} are "
                           "in both val_runs and test_runs")
    if order not in ("random", "snapshot"):
        raise DatasetError(f"wide_splits: order must be 'random' or 'snapshot', got {order!r}")
    roles = {"train": [r for r in names if r not in val_runs + test_runs],
             "val": list(val_runs), "test": list(test_runs)}
    if not roles["train"]:
        raise DatasetError("wide_splits: no run is left for training")
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    plans = {}
    for split, runs in roles.items():
        if not runs:  # no held-out runs: a training set only (the wide-extra preset)
            continue
        times = {r: _source_times(sources[r], snapshots_per_run) for r in runs}
        plan = plan_samples({r: times[r] for r in runs}, distances_kpc=distances_kpc,
                            psf_fwhms_arcsec=psf_fwhms_arcsec, n_samples=sizes[split],
                            seed=seed, split=split, shift_max_arcsec=shift_max_arcsec,
                            rotations_deg=rotations_deg, lines_of_sight=lines_of_sight)
        grid = dict(plan.grid, protocol="wide grid: runs held out whole",
                    held_out={"val": list(val_runs), "test": list(test_runs)})
        plan = dataclasses.replace(plan, grid=grid)
        plans[split] = _group_by_snapshot(plan) if order == "snapshot" else plan
    return plans


def projected_radii(snapshot, *, line_of_sight="z") -> dict:
    """Projected half-light radius of a snapshot about its density centre, pc.

    Parameters
    ----------
    snapshot : pidoc_core.snapshot.Snapshot
    line_of_sight : {'x', 'y', 'z'}, keyword-only

    Returns
    -------
    dict
        ``r_h_pc``: the radius enclosing half the V-band light in projection, pc.
    """
    from ..photometry import snapshot_v_luminosity

    i, j = _AXES[line_of_sight]
    rel = snapshot.positions - snapshot.density_centre
    rp = np.hypot(rel[:, i], rel[:, j])
    lum = snapshot_v_luminosity(snapshot)
    order = np.argsort(rp)
    cum = np.cumsum(lum[order])
    r_h = float(np.interp(0.5 * cum[-1], cum, rp[order])) if cum[-1] > 0 else math.nan
    return dict(r_h_pc=r_h)


def map_core_radius_arcsec(obs) -> float:
    """Core radius of a centred mock observation as an observer measures it, arcsec.

    The radius at which the azimuthal median of the (PSF-convolved, smoothed) V-band flux map
    falls to half its central value (the median within 0.5" of the centre), in rings of one
    pixel about the map centre; medians make it robust to single bright giants. The embedded
    clusters have cusped centres after ~10 relaxation times, so this is the seeing-limited core
    radius of core-collapsed clusters, as for Table 3's (Harris 2010) smallest values. NaN when
    the profile never halves inside the field.

    Parameters
    ----------
    obs : xarray.Dataset
        From :func:`pidoc_core.imager.observe` with no shift.

    Returns
    -------
    float
        arcsec.
    """
    flux = 10.0 ** np.asarray(obs["flux"].values, dtype=float)
    x = np.asarray(obs["x"].values, dtype=float)
    y = np.asarray(obs["y"].values, dtype=float)
    r = np.hypot(x[None, :], y[:, None])
    step = float(abs(x[1] - x[0]))
    centre = float(np.median(flux[r <= 0.5]))
    for k in range(2, int(r.max() / step)):
        ring = (r >= k * step) & (r < (k + 1) * step)
        if ring.any() and np.median(flux[ring]) < 0.5 * centre:
            return (k + 0.5) * step
    return math.nan


def field_records(runs: Mapping, *, times_gyr=(11.5, 12.0, 12.5, 13.0),
                  distances_kpc=(10.0, 20.0, 30.0, 40.0), psf_fwhm_arcsec=1.0) -> list[dict]:
    """Field luminosity, mass and radii of mock observations of runs (the paper's Fig. 10 data).

    Each (run, time) snapshot is observed, centred and unrotated, at every distance.

    Parameters
    ----------
    runs : mapping
        Run name -> source with ``snapshot(time_gyr)``.
    times_gyr : sequence of float, keyword-only
        Ages, Gyr.
    distances_kpc : sequence of float, keyword-only
        Distances, kpc.
    psf_fwhm_arcsec : float, keyword-only
        Seeing, arcsec.

    Returns
    -------
    list of dict
        One per (run, time, distance): ``run``, ``time_gyr``, ``distance_kpc``, the cluster's
        ``mass_msun`` (Msun) and 3D half-mass radius ``rh_model_pc`` (pc) from cbhbd (the
        snapshot's own when it has no such ``meta``),
        ``field_luminosity_v_lsun`` (Lsun), ``field_mass_msun`` (Msun), the projected
        half-light radius ``r_h_pc``/``r_h_arcmin`` (:func:`projected_radii`) and the core radius
        of the map ``r_c_arcmin``/``r_c_pc`` (:func:`map_core_radius_arcsec`, at that distance
        and seeing).
    """
    from ..imager import ObservationSetup, observe

    rows = []
    for name, src in runs.items():
        for t in times_gyr:
            snap = src.snapshot(float(t))
            r_h = projected_radii(snap)["r_h_pc"]
            for d in distances_kpc:
                obs = observe(snap, ObservationSetup(distance_kpc=float(d),
                                                     psf_fwhm_arcsec=psf_fwhm_arcsec))
                arcmin = 1.0 / (float(d) * 1e3 * math.pi / (180 * 60))  # arcmin per pc
                r_c = map_core_radius_arcsec(obs) / 60.0
                lum = float(obs.attrs["field_luminosity_v_lsun"])
                rows.append(dict(run=str(name), time_gyr=float(t), distance_kpc=float(d),
                                 mass_msun=float(snap.meta.get("mass_cbhbd", snap.mass.sum())),
                                 rh_model_pc=float(snap.meta.get("rh_cbhbd", math.nan)),
                                 field_luminosity_v_lsun=lum,
                                 field_mass_msun=float(obs.attrs["field_mass_msun"]),
                                 r_h_pc=r_h, r_h_arcmin=r_h * arcmin, r_c_arcmin=r_c,
                                 r_c_pc=r_c / arcmin))
    return rows
