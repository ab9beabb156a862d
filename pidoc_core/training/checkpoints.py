"""Checkpoints of a training run: one ``.npz`` per epoch (weights, optimiser state, early-stopping
state, curves), written atomically; finding, reading and restoring them."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from .._atomic import atomic_path
from ._common import (_CKPT_FORMAT, _CKPT_PREFIX, _CKPT_SUFFIX, _CKPT_VERSION, CHECKPOINT_DIR,
                      CSV_NAME, LOG_DIR, TrainingError)

__all__ = ["latest_checkpoint", "read_checkpoint_metadata"]


def _checkpoint_paths(out_dir: Path) -> list[Path]:
    d = Path(out_dir) / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        name = p.name
        if name.startswith(_CKPT_PREFIX) and name.endswith(_CKPT_SUFFIX):
            digits = name[len(_CKPT_PREFIX):-len(_CKPT_SUFFIX)]
            if digits.isdigit():
                found.append((int(digits), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint of the last completed epoch in ``out_dir/checkpoints``, or ``None``.

    Examples
    --------
    >>> latest_checkpoint("/nonexistent") is None
    True
    """
    paths = _checkpoint_paths(Path(out_dir))
    return paths[-1] if paths else None


def read_checkpoint_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a checkpoint file: kind, completed ``epoch``, architecture, loss,
    learning rate, seed, early-stopping state and ``history`` (the curves so far).

    Raises
    ------
    TrainingError
        If the file is not a readable pi-DOC training checkpoint.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError) as exc:
        raise TrainingError(f"cannot read training checkpoint {path}: {exc}") from exc
    if meta.get("format") != _CKPT_FORMAT:
        raise TrainingError(f"{path} is not a {_CKPT_FORMAT} file")
    if meta.get("format_version") != _CKPT_VERSION:
        raise TrainingError(f"{path}: checkpoint format_version {meta.get('format_version')!r}, "
                            f"this pi-DOC reads {_CKPT_VERSION}")
    return meta


def _to_numpy(v):
    return np.array(v.numpy() if hasattr(v, "numpy") else keras.ops.convert_to_numpy(v))


def _write_npz_atomic(path: Path, arrays: dict) -> None:
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def _assign_all(variables, arrays, what, path):
    if len(variables) != len(arrays):
        raise TrainingError(f"{path}: {len(arrays)} {what} arrays, the network has "
                            f"{len(variables)}; the checkpoint is of another architecture")
    for v, a in zip(variables, arrays):
        if tuple(v.shape) != tuple(a.shape):
            raise TrainingError(f"{path}: {what} {v.path!r} has shape {tuple(a.shape)} in the "
                                f"checkpoint, {tuple(v.shape)} in the network")
        v.assign(a)


def _load_arrays(z, prefix):
    keys = sorted(k for k in z.files if k.startswith(prefix))
    return [z[k] for k in keys]


def _rewrite_csv(path: Path, history: list) -> None:
    """The CSV log as the checkpoint's history says (drops rows of epochs not checkpointed)."""
    if not history:
        path.unlink(missing_ok=True)
        return
    keys = sorted({k for row in history for k in row if k != "epoch"})
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *keys])
        for row in history:
            writer.writerow([row["epoch"], *[row.get(k, "NA") for k in keys]])


def _clear_run(out_dir: Path):
    shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(out_dir / LOG_DIR, ignore_errors=True)
    (out_dir / CSV_NAME).unlink(missing_ok=True)


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
