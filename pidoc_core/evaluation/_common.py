"""Shared pieces of :mod:`pidoc_core.evaluation`: input checks, chunking, the error class."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..conventions import LOG_MASS_FLOOR
from ..errors import PidocError

__all__ = ["EvaluationError", "LOG_MASS_FLOOR", "CHUNK"]

#: Maps per chunk in streamed statistics.
CHUNK = 256
_CHUNK = CHUNK


class EvaluationError(PidocError):
    """Inputs the evaluation cannot use; the message names the argument and what is expected."""


def _values(a, name):
    """numpy float array of an array-like or DataArray (computing dask arrays)."""
    if isinstance(a, xr.Dataset):
        raise EvaluationError(f"{name}: pass a DataArray or an array, not a Dataset")
    arr = np.asarray(a.values if isinstance(a, xr.DataArray) else a)
    if arr.dtype.kind not in "fiu":
        raise EvaluationError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _maps(a, name):
    """A stack of maps (n, H, W) as an indexable (numpy or DataArray) without loading it all."""
    if isinstance(a, xr.Dataset):
        raise EvaluationError(f"{name}: pass a DataArray (e.g. ds['{name}']), not a Dataset")
    if not isinstance(a, xr.DataArray):
        a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise EvaluationError(f"{name} must be a map (y, x) or maps (sample, y, x); got shape "
                              f"{tuple(a.shape)}")
    return a


def _chunk(a, start, stop):
    return np.asarray(a[start:stop], dtype=np.float64)


def _per_sample(v, n, name):
    arr = np.asarray(v.values if isinstance(v, xr.DataArray) else v, dtype=np.float64)
    arr = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr.reshape(-1)
    if arr.shape != (n,):
        raise EvaluationError(f"{name} must have one value per map ({n}); got {arr.shape[0]}")
    return arr
