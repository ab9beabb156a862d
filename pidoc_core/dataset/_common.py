"""Shared pieces of :mod:`pidoc_core.dataset`: the error, the store format and its coordinates,
argument checks and the small zarr helpers every part uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import paper
from ..errors import PidocError
from ..readers.directory import TIME_DECIMALS as _TIME_DECIMALS  # noqa: F401 - one home

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


def _strs(values) -> np.ndarray:
    """An array of Python-str values (numpy ``<U``), from object or numpy StringDType arrays."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=str)


def _mark_done(store, chunk: int) -> None:
    import zarr

    arr = zarr.open_array(store=str(store), path="done", mode="r+")
    arr[chunk] = 1


def _read_done(store) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(store=str(store), path="done", mode="r")[:]).astype(bool)


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
