"""A star table from an HDF5 group of equal-length 1-D datasets (files that are not tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Column, Table

from ._common import ReaderError

__all__ = ["read_hdf5_group"]


def read_hdf5_group(path: Path, dataset: str | None) -> Table:
    """A Table from the equal-length 1-D numeric datasets of an HDF5 group."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f if dataset is None else f[dataset]
        if isinstance(group, h5py.Dataset):
            return Table(np.asarray(group[()]))
        items = [(key, item) for key, item in group.items()
                 if isinstance(item, h5py.Dataset) and item.ndim in (1, 2)
                 and item.dtype.kind in "fiub"]
        # the table length is the one most datasets share, not the first dataset's (an
        # NBODY6++GPU step starts with '000 Scalars', 100 values)
        lengths = [item.shape[0] for _, item in items]
        length = max(set(lengths), key=lambda n: (lengths.count(n), n)) if lengths else None
        cols = {}
        for key, item in items:
            if item.shape[0] != length:
                continue
            values = np.asarray(item[()])
            unit = item.attrs.get("unit", item.attrs.get("units"))
            if isinstance(unit, bytes):
                unit = unit.decode("ascii", "replace")
            cols[key] = Column(values, name=key, unit=unit if unit else None)
        if not cols:
            raise ReaderError(
                f"{path}: no table and no 1-D numeric datasets found in HDF5 group "
                f"{dataset or '/'}"
            )
        table = Table(list(cols.values()))
        for key, value in group.attrs.items():
            if isinstance(value, bytes):
                value = value.decode("ascii", "replace")
            if isinstance(value, np.generic):
                value = value.item()
            table.meta[key] = value
    return table
