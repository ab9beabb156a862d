"""A snapshot source over a directory of snapshot files (:class:`SnapshotDirectory`).

It is the dataset builder's source for snapshots on disk (:func:`pidoc_core.dataset.build_dataset`);
``pidoc_core.dataset.SnapshotDirectory`` is this class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pidoc_core.snapshot import Snapshot

__all__ = ["SnapshotDirectory", "TIME_DECIMALS"]

#: Snapshot times are matched to this many decimals of a Gyr (1e-6 Gyr), here and in datasets.
TIME_DECIMALS = 6
_TIME_DECIMALS = TIME_DECIMALS


def _dataset_error(message: str):
    """A :class:`pidoc_core.dataset.DatasetError`, the error this source has always raised (it is
    imported when raised, so that readers do not import the dataset package at import time)."""
    from pidoc_core.dataset import DatasetError  # noqa: PLC0415 - see the docstring

    return DatasetError(message)


class SnapshotDirectory:
    """A snapshot source over a directory of snapshot files, for :func:`pidoc_core.dataset.build_dataset`.

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
    pidoc_core.dataset.DatasetError
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
        from . import read_snapshot

        self.path = Path(path)
        if not self.path.is_dir():
            raise _dataset_error(f"SnapshotDirectory: {str(self.path)!r} is not a directory")
        self.pattern = pattern
        self.format = format
        self.name = str(name) if name is not None else self.path.resolve().name
        self.read_options = dict(read_options)
        files = sorted(p for p in self.path.glob(pattern)
                       if p.is_file() and not p.name.startswith("."))
        if not files:
            raise _dataset_error(f"SnapshotDirectory: no file in {str(self.path)!r} matches "
                               f"pattern {pattern!r}")
        by_time: dict[float, Path] = {}
        for f in files:
            t = round(float(read_snapshot(f, format=format, **self.read_options).time),
                      _TIME_DECIMALS)
            if t in by_time:
                raise _dataset_error(f"SnapshotDirectory: {by_time[t]} and {f} both hold time "
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
        from . import read_snapshot

        t = round(float(time_gyr), _TIME_DECIMALS)
        path = self._files.get(t)
        if path is None:
            near = self.times[np.argsort(np.abs(self.times - t))[:3]]
            raise _dataset_error(f"SnapshotDirectory {str(self.path)!r} has no snapshot at "
                               f"{t:g} Gyr; nearest: {near.tolist()}")
        return read_snapshot(path, format=self.format, name=self.name, **self.read_options)
