"""Datasets of mock observations: xarray/zarr stores indexed by run, time, distance and seeing.

A dataset is a set of *samples*; each sample is one mock observation
(:func:`pidoc_core.imager.observe`) of one snapshot of one run, at one distance and seeing, with
its own random centre shift, rotation and line of sight. The paper (Chardin & Bianchini 2021,
Sect. 2.2-2.3, Table 1) trains on such samples; :func:`paper_splits` gives its train /
validation / test protocol.

The flow::

    plan = plan_samples(sources, distances_kpc=..., psf_fwhms_arcsec=..., n_samples=..., seed=...)
    ds = write_dataset(plan, sources, "train.zarr")           # dask-parallel, resumable
    # or in one call: build_dataset(sources, distances_kpc=..., ..., seed=..., store=...)
    ds = open_dataset("train.zarr")                            # lazy; refuses an incomplete store
    consts = standardisation(ds)                               # from the training split only
    stream = batch_stream(ds, standardisation=consts, target="mass")   # keras.utils.PyDataset

Store layout (zarr format 3, one store per split, e.g. ``train.zarr``)
----------------------------------------------------------------------
``flux``, ``mass``
    float32 ``(sample, y, x)``: log10 V-band flux per pixel, log10(Lsun kpc-2), and log10 mass per
    pixel, log10(Msun), exactly as :func:`~pidoc_core.imager.observe` makes them. Chunks of
    ``chunk_size`` samples (default 32) x the whole map.
``field_mass``, ``field_luminosity_v``, ``field_flux``
    float64 ``(sample,)``: linear totals in the field of view, Msun, Lsun and Lsun kpc-2 (the
    field mass-to-light ratio is ``field_mass / field_luminosity_v``). Same sample chunks.
coordinates ``sample`` (0..n-1) and, per sample, ``run`` (str), ``time`` (Gyr, the age),
    ``distance`` (kpc), ``psf_fwhm`` (arcsec), ``shift_x``, ``shift_y`` (arcsec), ``rotation``
    (degrees), ``line_of_sight`` (str); ``y``, ``x`` (arcsec from the field centre).
    They are the sample *plan*, fully determined by the seed and written with the template.
``done``
    uint8 ``(chunk,)``, one zarr chunk per element: 1 once the data of that sample chunk are
    written. :func:`open_dataset` drops it after checking completeness.
attributes
    CF-style ``units``/``long_name`` on every variable; provenance on the store: ``code_version``,
    ``seed``, ``split``, the grid (``distances_kpc``, ``psf_fwhms_arcsec``, ``times_gyr_json``,
    ``rotations_deg``, ``shift_max_arcsec``, ``lines_of_sight``), ``source_parameters_json``
    (repr and type of each source), ``imager_setup_json``, ``plan_sha256``, ``sampling``.

Selecting samples
-----------------
``sample`` is the only dimension; conditions are per-sample coordinates, loaded in memory by
:func:`open_dataset`. A pandas MultiIndex is not zarr-serialisable, so none is stored. Select with
``select(ds, run="MW15-R4 analogue", distance=50)`` (values or lists of values), with
``ds.where(ds.distance == 50, drop=True)``, with ``ds.isel(sample=(ds.psf_fwhm == 1.5).values)``,
or index one coordinate on the fly: ``ds.set_xindex("distance").sel(distance=50)``. For several
at once, ``ds.set_xindex(["run", "distance"], xr.indexes.PandasMultiIndex)`` works in memory.

Parallel, safe and resumable writes
-----------------------------------
The template (all metadata, coordinates = the plan, ``done`` = 0) is written first with
``to_zarr(compute=False)`` into a temporary directory that is renamed into place, so a store either
does not exist or has a complete template. Each dask task then computes one sample chunk, writes it
with a chunk-aligned ``to_zarr(region={"sample": slice})`` (no two tasks touch the same zarr chunk,
and zarr's local store writes each chunk file atomically), and only then sets its ``done`` element.
A build that is interrupted (killed, crashed, cluster lost) is resumed by calling the same build
again: it checks that the stored ``plan_sha256`` matches, removes stray ``*.partial`` files and
computes only chunks whose ``done`` is 0. Per-sample randomness derives from ``(seed, split,
sample index)`` and the maps from deterministic code, so the result does not depend on the
scheduler, the number of workers or interruptions: the same seed gives the same store byte for byte.

Schedulers: ``"threads"`` (default; one shared snapshot cache, but the imager holds the GIL most
of the time), ``"processes"`` (a local ``dask.distributed`` cluster of ``workers`` single-threaded
processes; sources are scattered once to each), ``"synchronous"``, a ``dask.distributed``
scheduler address such as ``"tcp://10.0.0.5:8786"``, or a ``distributed.Client``. Workers of a
remote cluster need ``pidoc_core``, the sources' data (e.g. the evolution cache) and the store path
on a shared file system.

Snapshot times and repeated conditions
--------------------------------------
An embedded run makes a snapshot at any time (:meth:`~pidoc_core.evolution.ClusterEvolution.
dense_times`); the ``paper`` preset (:func:`preset_splits`) uses 1,401 times per training run and
2,043 for the test run, so its 30,172 maps repeat no (run, time, distance, PSF) combination, and
validation holds out whole times of the training runs (no snapshot in both). When more samples
are asked than there are combinations (a coarse ``times=`` grid), every combination is used
``n // N`` times and a seeded random subset of ``n % N`` once more; repeats differ by their
random shift, rotation (and line of sight, if several are allowed).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from . import paper
from .conventions import LOG10_4PI, log_luminosity_per_pixel
from .errors import PidocError
from .imager import ObservationSetup, observe
from .snapshot import Snapshot

__all__ = [
    "DatasetError",
    "SamplePlan",
    "SnapshotDirectory",
    "PAPER_TRAIN_RUNS",
    "PAPER_TEST_RUN",
    "PAPER_TRAIN_DISTANCES_KPC",
    "PAPER_TRAIN_PSFS_ARCSEC",
    "PAPER_TEST_DISTANCES_KPC",
    "PAPER_TEST_PSFS_ARCSEC",
    "plan_samples",
    "paper_splits",
    "preset_splits",
    "fresh_cluster",
    "FRESH_CLUSTER",
    "DATASET_PRESETS",
    "write_dataset",
    "build_dataset",
    "build_splits",
    "open_dataset",
    "completion",
    "select",
    "standardisation",
    "load_arrays",
    "training_mass_to_light",
    "batch_stream",
    "BatchStream",
    "dataset_info",
]

# The paper's Table 1 grid; its one home is pidoc_core.paper (names kept here for old imports).
#: Runs of the training and validation sets (Table 1: MW15-R1.6 and MW15-R4).
PAPER_TRAIN_RUNS = paper.TRAIN_RUNS
#: Run of the test set (Table 1: MW15, rh0 = 3.2 pc).
PAPER_TEST_RUN = paper.TEST_RUN
#: Distances of the training and validation sets, kpc.
PAPER_TRAIN_DISTANCES_KPC = paper.TRAIN_DISTANCES_KPC
#: Seeing (PSF FWHM) of the training and validation sets, arcsec.
PAPER_TRAIN_PSFS_ARCSEC = paper.TRAIN_PSFS_ARCSEC
#: Distances of the test set, kpc.
PAPER_TEST_DISTANCES_KPC = paper.TEST_DISTANCES_KPC
#: Seeing of the test set, arcsec.
PAPER_TEST_PSFS_ARCSEC = paper.TEST_PSFS_ARCSEC

_FORMAT = "pidoc-dataset"
_FORMAT_VERSION = 1
_SPLIT_CODES = {"custom": 0, "train": 1, "val": 2, "test": 3}
_STREAM_PLAN, _STREAM_SAMPLE, _STREAM_SPLIT = 101, 102, 103
_TIME_DECIMALS = 6
_COORDS = ("run", "time", "distance", "psf_fwhm", "shift_x", "shift_y", "rotation",
           "line_of_sight")
_STRING_COORDS = ("run", "line_of_sight")
_DATA_VARS = ("flux", "mass", "field_mass", "field_luminosity_v", "field_flux")
_SETUP_FIXED = ("distance_kpc", "psf_fwhm_arcsec", "shift_arcsec", "rotation_deg", "line_of_sight")

_COORD_ATTRS = {
    "sample": {"long_name": "sample index"},
    "run": {"long_name": "simulation run (snapshot source) name"},
    "time": {"units": "Gyr", "long_name": "age of the cluster (time since formation)"},
    "distance": {"units": "kpc", "long_name": "heliocentric distance"},
    "psf_fwhm": {"units": "arcsec", "long_name": "FWHM of the Moffat PSF (seeing)"},
    "shift_x": {"units": "arcsec", "long_name": "shift of the cluster centre from the field "
                                                "centre, x"},
    "shift_y": {"units": "arcsec", "long_name": "shift of the cluster centre from the field "
                                                "centre, y"},
    "rotation": {"units": "degree", "long_name": "rotation of the image about the cluster "
                                                 "centre (numpy.rot90 sense)"},
    "line_of_sight": {"long_name": "snapshot axis along the line of sight"},
    "y": {"units": "arcsec", "long_name": "offset from field centre, y"},
    "x": {"units": "arcsec", "long_name": "offset from field centre, x"},
}
_VAR_ATTRS = {
    "flux": {"units": "log10(Lsun kpc-2)",
             "long_name": "log10 V-band flux per pixel (Moffat PSF, Gaussian smoothing)"},
    "mass": {"units": "log10(Msun)", "long_name": "log10 stellar mass per pixel (Gaussian "
                                                  "smoothing)"},
    "field_mass": {"units": "Msun", "long_name": "total stellar mass in the field of view"},
    "field_luminosity_v": {"units": "Lsun", "long_name": "total V-band luminosity in the field "
                                                         "of view"},
    "field_flux": {"units": "Lsun kpc-2", "long_name": "total V-band flux in the field of view"},
    "done": {"long_name": "1 once the sample chunk is written (build completion marker)"},
}


class DatasetError(PidocError):
    """Bad arguments to a dataset function, or a store that is not (or not yet) a usable dataset.

    The message names the argument or store at fault and says what is expected.
    """


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------


class SnapshotDirectory:
    """A snapshot source over a directory of snapshot files, for :func:`build_dataset`.

    Every file matching ``pattern`` is read once, with :func:`pidoc_core.readers.read_snapshot`,
    to learn its time; :meth:`snapshot` reads the file of a time again when it is needed (the
    dataset builder caches snapshots in memory). The object holds only paths and times, so it is
    cheap to send to dask workers (which must see the same directory).

    Parameters
    ----------
    path : str or os.PathLike
        The directory.
    pattern : str, keyword-only
        Glob pattern of the snapshot files (hidden files are skipped).
    format : str, keyword-only
        Format for :func:`~pidoc_core.readers.read_snapshot` (guessed per file when None).
    name : str, keyword-only
        Run name given to the snapshots (default: the directory name).
    **read_options
        Further keywords for :func:`~pidoc_core.readers.read_snapshot` (``columns``, ``units``...).

    Raises
    ------
    DatasetError
        If the directory does not exist, no file matches, or two files have the same time.
    pidoc_core.readers.ReaderError
        If a file cannot be read (the message names it).

    Examples
    --------
    >>> runs = {"my run": SnapshotDirectory("snapshots/", pattern="*.ecsv")}  # doctest: +SKIP
    >>> runs["my run"].times                                                  # doctest: +SKIP
    array([ 0.1,  0.2, ...])
    """

    def __init__(self, path, *, pattern: str = "*", format: str | None = None,
                 name: str | None = None, **read_options):
        from .readers import read_snapshot

        self.path = Path(path)
        if not self.path.is_dir():
            raise DatasetError(f"SnapshotDirectory: {str(self.path)!r} is not a directory")
        self.pattern = pattern
        self.format = format
        self.name = str(name) if name is not None else self.path.resolve().name
        self.read_options = dict(read_options)
        files = sorted(p for p in self.path.glob(pattern)
                       if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DatasetError(f"SnapshotDirectory: no file in {str(self.path)!r} matches "
                               f"pattern {pattern!r}")
        by_time: dict[float, Path] = {}
        for f in files:
            t = round(float(read_snapshot(f, format=format, **self.read_options).time),
                      _TIME_DECIMALS)
            if t in by_time:
                raise DatasetError(f"SnapshotDirectory: {by_time[t]} and {f} both hold time "
                                   f"{t:g} Gyr; one time per file is expected")
            by_time[t] = f
        self._files = dict(sorted(by_time.items()))

    def __repr__(self) -> str:
        return (f"SnapshotDirectory({str(self.path)!r}, pattern={self.pattern!r}, "
                f"format={self.format!r}, name={self.name!r}, n_files={len(self._files)})")

    @property
    def times(self) -> np.ndarray:
        """Times of the snapshots, Gyr, ascending."""
        return np.array(list(self._files), dtype=float)

    @property
    def files(self) -> dict[float, Path]:
        """Mapping time (Gyr) -> file."""
        return dict(self._files)

    def snapshot(self, time_gyr) -> Snapshot:
        """The snapshot at ``time_gyr`` (one of :attr:`times`, to 1e-6 Gyr)."""
        from .readers import read_snapshot

        t = round(float(time_gyr), _TIME_DECIMALS)
        path = self._files.get(t)
        if path is None:
            near = self.times[np.argsort(np.abs(self.times - t))[:3]]
            raise DatasetError(f"SnapshotDirectory {str(self.path)!r} has no snapshot at "
                               f"{t:g} Gyr; nearest: {near.tolist()}")
        return read_snapshot(path, format=self.format, name=self.name, **self.read_options)


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------


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


def _positive_values(name, values, *, allow_zero=False) -> tuple[float, ...]:
    if values is None:
        raise DatasetError(f"{name} is required")
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise DatasetError(f"{name} must be numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise DatasetError(f"{name} is empty: the grid needs at least one value, got {values!r}")
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if bad.any():
        rule = ">= 0" if allow_zero else "> 0"
        raise DatasetError(f"{name} must all be finite and {rule}; got {arr[bad][0]!r} in "
                           f"{arr.tolist()}")
    if np.unique(arr).size != arr.size:
        raise DatasetError(f"{name} has repeated values: {arr.tolist()}")
    return tuple(float(v) for v in arr)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_n(name, n, *, allow_none=True):
    if n is None and allow_none:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise DatasetError(f"{name} must be a positive integer{' or None' if allow_none else ''}"
                           f", got {n!r}")
    return int(n)


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
    if sources is None:
        from .evolution import paper_runs

        sources = paper_runs(progress=False)
    if not isinstance(sources, Mapping):
        raise DatasetError(f"sources must be a mapping run name -> source, got {sources!r:.80}")
    train_runs = tuple(train_runs)
    wanted = [*train_runs, test_run]
    unknown = [r for r in wanted if r not in sources]
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
    shift_max, rotations, los = _check_geometry(shift_max_arcsec, rotations_deg, lines_of_sight)
    if isinstance(times, Mapping):
        bad = sorted(set(times) - set(wanted))
        if bad:
            raise DatasetError(f"times names unknown run(s) {bad}; the splits use {wanted}")
    tbr = _times_by_run({r: sources[r] for r in wanted}, times)
    geometry = dict(shift_max_arcsec=shift_max, rotations_deg=list(rotations),
                    lines_of_sight=list(los))

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
                                  shift_max=shift_max, rotations=rotations, lines_of_sight=los,
                                  order_rng=rng, order=order)
    combos = _grid_combos({test_run: tbr[test_run]}, PAPER_TEST_DISTANCES_KPC,
                          PAPER_TEST_PSFS_ARCSEC)
    rng = np.random.default_rng([seed, _STREAM_PLAN, _SPLIT_CODES["test"]])
    idx = _balanced_draw(len(combos), n_test, rng, allow_repeats=True, what="test")
    grid = dict(protocol="Chardin & Bianchini (2021) Table 1", runs=[test_run],
                times_gyr={test_run: list(tbr[test_run])},
                distances_kpc=list(PAPER_TEST_DISTANCES_KPC),
                psf_fwhms_arcsec=list(PAPER_TEST_PSFS_ARCSEC), n_samples=len(idx), **geometry)
    plans["test"] = _plan_from([combos[i] for i in idx], seed=seed, split="test", grid=grid,
                               shift_max=shift_max, rotations=rotations, lines_of_sight=los,
                               order_rng=rng, order=order)
    return plans


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
DATASET_PRESETS = {
    "paper": dict(n_train=20_000, n_val=2_000, n_test=8_172,
                  snapshots={"train": "dense", "test": 2043}, order="snapshot"),
    "small": dict(n_train=512, n_val=64, n_test=128,
                  times=[float(t) for t in range(1, 15)], order="random"),
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
    from .evolution import ClusterEvolution

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
    preset : {'paper', 'small'}
        Preset name.
    sources : mapping
        Run name -> source; the ``paper`` preset needs sources with ``dense_times(n)`` (the
        embedded :class:`~pidoc_core.evolution.ClusterEvolution` runs).
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
    sizes = {k: spec[k] if v is None else v
             for k, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))}
    return paper_splits(sources, **sizes, seed=seed, times=times, train_runs=train_runs,
                        test_run=test_run, order=spec["order"])


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


class _SnapshotCache:
    """Per-process LRU cache of snapshots, bounded in bytes, shared by the threads of a worker.

    Observing a snapshot needs its density centre and V-band luminosities (~0.1-0.3 s for 50k
    stars, plus the source's own loading); one map then costs ~5 ms, so reuse is what makes a
    build fast. Entries hold a reference to their source so the ``id`` in the key stays valid.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._pending: dict = {}  # key -> Lock: one thread loads a snapshot, others wait for it
        self._warm: dict = {}  # id(source) -> (source, Lock): first call per source serialised

    @staticmethod
    def _size(snap: Snapshot) -> int:
        return sum(a.nbytes for a in snap.columns().values()) + 56 * len(snap)

    def _lookup(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item[1]
        return None

    def get(self, source, run: str, time: float, limit_bytes: int) -> Snapshot:
        key = (id(source), run, time)
        snap = self._lookup(key)
        if snap is not None:
            return snap
        with self._lock:
            key_lock = self._pending.setdefault(key, threading.Lock())
            warm = self._warm.get(id(source))
            if warm is None or warm[0] is not source:
                warm = self._warm[id(source)] = (source, threading.Lock(), [False])
        with key_lock:
            snap = self._lookup(key)
            if snap is None:
                # a source's first snapshot may run a one-time set-up (an evolution run's takes
                # minutes): let one thread do it while the others wait
                if not warm[2][0]:
                    with warm[1]:
                        snap = source.snapshot(time)
                        warm[2][0] = True
                else:
                    snap = source.snapshot(time)
                if not isinstance(snap, Snapshot):
                    raise DatasetError(f"source {run!r} returned {type(snap).__name__} for time "
                                       f"{time:g} Gyr; a pidoc_core Snapshot is expected")
                size = self._size(snap)
                with self._lock:
                    self._items[key] = (source, snap, size)
                    self._bytes += size
                    while self._bytes > limit_bytes and len(self._items) > 1:
                        _, (_, _, s) = self._items.popitem(last=False)
                        self._bytes -= s
        with self._lock:
            self._pending.pop(key, None)
        return snap

    def clear(self):
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self._warm.clear()


_CACHE = _SnapshotCache()


def _clear_snapshot_cache() -> None:
    """Free this process's snapshot cache (run on every worker after a distributed build)."""
    _CACHE.clear()


def _setup_options(imager_options) -> dict:
    opts = dict(imager_options or {})
    fixed = sorted(set(opts) & set(_SETUP_FIXED))
    if fixed:
        raise DatasetError(f"imager_options cannot set {fixed}: they are per-sample conditions")
    try:
        probe = ObservationSetup(distance_kpc=10.0, psf_fwhm_arcsec=1.0, **opts)
    except TypeError as exc:
        raise DatasetError(f"imager_options: {exc}") from None
    except ValueError as exc:
        raise DatasetError(f"imager_options: {exc}") from None
    return {k: v for k, v in probe.to_attrs().items()
            if k not in ("distance_kpc", "psf_fwhm_arcsec", "shift_x_arcsec", "shift_y_arcsec",
                         "rotation_deg", "line_of_sight")}


def _observe_chunk(spec: dict, sources: Mapping) -> dict:
    """The maps and totals of one sample chunk (numpy arrays)."""
    n = spec["stop"] - spec["start"]
    opts = spec["imager"]
    npix = int(round(opts["fov_arcsec"] / opts["pixel_arcsec"]))
    flux = np.empty((n, npix, npix), np.float32)
    mass = np.empty((n, npix, npix), np.float32)
    totals = {k: np.empty(n) for k in ("field_mass", "field_luminosity_v", "field_flux")}
    limit = int(spec["cache_mb"] * 2**20)
    for j in range(n):
        run = spec["run"][j]
        snap = _CACHE.get(sources[run], run, float(spec["time"][j]), limit)
        setup = ObservationSetup(distance_kpc=spec["distance"][j],
                                 psf_fwhm_arcsec=spec["psf_fwhm"][j],
                                 shift_arcsec=(spec["shift_x"][j], spec["shift_y"][j]),
                                 rotation_deg=spec["rotation"][j],
                                 line_of_sight=spec["line_of_sight"][j], **opts)
        obs = observe(snap, setup)
        flux[j] = obs["flux"].values
        mass[j] = obs["mass"].values
        totals["field_mass"][j] = obs.attrs["field_mass_msun"]
        totals["field_luminosity_v"][j] = obs.attrs["field_luminosity_v_lsun"]
        totals["field_flux"][j] = obs.attrs["field_flux_lsun_kpc2"]
    return dict(flux=flux, mass=mass, **totals)


def _write_chunk(spec: dict, sources: Mapping) -> int:
    """Compute one sample chunk, write it into its region, then mark it done. Run by dask."""
    out = _observe_chunk(spec, sources)
    part = xr.Dataset({
        "flux": (("sample", "y", "x"), out["flux"]),
        "mass": (("sample", "y", "x"), out["mass"]),
        "field_mass": (("sample",), out["field_mass"]),
        "field_luminosity_v": (("sample",), out["field_luminosity_v"]),
        "field_flux": (("sample",), out["field_flux"]),
    })
    part.to_zarr(spec["store"], region={"sample": slice(spec["start"], spec["stop"])},
                 mode="r+", consolidated=False)
    _mark_done(spec["store"], spec["chunk"])
    return spec["chunk"]


def _mark_done(store, chunk: int) -> None:
    import zarr

    arr = zarr.open_array(store=str(store), path="done", mode="r+")
    arr[chunk] = 1


def _read_done(store) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(store=str(store), path="done", mode="r")[:]).astype(bool)


def _template(plan: SamplePlan, *, chunk_size, imager, provenance) -> xr.Dataset:
    import dask.array as da

    n = len(plan)
    npix = int(round(imager["fov_arcsec"] / imager["pixel_arcsec"]))
    n_chunks = -(-n // chunk_size)
    centres = (np.arange(npix) + 0.5) * imager["pixel_arcsec"] - imager["fov_arcsec"] / 2.0
    maps = dict(shape=(n, npix, npix), chunks=(chunk_size, npix, npix), dtype=np.float32)
    vec = dict(shape=(n,), chunks=(chunk_size,), dtype=np.float64)
    data_vars = {
        "flux": (("sample", "y", "x"), da.zeros(**maps), _VAR_ATTRS["flux"]),
        "mass": (("sample", "y", "x"), da.zeros(**maps), _VAR_ATTRS["mass"]),
        "field_mass": (("sample",), da.zeros(**vec), _VAR_ATTRS["field_mass"]),
        "field_luminosity_v": (("sample",), da.zeros(**vec), _VAR_ATTRS["field_luminosity_v"]),
        "field_flux": (("sample",), da.zeros(**vec), _VAR_ATTRS["field_flux"]),
        "done": (("chunk",), da.zeros((n_chunks,), chunks=(1,), dtype=np.uint8),
                 _VAR_ATTRS["done"]),
    }
    coords = {"sample": ("sample", np.arange(n, dtype=np.int64), _COORD_ATTRS["sample"])}
    for name in _COORDS:
        values = getattr(plan, name)
        if name in _STRING_COORDS:
            values = np.asarray(values.tolist(), dtype=object)  # variable-length UTF-8 in zarr 3
        coords[name] = ("sample", values, _COORD_ATTRS[name])
    coords["y"] = ("y", centres, _COORD_ATTRS["y"])
    coords["x"] = ("x", centres, _COORD_ATTRS["x"])
    return xr.Dataset(data_vars, coords=coords, attrs=provenance)


def _provenance(plan: SamplePlan, *, sources, imager, chunk_size) -> dict:
    from . import __version__

    src = {}
    for run in sorted(set(plan.run.tolist())):
        s = sources[run]
        info = {"type": f"{type(s).__module__}.{type(s).__qualname__}", "repr": repr(s)}
        for attr in ("rh0_pc", "n_stars", "galactocentric_kpc", "metallicity", "seed", "key",
                     "path", "pattern", "format"):
            v = getattr(s, attr, None)
            if isinstance(v, (int, float, str, Path)) and not isinstance(v, bool):
                info[attr] = str(v) if isinstance(v, Path) else v
        src[run] = info
    grid = plan.grid
    return {
        "title": f"pi-DOC mock V-band observations ({plan.split} split)",
        "Conventions": "CF-1.10",
        "source": "pidoc_core.dataset (mock observations with pidoc_core.imager.observe)",
        "references": "Chardin & Bianchini 2021, MNRAS 504, 5656 (Sect. 2.2-2.3, Table 1)",
        "comment": "M/L of the field = field_mass / field_luminosity_v. Select samples by the "
                   "per-sample coordinates, e.g. ds.where(ds.distance == 50, drop=True).",
        "pidoc_format": _FORMAT,
        "pidoc_format_version": _FORMAT_VERSION,
        "code_version": __version__,
        "split": plan.split,
        "seed": int(plan.seed),
        "n_samples": len(plan),
        "chunk_size": int(chunk_size),
        "n_chunks": -(-len(plan) // chunk_size),
        "runs": sorted(set(plan.run.tolist())),
        "distances_kpc": [float(v) for v in grid.get("distances_kpc", [])],
        "psf_fwhms_arcsec": [float(v) for v in grid.get("psf_fwhms_arcsec", [])],
        "shift_max_arcsec": float(grid.get("shift_max_arcsec", float("nan"))),
        "rotations_deg": [float(v) for v in grid.get("rotations_deg", [])],
        "lines_of_sight": list(grid.get("lines_of_sight", [])),
        "times_gyr_json": json.dumps(grid.get("times_gyr", {})),
        "grid_json": json.dumps(grid, sort_keys=True),
        "sampling": ("combinations (run, time, distance, psf) drawn at random without "
                     "replacement; when more samples than combinations are asked, each is reused "
                     "n // N times plus a random n % N once more, with its own shift/rotation"),
        "source_parameters_json": json.dumps(src, sort_keys=True),
        "imager_setup_json": json.dumps(imager, sort_keys=True),
        "plan_sha256": plan.sha256(),
    }


def _store_path(store) -> Path:
    if isinstance(store, (str, os.PathLike)):
        s = os.fspath(store)
        if "://" in s:
            raise DatasetError(f"store {s!r}: only local (or shared file system) paths are "
                               "supported")
        return Path(s).absolute()
    raise DatasetError(f"store must be a path to a directory, got {store!r}")


def _is_store(path: Path) -> bool:
    return (path / "zarr.json").is_file()


def _read_attrs(path: Path) -> dict:
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable zarr store ({exc})") from None
    attrs = meta.get("attributes", {})
    if attrs.get("pidoc_format") != _FORMAT:
        raise DatasetError(f"{path}: not a pi-DOC dataset store (no pidoc_format={_FORMAT!r} "
                           "attribute)")
    return attrs


def _mask_addresses(text: str) -> str:
    """Repr text without memory addresses (``<... at 0x7f...>``), to compare sources."""
    import re

    return re.sub(r"0x[0-9a-fA-F]+", "0x?", text)


def _comparable_sources(text: str):
    """Source parameters without the class path and memory addresses: a renamed class or a
    default repr must not stop a resume, different parameters must."""
    try:
        params = json.loads(text)
    except ValueError:
        return text
    return {run: {k: _mask_addresses(str(v)) for k, v in info.items() if k != "type"}
            for run, info in params.items()}


def _store_differences(path: Path, provenance: dict) -> list[str]:
    """What makes the store at ``path`` a different build from ``provenance`` (empty: same)."""
    if not _is_store(path):
        return ["it is not a zarr store"]
    try:
        attrs = _read_attrs(path)
    except DatasetError as exc:
        return [str(exc)]
    checks = (("plan_sha256", "another sample plan (seed, sizes, grid or geometry)"),
              ("chunk_size", "another chunk size"),
              ("imager_setup_json", "other imager options"),
              ("source_parameters_json", "other sources"))
    out = []
    for key, what in checks:
        old, new = attrs.get(key), provenance[key]
        if key == "source_parameters_json" and isinstance(old, str):
            old, new = _comparable_sources(old), _comparable_sources(new)
        if old != new:
            out.append(what)
    return out


def _clean_partials(path: Path) -> int:
    n = 0
    for p in path.rglob("*.partial"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def _create_template(path: Path, template: xr.Dataset) -> None:
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.partial-template"
    try:
        template.to_zarr(str(tmp), mode="w-", compute=False, consolidated=False, zarr_format=3)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _resolve_scheduler(scheduler, workers):
    """Returns (kind, client, owns_client)."""
    if scheduler is None or scheduler == "threads":
        return "threads", None, False
    if scheduler == "synchronous":
        return "synchronous", None, False
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover
        Client = None
    if Client is not None and isinstance(scheduler, Client):
        return "distributed", scheduler, False
    if scheduler == "processes":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        return "distributed", Client(cluster), True
    if isinstance(scheduler, str) and (":" in scheduler):
        from distributed import Client

        return "distributed", Client(scheduler), True
    raise DatasetError(f"scheduler must be 'threads', 'processes', 'synchronous', a "
                       f"dask.distributed address ('tcp://host:8786') or Client, got {scheduler!r}")


def _chunk_specs(plan: SamplePlan, path: Path, todo, *, chunk_size, imager, cache_mb):
    cols = plan.columns()
    for c in todo:
        start, stop = c * chunk_size, min((c + 1) * chunk_size, len(plan))
        spec = {k: v[start:stop].tolist() for k, v in cols.items()}
        spec.update(store=str(path), chunk=int(c), start=start, stop=stop, imager=imager,
                    cache_mb=cache_mb)
        yield spec


def write_dataset(plan: SamplePlan, sources: Mapping, store, *, chunk_size: int = 32,
                  scheduler=None, workers: int | None = None, imager_options=None,
                  snapshot_cache_mb: float = 2048, progress: bool = True,
                  overwrite: bool = False) -> xr.Dataset:
    """Make the mock observations of a plan and write them to a zarr store; resume if needed.

    Parameters
    ----------
    plan : SamplePlan
        From :func:`plan_samples` or :func:`paper_splits`.
    sources : mapping
        Run name -> object with ``.snapshot(time_gyr)`` returning a
        :class:`~pidoc_core.snapshot.Snapshot` (a
        :class:`~pidoc_core.evolution.ClusterEvolution`, a :class:`SnapshotDirectory`, ...).
    store : str or os.PathLike
        Directory of the zarr store (created; or resumed when it holds the same plan).
    chunk_size : int
        Samples per zarr chunk and per dask task (16-64 read fastest for training).
    scheduler : str or distributed.Client, optional
        ``'threads'`` (default), ``'processes'``, ``'synchronous'``, a scheduler address or a
        Client (see the module notes).
    workers : int, optional
        Threads or local processes (default: the number of cores).
    imager_options : dict, optional
        Extra :class:`~pidoc_core.imager.ObservationSetup` fields (``fov_arcsec``,
        ``pixel_arcsec``, ``moffat_beta``, ``smooth_sigma_px``); defaults are the paper's.
    snapshot_cache_mb : float
        Memory for cached snapshots per worker process, MiB (~3-7 MiB per 50k-star snapshot).
    progress : bool
        Show a tqdm bar (in maps).
    overwrite : bool
        Replace an existing store that holds a different plan (a store with the same plan is
        always resumed, never overwritten).

    Returns
    -------
    xarray.Dataset
        The finished store opened with :func:`open_dataset`.

    Raises
    ------
    DatasetError
        Unknown runs in the plan, a store that holds another plan (without ``overwrite``), bad
        options.
    """
    if not isinstance(plan, SamplePlan):
        raise DatasetError(f"plan must be a SamplePlan, got {type(plan).__name__}")
    if not isinstance(sources, Mapping):
        raise DatasetError(f"sources must be a mapping run name -> source, got {sources!r:.80}")
    missing = sorted(set(plan.run.tolist()) - set(sources))
    if missing:
        raise DatasetError(f"the plan uses run(s) {missing} that are not in sources "
                           f"{list(sources)}")
    for run in set(plan.run.tolist()):
        if not callable(getattr(sources[run], "snapshot", None)):
            raise DatasetError(f"source {run!r} ({type(sources[run]).__name__}) has no "
                               ".snapshot(time_gyr) method")
    chunk_size = _check_n("chunk_size", chunk_size, allow_none=False)
    if workers is not None:
        workers = _check_n("workers", workers, allow_none=False)
    if not (isinstance(snapshot_cache_mb, (int, float)) and snapshot_cache_mb > 0):
        raise DatasetError(f"snapshot_cache_mb must be > 0, got {snapshot_cache_mb!r}")
    imager = _setup_options(imager_options)
    path = _store_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    provenance = _provenance(plan, sources=sources, imager=imager, chunk_size=chunk_size)

    if path.exists():
        differences = _store_differences(path, provenance)
        if differences:
            if not overwrite:
                raise DatasetError(
                    f"{path} exists and is not a store of this build: {'; '.join(differences)}. "
                    "Pass overwrite=True to replace it, or choose another path")
            shutil.rmtree(path)
    if not path.exists():
        _create_template(path, _template(plan, chunk_size=chunk_size, imager=imager,
                                         provenance=provenance))
    else:
        _clean_partials(path)

    done = _read_done(path)
    todo = np.flatnonzero(~done).tolist()
    if todo:
        specs = list(_chunk_specs(plan, path, todo, chunk_size=chunk_size, imager=imager,
                                  cache_mb=snapshot_cache_mb))
        _run_specs(specs, sources, scheduler=scheduler, workers=workers, progress=progress,
                   total=len(plan), initial=len(plan) - sum(s["stop"] - s["start"] for s in specs),
                   desc=f"{plan.split} {path.name}")
    return open_dataset(path)


def _run_specs(specs, sources, *, scheduler, workers, progress, total, initial, desc):
    from tqdm.auto import tqdm

    sizes = {f"pidoc-chunk-{s['chunk']}": s["stop"] - s["start"] for s in specs}
    bar = tqdm(total=total, initial=initial, unit="map", desc=desc, disable=not progress,
               smoothing=0.1)
    kind, client, owns = _resolve_scheduler(scheduler, workers)
    try:
        if kind == "distributed":
            from distributed import as_completed

            [remote_sources] = client.scatter([dict(sources)], broadcast=True, hash=False)
            futures = [client.submit(_write_chunk, s, remote_sources, pure=False,
                                     key=f"pidoc-chunk-{s['chunk']}-{uuid.uuid4().hex[:8]}")
                       for s in specs]
            for fut in as_completed(futures):
                chunk = fut.result()  # re-raises a task's error here
                bar.update(sizes[f"pidoc-chunk-{chunk}"])
        else:
            import dask
            from dask.callbacks import Callback

            class _Tick(Callback):
                def _posttask(self, key, result, dsk, state, worker_id):
                    name = key if isinstance(key, str) else str(key)
                    if name in sizes:
                        bar.update(sizes[name])

            src = dict(sources)
            write = dask.delayed(_write_chunk, pure=False)
            tasks = [write(s, src, dask_key_name=f"pidoc-chunk-{s['chunk']}") for s in specs]
            with _Tick():
                dask.compute(*tasks, scheduler=kind, num_workers=workers)
    finally:
        bar.close()
        # the cache holds up to snapshot_cache_mb per process: free it once the build is over
        if kind != "distributed":
            _CACHE.clear()
        elif not owns:
            try:
                client.run(_clear_snapshot_cache)
            except Exception:  # noqa: BLE001 -- a lost worker has nothing left to free
                pass
        if owns:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def build_dataset(sources, *, distances_kpc, psf_fwhms_arcsec, n_samples=None, times=None,
                  shift_max_arcsec=5.0, rotations_deg=(0, 90, 180, 270), lines_of_sight=("z",),
                  seed, store, allow_repeats=True, **write_options) -> xr.Dataset:
    """Plan and write a dataset of mock observations in one call.

    For every chosen (run, time, distance, PSF) — all of them when ``n_samples`` is None, else
    ``n_samples`` drawn at random without replacement (seeded; repeated beyond the grid size) —
    with a random shift and rotation per sample, call :func:`~pidoc_core.imager.observe` and write
    the maps to the zarr store ``store``. Calling it again with the same arguments resumes an
    interrupted build.

    Parameters
    ----------
    sources : mapping
        Run name -> object with ``.snapshot(time_gyr)`` (and ``.times`` unless ``times`` is
        given): :func:`pidoc_core.evolution.paper_runs`, a :class:`SnapshotDirectory`, ...
    distances_kpc, psf_fwhms_arcsec, n_samples, times, shift_max_arcsec, rotations_deg,
    lines_of_sight, seed, allow_repeats
        See :func:`plan_samples`.
    store : str or os.PathLike
        Directory of the zarr store.
    **write_options
        ``chunk_size``, ``scheduler``, ``workers``, ``imager_options``, ``snapshot_cache_mb``,
        ``progress``, ``overwrite``: see :func:`write_dataset`.

    Returns
    -------
    xarray.Dataset
        The store opened lazily (:func:`open_dataset`).

    Raises
    ------
    DatasetError
        Bad arguments (empty grid, unknown run, negative distance, ...) or a store of another plan.

    Examples
    --------
    >>> from pidoc_core.evolution import paper_runs                           # doctest: +SKIP
    >>> ds = build_dataset(paper_runs(), distances_kpc=[10, 50], psf_fwhms_arcsec=[1.0],
    ...                    times=[12.0, 13.0], n_samples=64, seed=1,
    ...                    store="mini.zarr")                                 # doctest: +SKIP
    >>> ds.where(ds.distance == 50, drop=True).flux.shape                  # doctest: +SKIP
    """
    plan = plan_samples(sources, distances_kpc=distances_kpc, psf_fwhms_arcsec=psf_fwhms_arcsec,
                        n_samples=n_samples, times=times, shift_max_arcsec=shift_max_arcsec,
                        rotations_deg=rotations_deg, lines_of_sight=lines_of_sight, seed=seed,
                        allow_repeats=allow_repeats)
    return write_dataset(plan, sources, store, **write_options)


def build_splits(plans: Mapping[str, SamplePlan], sources: Mapping, out_dir, **write_options):
    """Write each plan of :func:`paper_splits` to ``out_dir/<split>.zarr`` (resumable).

    Returns
    -------
    dict
        Split name -> path of its store.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, plan in plans.items():
        paths[name] = out / f"{name}.zarr"
        write_dataset(plan, sources, paths[name], **write_options)
    return paths


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def completion(path) -> tuple[int, int]:
    """``(chunks done, chunks in total)`` of a dataset store, from its ``done`` markers."""
    p = _store_path(path)
    if not _is_store(p):
        raise DatasetError(f"{p}: no dataset store here (no zarr.json)")
    _read_attrs(p)
    done = _read_done(p)
    return int(done.sum()), int(done.size)


def open_dataset(path, *, allow_incomplete: bool = False, chunks="auto-zarr") -> xr.Dataset:
    """Open a dataset store lazily.

    Parameters
    ----------
    path : str or os.PathLike
        The zarr store written by :func:`write_dataset`.
    allow_incomplete : bool
        Open a store whose build has not finished, with a warning; its unwritten maps read as NaN
        and a boolean per-sample coordinate ``complete`` tells which samples are written.
    chunks : optional
        ``'auto-zarr'`` (default): dask arrays with the store's chunks; ``None``: xarray's lazy
        backend arrays without dask (indexing reads only the chunks it needs).

    Returns
    -------
    xarray.Dataset
        ``flux``/``mass`` and the field totals lazily; the per-sample coordinates in memory (so
        ``ds.where(ds.distance == 50, drop=True)`` and boolean ``isel`` work).

    Raises
    ------
    DatasetError
        Not a pi-DOC dataset store, or an incomplete one (without ``allow_incomplete``).
    """
    p = _store_path(path)
    if not _is_store(p):
        raise DatasetError(f"{p}: no dataset store here (no zarr.json)")
    _read_attrs(p)
    kwargs = {} if chunks == "auto-zarr" else {"chunks": chunks}
    ds = xr.open_zarr(str(p), consolidated=False, **kwargs)
    done = np.asarray(ds["done"].values).astype(bool)
    ds = ds.drop_vars("done")
    if not done.all():
        message = (f"{p}: incomplete store, {int(done.sum())} of {done.size} chunks written; "
                   "run the same build again to resume it")
        if not allow_incomplete:
            raise DatasetError(message + " (or pass allow_incomplete=True)")
        warnings.warn(message, stacklevel=2)
        cs = int(ds.attrs["chunk_size"])
        ds = ds.assign_coords(complete=("sample", np.repeat(done, cs)[: ds.sizes["sample"]]))
    loaded = {}
    for name in _COORDS:
        values = ds[name].values
        if name in _STRING_COORDS:
            values = _strs(values)
        loaded[name] = ("sample", values, ds[name].attrs)
    return ds.assign_coords(loaded)


def _strs(values) -> np.ndarray:
    """An array of Python-str values (numpy ``<U``), from object or numpy StringDType arrays."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=str)


def _as_dataset(ds) -> xr.Dataset:
    if isinstance(ds, xr.Dataset):
        return ds
    if isinstance(ds, (str, os.PathLike)):
        return open_dataset(ds)
    raise DatasetError(f"expected an xarray Dataset or a store path, got {type(ds).__name__}")


def select(ds: xr.Dataset, **conditions) -> xr.Dataset:
    """Samples whose coordinates match all ``conditions``.

    Each condition is a per-sample coordinate name with a value or a list of values; floats
    match to 1e-9 (relative).

    Examples
    --------
    >>> ds = xr.Dataset(coords={"distance": ("sample", [10.0, 50.0, 50.0]),
    ...                         "run": ("sample", ["a", "b", "a"])})
    >>> select(ds, distance=50, run="a").sizes["sample"]
    1
    """
    mask = np.ones(ds.sizes["sample"], dtype=bool)
    for name, wanted in conditions.items():
        if name not in ds.coords or ds[name].dims != ("sample",):
            raise DatasetError(f"select: {name!r} is not a per-sample coordinate; choose from "
                               f"{[c for c in ds.coords if ds[c].dims == ('sample',)]}")
        values = np.asarray(ds[name].values)
        wanted = np.atleast_1d(np.asarray(wanted))
        if values.dtype.kind in "fi" and wanted.dtype.kind in "fiu":
            hit = np.isclose(values[:, None], wanted[None, :].astype(float), rtol=1e-9,
                             atol=1e-12).any(axis=1)
        else:
            hit = np.isin(_strs(values), _strs(wanted))
        mask &= hit
    return ds.isel(sample=mask)


def standardisation(train_ds, *, joint_distance_age: bool = True,
                    allow_other_split: bool = False) -> dict:
    """Standardisation constants of a training set, in :class:`pidoc_core.model.PiDOC`'s keys.

    Computed chunk by chunk (dask), in float64, over every pixel of every sample.

    Parameters
    ----------
    train_ds : xarray.Dataset or path
        The training split.
    joint_distance_age : bool
        One mean and std over all distance (kpc) and age (Gyr) values together, the published
        v0.1 convention (29.63, 32.40); False gives one per output, ``[distance, age]``.
    allow_other_split : bool
        Accept a store whose ``split`` attribute is 'val' or 'test' (refused by default: the
        constants must come from the training split only).

    Returns
    -------
    dict
        ``flux_mean``, ``flux_std`` (log10 Lsun kpc-2), ``mass_mean``, ``mass_std`` (log10 Msun),
        ``distance_age_mean``, ``distance_age_std``; for the distance-aware mass network also
        ``ml_mean``, ``ml_std`` (log10 M/L_V per pixel, log10(Msun/Lsun)) and
        ``log_distance_mean``, ``log_distance_std`` (log10 kpc, over samples).
    """
    import dask

    ds = _as_dataset(train_ds)
    split = ds.attrs.get("split", "custom")
    if split in ("val", "test") and not allow_other_split:
        raise DatasetError(f"standardisation: this is the {split!r} split; constants must come "
                           "from the training split only (allow_other_split=True to override)")
    if ds.sizes.get("sample", 0) == 0:
        raise DatasetError("standardisation: the dataset has no samples")
    f = ds["flux"].astype(np.float64)
    m = ds["mass"].astype(np.float64)
    ml = m - f - (LOG10_4PI + 2.0 * np.log10(ds["distance"]))  # log10 M/L_V per pixel
    fm, fs, mm, ms, mlm, mls = dask.compute(f.mean().data, f.std().data, m.mean().data,
                                            m.std().data, ml.mean().data, ml.std().data)
    d = np.asarray(ds["distance"].values, float)
    t = np.asarray(ds["time"].values, float)
    if joint_distance_age:
        both = np.concatenate([d, t])
        dam, das = float(both.mean()), float(both.std())
    else:
        dam, das = [float(d.mean()), float(t.mean())], [float(d.std()), float(t.std())]
    out = dict(flux_mean=float(fm), flux_std=float(fs), mass_mean=float(mm), mass_std=float(ms),
               distance_age_mean=dam, distance_age_std=das, ml_mean=float(mlm),
               ml_std=float(mls), log_distance_mean=float(np.log10(d).mean()),
               log_distance_std=float(np.log10(d).std()))
    for k in ("flux_std", "mass_std", "ml_std"):
        if not out[k] > 0:
            raise DatasetError(f"standardisation: {k} is {out[k]!r}; the maps are constant")
    return out


def training_mass_to_light(field_mass, field_luminosity_v=None, *, how: str = "mean") -> float:
    """The training set's mean V-band mass-to-light ratio Upsilon, Msun/Lsun.

    Parameters
    ----------
    field_mass : array_like or xarray.Dataset
        Total mass in the field of each training map, Msun; or a dataset with variables or
        coordinates ``field_mass`` (Msun) and ``field_luminosity_v`` (Lsun).
    field_luminosity_v : array_like, optional
        Total V luminosity in the field of each map, Lsun (not needed with a dataset).
    how : {"mean", "ratio"}
        ``"mean"``: mean over maps of field_mass / field_luminosity_v; ``"ratio"``: sum of masses
        over sum of luminosities (luminosity-weighted).

    Returns
    -------
    float
        Upsilon, Msun/Lsun.

    Examples
    --------
    >>> training_mass_to_light([2.0, 6.0], [1.0, 2.0])
    2.5
    >>> training_mass_to_light([2.0, 6.0], [1.0, 2.0], how="ratio")
    2.6666666666666665
    """
    if isinstance(field_mass, xr.Dataset):
        ds = field_mass
        missing = [k for k in ("field_mass", "field_luminosity_v") if k not in ds.variables]
        if missing:
            raise DatasetError(f"training dataset lacks {missing}: need linear field totals "
                                  "field_mass (Msun) and field_luminosity_v (Lsun)")
        field_mass, field_luminosity_v = ds["field_mass"].values, ds["field_luminosity_v"].values
    if field_luminosity_v is None:
        raise DatasetError("field_luminosity_v is needed with array field masses")
    m = np.asarray(field_mass, dtype=float).ravel()
    lum = np.asarray(field_luminosity_v, dtype=float).ravel()
    if m.shape != lum.shape or not m.size:
        raise DatasetError(f"field_mass ({m.size}) and field_luminosity_v ({lum.size}) must "
                              "have one value per map")
    ok = np.isfinite(m) & np.isfinite(lum) & (lum > 0)
    if not ok.any():
        raise DatasetError("no map with a finite mass and a positive luminosity")
    if how == "mean":
        return float(np.mean(m[ok] / lum[ok]))
    if how == "ratio":
        return float(m[ok].sum() / lum[ok].sum())
    raise DatasetError(f"how must be 'mean' or 'ratio', got {how!r}")


#: Arrays :func:`load_arrays` can return, beside the per-sample coordinates.
ARRAY_TARGETS = ("flux", "mass", "ml", "log_distance", "distance_age")


def load_arrays(ds, *, standardisation: dict, targets=("flux", "mass"), dtype="float16") -> dict:
    """A whole split in memory, standardised, for training (the network's units).

    Read one zarr chunk at a time into preallocated arrays, so the peak memory is the output plus
    one chunk. The maps are smoothed log10 values with standard deviations of order 1, so
    float16 (11-bit mantissa: ~5e-4 relative) keeps them well inside the networks' errors
    (~0.05 dex) at half the memory of float32.

    Parameters
    ----------
    ds : xarray.Dataset or path
        A split.
    standardisation : dict
        Constants of the training split (:func:`standardisation`).
    targets : sequence of str, keyword-only
        Among ``'flux'`` (input maps), ``'mass'`` (log10 mass maps), ``'ml'`` (log10 M/L_V maps,
        the distance-aware target), ``'log_distance'`` (per sample), ``'distance_age'``
        (``(n, 2)`` ``[distance, age]`` with the joint or per-output constants).
    dtype : str, keyword-only
        dtype of the maps (per-sample values are float32).

    Returns
    -------
    dict
        ``name -> numpy.ndarray`` for every target, maps ``(n, H, W)``, and the physical
        ``distance`` (kpc), ``time`` (Gyr), ``field_mass`` (Msun), ``field_luminosity_v`` (Lsun)
        per sample.
    """
    ds = _as_dataset(ds)
    unknown = sorted(set(targets) - set(ARRAY_TARGETS))
    if unknown:
        raise DatasetError(f"load_arrays: unknown target(s) {unknown}; choose from "
                           f"{list(ARRAY_TARGETS)}")
    c = standardisation
    missing = [k for t in targets for k in _TARGET_KEYS[t] if k not in c]
    if missing:
        raise DatasetError(f"load_arrays: the standardisation lacks {sorted(set(missing))} "
                           "(recompute it with pidoc_core.dataset.standardisation)")
    n, ny, nx = (int(ds.sizes[k]) for k in ("sample", "y", "x"))
    d = np.asarray(ds["distance"].values, np.float64)
    t = np.asarray(ds["time"].values, np.float64)
    out = {"distance": d.astype(np.float32), "time": t.astype(np.float32),
           "field_mass": np.asarray(ds["field_mass"].values, float),
           "field_luminosity_v": np.asarray(ds["field_luminosity_v"].values, float)}
    if "log_distance" in targets:
        out["log_distance"] = ((np.log10(d) - c["log_distance_mean"]) /
                               c["log_distance_std"]).astype(np.float32)
    if "distance_age" in targets:
        both = np.stack([d, t], axis=1)
        out["distance_age"] = ((both - np.asarray(c["distance_age_mean"])) /
                               np.asarray(c["distance_age_std"])).astype(np.float32)
    maps = [k for k in ("flux", "mass", "ml") if k in targets]
    for k in maps:
        out[k] = np.empty((n, ny, nx), dtype=dtype)
    step = int(ds["flux"].encoding.get("chunks", (ds.attrs.get("chunk_size", 32),))[0] or 32)
    for start in range(0, n, step):
        sl = slice(start, min(start + step, n))
        f = np.asarray(ds["flux"][sl].values, np.float32)
        m = np.asarray(ds["mass"][sl].values, np.float32) if {"mass", "ml"} & set(maps) else None
        if "flux" in maps:
            out["flux"][sl] = (f - c["flux_mean"]) / c["flux_std"]
        if "mass" in maps:
            out["mass"][sl] = (m - c["mass_mean"]) / c["mass_std"]
        if "ml" in maps:
            logl = log_luminosity_per_pixel(f, d[sl, None, None])
            out["ml"][sl] = (m - logl - c["ml_mean"]) / c["ml_std"]
    return out


_TARGET_KEYS = {"flux": ("flux_mean", "flux_std"), "mass": ("mass_mean", "mass_std"),
                "ml": ("ml_mean", "ml_std"),
                "log_distance": ("log_distance_mean", "log_distance_std"),
                "distance_age": ("distance_age_mean", "distance_age_std")}

_BATCH_STREAM_CLASS = None


def _batch_stream_class():
    """Create :class:`BatchStream` on first use, so that importing this module does not import
    Keras (and TensorFlow)."""
    global _BATCH_STREAM_CLASS
    if _BATCH_STREAM_CLASS is not None:
        return _BATCH_STREAM_CLASS
    import keras

    class BatchStream(keras.utils.PyDataset):
        """Keras batches read from a dataset store without loading it all into memory.

        Each batch is a contiguous run of samples (by default one zarr chunk, the fast read);
        the order of batches is shuffled every epoch and the samples inside a batch are shuffled
        in memory (random single-sample reads from zarr are an order of magnitude slower). Shuffling is seeded by
        ``(seed, epoch)``.

        Parameters
        ----------
        ds : xarray.Dataset or path
            A dataset (from :func:`open_dataset`) or its store path.
        standardisation : dict
            Constants from :func:`standardisation` of the *training* split.
        target : {'mass', 'age_distance'}
            ``'mass'``: yields ``(flux_std[..., None], mass_std[..., None])``, float32 of shape
            ``(B, H, W, 1)``; ``'age_distance'``: ``(flux_std[..., None], [distance, age]_std)``
            with the target of shape ``(B, 2)``. Flux is always standardised, as the networks'
            input.
        batch_size : int, optional
            Default: the store's chunk size.
        shuffle : bool
            Shuffle batches and samples within them (False: store order).
        seed : int
            Seed of the shuffles.
        **kwargs
            ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``keras.utils.PyDataset``.
        """

        def __init__(self, ds, *, standardisation, target="mass", batch_size=None, shuffle=True,
                     seed=0, **kwargs):
            super().__init__(**kwargs)
            if target not in ("mass", "age_distance", "distance_age"):
                raise DatasetError(f"target must be 'mass' or 'age_distance', got {target!r}")
            self.target = "age_distance" if target == "distance_age" else target
            if isinstance(ds, (str, os.PathLike)):
                ds = open_dataset(ds, chunks=None)
            if not isinstance(ds, xr.Dataset):
                raise DatasetError(f"ds must be a Dataset or a store path, got {type(ds).__name__}")
            self.ds = ds
            s = dict(standardisation)
            need = ["flux_mean", "flux_std"] + (["mass_mean", "mass_std"] if self.target == "mass"
                                                else ["distance_age_mean", "distance_age_std"])
            lack = [k for k in need if k not in s]
            if lack:
                raise DatasetError(f"standardisation lacks {lack}")
            self.standardisation = s
            n = ds.sizes["sample"]
            if n == 0:
                raise DatasetError("the dataset has no samples")
            if batch_size is None:
                batch_size = int(ds.attrs.get("chunk_size", 32))
            self.batch_size = _check_n("batch_size", batch_size, allow_none=False)
            self.shuffle = bool(shuffle)
            self.seed = _check_seed(seed)
            self.epoch = 0
            self._starts = np.arange(0, n, self.batch_size)
            self._n = n
            self._set_order()
            self._dist = np.asarray(ds["distance"].values, np.float64)
            self._age = np.asarray(ds["time"].values, np.float64)

        def _set_order(self):
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = rng.permutation(len(self._starts)) if self.shuffle else \
                np.arange(len(self._starts))

        def __len__(self):
            return len(self._starts)

        def on_epoch_end(self):
            self.epoch += 1
            self._set_order()

        def __getitem__(self, index):
            if not 0 <= index < len(self):
                raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
            b = int(self._order[index])
            a = int(self._starts[b])
            z = min(a + self.batch_size, self._n)
            part = self.ds.isel(sample=slice(a, z))
            s = self.standardisation
            flux = np.asarray(part["flux"].values, np.float32)
            perm = np.arange(z - a)
            if self.shuffle:
                perm = np.random.default_rng([self.seed, self.epoch, b]).permutation(z - a)
            x = ((flux[perm] - np.float32(s["flux_mean"])) / np.float32(s["flux_std"]))[..., None]
            if self.target == "mass":
                mass = np.asarray(part["mass"].values, np.float32)[perm]
                y = ((mass - np.float32(s["mass_mean"])) / np.float32(s["mass_std"]))[..., None]
            else:
                da_ = np.stack([self._dist[a:z], self._age[a:z]], axis=-1)[perm]
                y = ((da_ - np.asarray(s["distance_age_mean"], np.float64))
                     / np.asarray(s["distance_age_std"], np.float64)).astype(np.float32)
            return x.astype(np.float32, copy=False), y.astype(np.float32, copy=False)

    BatchStream.__module__ = __name__
    BatchStream.__qualname__ = "BatchStream"
    _BATCH_STREAM_CLASS = BatchStream
    return BatchStream


def __getattr__(name):
    if name == "BatchStream":
        return _batch_stream_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def batch_stream(ds, *, standardisation, target="mass", batch_size=None, shuffle=True, seed=0,
                 **kwargs):
    """A :class:`BatchStream` (``keras.utils.PyDataset``) over a dataset; see its docstring.

    Examples
    --------
    >>> train = open_dataset("out/train.zarr")                                 # doctest: +SKIP
    >>> consts = standardisation(train)                                        # doctest: +SKIP
    >>> model.fit(batch_stream(train, standardisation=consts), epochs=10)     # doctest: +SKIP
    """
    return _batch_stream_class()(ds, standardisation=standardisation, target=target,
                                 batch_size=batch_size, shuffle=shuffle, seed=seed, **kwargs)


def dataset_info(path) -> dict:
    """A summary of a store: sizes, coordinate ranges, completeness, provenance.

    Works on incomplete stores (it reads the ``done`` markers and the plan, not the maps).
    """
    p = _store_path(path)
    done_n, total = completion(p)
    ds = xr.open_zarr(str(p), consolidated=False)
    info = {
        "path": str(p),
        "split": ds.attrs.get("split"),
        "n_samples": int(ds.sizes["sample"]),
        "map_shape": (int(ds.sizes["y"]), int(ds.sizes["x"])),
        "chunk_size": int(ds.attrs.get("chunk_size", 0)),
        "chunks_done": done_n,
        "chunks_total": total,
        "complete": done_n == total,
        "seed": ds.attrs.get("seed"),
        "code_version": ds.attrs.get("code_version"),
        "plan_sha256": ds.attrs.get("plan_sha256"),
        "runs": {},
        "ranges": {},
        "size_bytes": sum(f.stat().st_size for f in p.rglob("*") if f.is_file()),
    }
    runs, counts = np.unique(_strs(ds["run"].values), return_counts=True)
    info["runs"] = {str(r): int(c) for r, c in zip(runs, counts)}
    for name in ("time", "distance", "psf_fwhm", "shift_x", "shift_y", "rotation"):
        v = np.asarray(ds[name].values, float)
        info["ranges"][name] = {"min": float(v.min()), "max": float(v.max()),
                                "n_distinct": int(np.unique(v).size),
                                "units": ds[name].attrs.get("units", "")}
    los, c = np.unique(_strs(ds["line_of_sight"].values), return_counts=True)
    info["lines_of_sight"] = {str(a): int(b) for a, b in zip(los, c)}
    combos = set(zip(_strs(ds["run"].values).tolist(), ds["time"].values.tolist(),
                     ds["distance"].values.tolist(), ds["psf_fwhm"].values.tolist()))
    info["n_combinations"] = len(combos)
    info["n_snapshots"] = len({c[:2] for c in combos})
    info["repeat_factor"] = info["n_samples"] / max(len(combos), 1)
    info["maps_per_snapshot"] = info["n_samples"] / max(info["n_snapshots"], 1)
    return info
