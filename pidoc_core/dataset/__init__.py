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

Modules
-------
:mod:`.plan` (:class:`SamplePlan`, :func:`plan_samples`), :mod:`.splits` (:func:`paper_splits`,
presets, :func:`fresh_cluster`), :mod:`.build` (the one resumable zarr writer:
:func:`write_dataset`, :func:`build_dataset`, :func:`build_splits`), :mod:`.store`
(:func:`open_dataset`, :func:`completion`, :func:`select`, :func:`dataset_info`,
:func:`standardisation`, :func:`training_mass_to_light`), :mod:`.arrays` (:func:`load_arrays`),
:mod:`.stream` (the Keras :class:`BatchStream`). :class:`SnapshotDirectory` is a reader
(:mod:`pidoc_core.readers.directory`), re-exported here.

``BatchStream`` and ``batch_stream`` are lazy attributes: importing this package does not import
Keras; asking for either imports :mod:`.stream` (and Keras) once.
"""

from __future__ import annotations

from ..readers.directory import SnapshotDirectory
from ._cache import _CACHE, _clear_snapshot_cache, _SnapshotCache  # noqa: F401 - used by tests
from ._common import (PAPER_TEST_DISTANCES_KPC, PAPER_TEST_PSFS_ARCSEC, PAPER_TEST_RUN,
                      PAPER_TRAIN_DISTANCES_KPC, PAPER_TRAIN_PSFS_ARCSEC, PAPER_TRAIN_RUNS,
                      DatasetError)
from .arrays import ARRAY_TARGETS, load_arrays
from .build import _resolve_scheduler, build_dataset, build_splits, write_dataset  # noqa: F401
from .plan import SamplePlan, every_nth_snapshot, plan_samples
from .splits import DATASET_PRESETS, FRESH_CLUSTER, fresh_cluster, paper_splits, preset_splits
from .store import completion, concat_splits, dataset_info, open_dataset, select, standardisation
from .store import training_mass_to_light

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
    "every_nth_snapshot",
    "paper_splits",
    "preset_splits",
    "fresh_cluster",
    "FRESH_CLUSTER",
    "DATASET_PRESETS",
    "write_dataset",
    "build_dataset",
    "build_splits",
    "open_dataset",
    "concat_splits",
    "completion",
    "select",
    "standardisation",
    "load_arrays",
    "training_mass_to_light",
    "batch_stream",
    "BatchStream",
    "dataset_info",
]

_LAZY = ("BatchStream", "batch_stream")  # in .stream, which imports Keras


def __getattr__(name):
    """``BatchStream`` and ``batch_stream`` on first use (PEP 562), so that importing the package
    does not import Keras."""
    if name in _LAZY:
        from . import stream  # noqa: PLC0415 - imports Keras, only when asked for

        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
