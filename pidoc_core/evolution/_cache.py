"""On-disk cache of the evolution source: location, keys and atomic ``.npz`` files.

Everything is stored as plain ``.npz`` arrays (no pickle), written to a temporary name in the
same directory and renamed, so an interrupted run never leaves a half-written file.
:func:`load_or_build` makes each file once when several processes want it at the same time (the
workers of a parallel dataset build start on the same run): the first builds it under an
exclusive lock, the others wait for the lock and load what it wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_path

__all__ = ["CODE_VERSION", "resolve_cache_dir", "cache_key", "save_npz", "load_npz",
           "load_or_build"]

#: Bump when a change to the physics or file layout invalidates cached results.
CODE_VERSION = "evolution-2"

_ENV = "PIDOC_CACHE_DIR"


def resolve_cache_dir(cache_dir=None) -> Path:
    """Directory of the cache.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Explicit directory. Otherwise ``$PIDOC_CACHE_DIR``, otherwise the user cache directory
        of ``platformdirs`` (``.../pidoc/evolution``).

    Returns
    -------
    pathlib.Path
        The directory (created if missing).
    """
    if cache_dir is None:
        cache_dir = os.environ.get(_ENV) or None
    if cache_dir is None:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("pidoc")) / "evolution"
    else:
        path = Path(cache_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cache_dir {str(path)!r} cannot be created: {exc}") from None
    return path


def cache_key(kind: str, **params) -> str:
    """A file name stem from a kind and all parameters (plus :data:`CODE_VERSION`)."""
    payload = json.dumps({"kind": kind, "version": CODE_VERSION, **params}, sort_keys=True,
                         default=float)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


def save_npz(path: Path, **arrays) -> None:
    """Write arrays to ``path`` atomically (temporary file in the same directory, then rename)."""
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Arrays of a cached file, or None if it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock on the hidden file ``.NAME.lock`` beside ``path`` (released by the
    kernel if the process dies)."""
    lock = path.parent / f".{path.name}.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_or_build(path, build) -> dict[str, np.ndarray]:
    """Arrays cached at ``path``, built by ``build()`` and saved there if missing.

    Concurrent callers (threads or processes) build a missing file once: the first takes an
    exclusive lock beside ``path`` and builds; the others wait on the lock, then load.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    build : callable
        ``build() -> dict`` of arrays, called only when no readable file is at ``path``.

    Returns
    -------
    dict of numpy.ndarray
        What is (now) stored at ``path``; the built arrays themselves when this call built them.
    """
    path = Path(path)
    data = load_npz(path)
    if data is not None:
        return data
    with _exclusive(path):
        data = load_npz(path)  # another process may have built it while we waited
        if data is None:
            data = build()
            save_npz(path, **data)
    return data
