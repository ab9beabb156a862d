"""Writing outputs so that nothing half-written ever sits at the final path.

Every writer of the package writes to a temporary file (or directory) beside the destination,
flushes it to disk and renames it into place; a failure removes the temporary and leaves any
earlier file untouched. A process killed mid-write (SIGKILL) leaves its hidden temporary
(``.NAME.*``) beside the destination, never a partial file at it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "replace_directory"]


@contextlib.contextmanager
def atomic_path(path, *, suffix: str = ".part", mode: int = 0o644):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        Final file path (its directory is created).
    suffix : str
        Suffix of the temporary name (writers that infer a format from it need the real one).
    mode : int
        Permissions of the final file (temporary files are created 0600).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> with atomic_path(out, suffix=".npy") as tmp:
    ...     np.save(tmp, np.arange(3))
    >>> np.load(out).tolist()
    [0, 1, 2]
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, mode)
        _fsync(tmp)  # the data reach the disk before the name does (power loss: old or new)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def _fsync(path) -> None:
    """Flush a file's (or a directory's entries') data to disk, where the platform allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. directories on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_directory(source, destination) -> Path:
    """Move a finished directory ``source`` to ``destination``, replacing an earlier one.

    The earlier directory is first renamed aside, so ``destination`` holds either the old or the
    new complete directory (and, for the instant between the two renames, nothing); if the second
    rename fails the old directory is put back. The old one is deleted afterwards.
    """
    source, destination = Path(source), Path(destination)
    old = None
    if destination.exists():
        old = destination.parent / f".{destination.name}.old-{os.getpid()}"
        os.replace(destination, old)
    try:
        os.replace(source, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return destination
