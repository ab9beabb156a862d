"""The per-process snapshot cache of a dataset build."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..snapshot import Snapshot
from ._common import DatasetError


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
