"""Keras batches read from a dataset store without loading it all into memory.

This module imports Keras (and its backend) when it is imported; :mod:`pidoc_core.dataset` does
not import it until ``BatchStream`` or ``batch_stream`` is first asked for.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import xarray as xr

from ._common import DatasetError, _check_n, _check_seed
from .store import open_dataset

__all__ = ["BatchStream", "batch_stream"]


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


def batch_stream(ds, *, standardisation, target="mass", batch_size=None, shuffle=True, seed=0,
                 **kwargs):
    """A :class:`BatchStream` (``keras.utils.PyDataset``) over a dataset; see its docstring.

    Examples
    --------
    >>> train = open_dataset("out/train.zarr")                                 # doctest: +SKIP
    >>> consts = standardisation(train)                                        # doctest: +SKIP
    >>> model.fit(batch_stream(train, standardisation=consts), epochs=10)     # doctest: +SKIP
    """
    return BatchStream(ds, standardisation=standardisation, target=target,
                       batch_size=batch_size, shuffle=shuffle, seed=seed, **kwargs)
