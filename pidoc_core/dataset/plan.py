"""Sample plans: which (run, time, distance, PSF) each sample of a dataset observes, with its
shift, rotation and line of sight; fully determined by the seed (:func:`plan_samples`)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..readers.directory import SnapshotDirectory
from ._common import (_COORDS, _SPLIT_CODES, _STREAM_PLAN, _STREAM_SAMPLE, _STRING_COORDS,
                      _TIME_DECIMALS, DatasetError, _check_n, _check_seed, _positive_values)

__all__ = ["SamplePlan", "plan_samples", "every_nth_snapshot"]


@dataclass(frozen=True, eq=False)
class SamplePlan:
    """The conditions of every sample of a dataset, in store order; fully determined by the seed.

    Made by :func:`plan_samples` or :func:`paper_splits`; written by :func:`write_dataset`.

    Attributes
    ----------
    run : numpy.ndarray of str
    time, distance, psf_fwhm, shift_x, shift_y, rotation : numpy.ndarray of float
        Gyr, kpc, arcsec, arcsec, arcsec, degrees.
    line_of_sight : numpy.ndarray of str
    seed : int
    split : str
        ``'train'``, ``'val'``, ``'test'`` or ``'custom'``.
    grid : dict
        The parameters the plan was drawn from (JSON-serialisable), stored as provenance.
    """

    run: np.ndarray
    time: np.ndarray
    distance: np.ndarray
    psf_fwhm: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    rotation: np.ndarray
    line_of_sight: np.ndarray
    seed: int
    split: str = "custom"
    grid: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time.size)

    def __repr__(self) -> str:
        return (f"SamplePlan(split={self.split!r}, n={len(self)}, runs={sorted(set(self.run))}, "
                f"combinations={self.n_combinations}, seed={self.seed})")

    @property
    def n_combinations(self) -> int:
        """Number of distinct (run, time, distance, psf) combinations used."""
        return len(self.combinations())

    def combinations(self) -> set[tuple]:
        """The distinct (run, time, distance, psf_fwhm) tuples of the plan."""
        return set(zip(self.run.tolist(), self.time.tolist(), self.distance.tolist(),
                       self.psf_fwhm.tolist()))

    def snapshots(self) -> set[tuple]:
        """The distinct (run, time) snapshots the plan observes."""
        return set(zip(self.run.tolist(), self.time.tolist()))

    @property
    def repeat_factor(self) -> float:
        """Samples per distinct (run, time, distance, psf) combination (1: no repeats)."""
        return len(self) / max(self.n_combinations, 1)

    def columns(self) -> dict[str, np.ndarray]:
        """Per-sample coordinates, name -> array."""
        return {name: getattr(self, name) for name in _COORDS}

    def to_dataframe(self):
        """The plan as a pandas DataFrame indexed by sample."""
        import pandas as pd

        return pd.DataFrame(self.columns()).rename_axis("sample")

    def sha256(self) -> str:
        """Digest of the plan (coordinates, seed, split, grid): the identity of a store."""
        h = hashlib.sha256()
        for name in _COORDS:
            arr = getattr(self, name)
            if name in _STRING_COORDS:
                h.update("\x1f".join(arr.tolist()).encode())
            else:
                h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        h.update(json.dumps({"seed": self.seed, "split": self.split, "grid": self.grid},
                            sort_keys=True).encode())
        return h.hexdigest()


def _times_by_run(sources, times) -> dict[str, tuple[float, ...]]:
    """Resolve ``times`` (None, a sequence, or a mapping run -> sequence) against the sources,
    which may be a mapping name -> source or name -> sequence of times."""
    if not isinstance(sources, Mapping) or len(sources) == 0:
        raise DatasetError(f"sources must be a non-empty mapping run name -> source, got "
                           f"{type(sources).__name__} {sources!r:.80}")
    if isinstance(times, Mapping):
        unknown = sorted(set(times) - set(sources))
        if unknown:
            raise DatasetError(f"times names unknown run(s) {unknown}; the sources are "
                               f"{list(sources)}")
    out = {}
    for name, src in sources.items():
        if not isinstance(name, str) or not name:
            raise DatasetError(f"run names must be non-empty strings, got {name!r}")
        available = src if isinstance(src, (Sequence, np.ndarray)) else getattr(src, "times", None)
        if isinstance(times, Mapping):
            if name not in times:
                continue
            wanted = times[name]
        else:
            wanted = times
        if wanted is None:
            if available is None:
                raise DatasetError(f"source {name!r} ({type(src).__name__}) has no .times; pass "
                                   "times= explicitly")
            wanted = available
        ts = _positive_values(f"times of run {name!r}", np.round(np.asarray(wanted, float),
                                                                 _TIME_DECIMALS), allow_zero=True)
        if available is not None:
            av = np.round(np.asarray(available, dtype=float), _TIME_DECIMALS)
            if av.size:
                lo, hi = float(av.min()), float(av.max())
                outside = [t for t in ts if t < lo - 1e-9 or t > hi + 1e-9]
                if outside:
                    shown = ", ".join(f"{t:g}" for t in outside[:5])
                    more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
                    raise DatasetError(f"times [{shown}]{more} of run {name!r} are outside its "
                                       f"snapshots' range {lo:g}..{hi:g} Gyr")
            if isinstance(src, SnapshotDirectory):
                missing = sorted(set(ts) - set(av.tolist()))
                if missing:
                    raise DatasetError(f"run {name!r} ({src.path}) has no snapshot at "
                                       f"{missing[:5]} Gyr")
        out[name] = tuple(sorted(ts))
    if not out:
        raise DatasetError("no run left to sample: the grid is empty")
    return out


def _balanced_draw(n_combos: int, n: int | None, rng, *, allow_repeats: bool, what: str):
    """Indices into a list of ``n_combos`` combinations: all of them once when ``n`` is None,
    else ``n`` drawn without replacement, reusing every combination ``n // n_combos`` times
    (and a random ``n % n_combos`` once more) when ``n > n_combos``."""
    if n is None:
        return np.arange(n_combos)
    reps, rest = divmod(n, n_combos)
    if reps and not allow_repeats:
        raise DatasetError(f"{what}: {n} samples asked but the grid has only {n_combos} "
                           "(run, time, distance, psf) combinations; pass allow_repeats=True, a "
                           "finer times= grid or fewer samples")
    extra = np.sort(rng.choice(n_combos, size=rest, replace=False))
    return np.concatenate([np.tile(np.arange(n_combos), reps), extra]).astype(np.int64)


def _grid_combos(times_by_run, distances, psfs) -> list[tuple]:
    return [(run, t, d, p) for run, ts in times_by_run.items() for t in ts for d in distances
            for p in psfs]


_ORDERS = ("random", "snapshot")


def _plan_from(chosen: list[tuple], *, seed, split, grid, shift_max, rotations, lines_of_sight,
               order_rng, order="random") -> SamplePlan:
    """A SamplePlan of ``chosen`` combinations in seeded random store order, or grouped by
    snapshot (run, time) with a random order inside each group when ``order='snapshot'``."""
    perm = order_rng.permutation(len(chosen))
    if order == "snapshot":
        perm = np.array(sorted(perm, key=lambda i: (chosen[i][0], chosen[i][1])), dtype=np.int64)
    ordered = [chosen[i] for i in perm]
    n = len(ordered)
    sx, sy, rot = np.empty(n), np.empty(n), np.empty(n)
    los = np.empty(n, dtype=object)
    code = _SPLIT_CODES[split]
    for i in range(n):
        rng = np.random.default_rng([seed, _STREAM_SAMPLE, code, i])
        if shift_max > 0:
            sx[i], sy[i] = rng.uniform(-shift_max, shift_max, size=2)
        else:
            sx[i] = sy[i] = 0.0
        rot[i] = rotations[int(rng.integers(len(rotations)))]
        los[i] = lines_of_sight[int(rng.integers(len(lines_of_sight)))]
    return SamplePlan(
        run=np.array([c[0] for c in ordered], dtype=str),
        time=np.array([c[1] for c in ordered], dtype=float),
        distance=np.array([c[2] for c in ordered], dtype=float),
        psf_fwhm=np.array([c[3] for c in ordered], dtype=float),
        shift_x=sx, shift_y=sy, rotation=rot, line_of_sight=los.astype(str),
        seed=seed, split=split, grid=grid)


def _check_geometry(shift_max_arcsec, rotations_deg, lines_of_sight):
    try:
        shift_max = float(shift_max_arcsec)
    except (TypeError, ValueError):
        raise DatasetError(f"shift_max_arcsec must be a number, got {shift_max_arcsec!r}") from None
    if not math.isfinite(shift_max) or shift_max < 0:
        raise DatasetError(f"shift_max_arcsec must be finite and >= 0, got {shift_max_arcsec!r}")
    try:
        rotations = tuple(float(r) for r in np.atleast_1d(rotations_deg))
    except (TypeError, ValueError):
        raise DatasetError(f"rotations_deg must be numbers, got {rotations_deg!r}") from None
    if not rotations or not all(math.isfinite(r) for r in rotations):
        raise DatasetError(f"rotations_deg must be a non-empty list of finite angles, got "
                           f"{rotations_deg!r}")
    los = tuple(np.atleast_1d(lines_of_sight).tolist())
    if not los or any(v not in ("x", "y", "z") for v in los):
        raise DatasetError(f"lines_of_sight must be a non-empty subset of ('x', 'y', 'z'), got "
                           f"{lines_of_sight!r}")
    return shift_max, rotations, los


def plan_samples(sources, *, distances_kpc, psf_fwhms_arcsec, n_samples=None, times=None,
                 shift_max_arcsec=5.0, rotations_deg=(0, 90, 180, 270), lines_of_sight=("z",),
                 seed, allow_repeats=True, split="custom") -> SamplePlan:
    """Draw the samples of a dataset over the grid run x time x distance x PSF.

    Parameters
    ----------
    sources : mapping
        Run name -> source (an object with ``.snapshot(time_gyr)`` and ``.times``) or run name
        -> sequence of times (Gyr); only the names and times are used here.
    distances_kpc : sequence of float
        Distances, kpc (> 0).
    psf_fwhms_arcsec : sequence of float
        PSF FWHMs (seeing), arcsec (> 0).
    n_samples : int, optional
        None: every combination once. Otherwise ``n_samples`` combinations drawn at random
        without replacement (seeded); beyond the grid size combinations are reused, each reuse
        with its own shift, rotation and line of sight (see the module notes).
    times : sequence or mapping, optional
        Times, Gyr, for all runs or per run name; default each source's ``.times``.
    shift_max_arcsec : float
        Shifts of the cluster centre are uniform in [-shift_max, shift_max] on each axis, arcsec.
    rotations_deg : sequence of float
        Rotations drawn uniformly from these, degrees.
    lines_of_sight : sequence of {'x', 'y', 'z'}
        Lines of sight drawn uniformly from these.
    seed : int
        Seed of every random choice; sample i's shift, rotation and line of sight come from a
        generator seeded with (seed, split, i).
    allow_repeats : bool
        Allow ``n_samples`` above the number of combinations (else :class:`DatasetError`).
    split : {'custom', 'train', 'val', 'test'}
        Label stored with the plan; it also enters the per-sample seeds.

    Returns
    -------
    SamplePlan

    Raises
    ------
    DatasetError
        Empty grid, non-positive or non-finite distances/PSFs, unknown runs in ``times``, times
        outside a source's range, bad ``n_samples`` or seed.

    Examples
    --------
    >>> plan = plan_samples({"a": [1.0, 2.0]}, distances_kpc=[10, 50], psf_fwhms_arcsec=[1.0],
    ...                     n_samples=3, seed=0)
    >>> len(plan), plan.n_combinations, sorted(set(plan.distance.tolist())) <= [10.0, 50.0]
    (3, 3, True)
    """
    seed = _check_seed(seed)
    if split not in _SPLIT_CODES:
        raise DatasetError(f"split must be one of {list(_SPLIT_CODES)}, got {split!r}")
    n_samples = _check_n("n_samples", n_samples)
    distances = _positive_values("distances_kpc", distances_kpc)
    psfs = _positive_values("psf_fwhms_arcsec", psf_fwhms_arcsec)
    shift_max, rotations, los = _check_geometry(shift_max_arcsec, rotations_deg, lines_of_sight)
    tbr = _times_by_run(sources, times)
    combos = _grid_combos(tbr, distances, psfs)
    rng = np.random.default_rng([seed, _STREAM_PLAN, _SPLIT_CODES[split]])
    idx = _balanced_draw(len(combos), n_samples, rng, allow_repeats=allow_repeats,
                         what="plan_samples")
    grid = dict(runs=list(tbr), times_gyr={k: list(v) for k, v in tbr.items()},
                distances_kpc=list(distances), psf_fwhms_arcsec=list(psfs),
                n_combinations=len(combos), n_samples=len(idx), shift_max_arcsec=shift_max,
                rotations_deg=list(rotations), lines_of_sight=list(los))
    return _plan_from([combos[i] for i in idx], seed=seed, split=split, grid=grid,
                      shift_max=shift_max, rotations=rotations, lines_of_sight=los, order_rng=rng)


def every_nth_snapshot(plan: SamplePlan, n: int) -> SamplePlan:
    """The samples of ``plan`` at every ``n``-th of each run's snapshot times (in time order).

    A cheaper subset of a split, e.g. to fine-tune on a training split whose full build would
    take too long: building costs about one snapshot per distinct (run, time), so keeping one
    time in ``n`` costs ~1/n of the build. The samples keep their conditions and store order,
    so the subset holds no time the full split's validation holds out either.

    Parameters
    ----------
    plan : SamplePlan
        A plan (e.g. the ``train`` plan of :func:`pidoc_core.dataset.preset_splits`).
    n : int
        Keep one snapshot time in ``n`` (``n = 1``: the whole plan).

    Returns
    -------
    SamplePlan
        The same split label and seed; ``grid`` adds ``every_nth_snapshot``.

    Examples
    --------
    >>> plan = plan_samples({"a": [1.0, 2.0, 3.0, 4.0]}, distances_kpc=[10], psf_fwhms_arcsec=[1],
    ...                     seed=0)
    >>> sorted(every_nth_snapshot(plan, 2).time.tolist())
    [1.0, 3.0]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DatasetError(f"every_nth_snapshot: n must be an integer >= 1, got {n!r}")
    keep = np.zeros(len(plan), dtype=bool)
    for run in np.unique(plan.run):
        in_run = plan.run == run
        times = np.unique(plan.time[in_run])[::int(n)]
        keep |= in_run & np.isin(plan.time, times)
    arrays = {name: getattr(plan, name)[keep] for name in _COORDS}
    grid = dict(plan.grid, every_nth_snapshot=int(n))
    return SamplePlan(**arrays, seed=plan.seed, split=plan.split, grid=grid)
