"""Keras callbacks of a training run: resumable early stopping, the per-epoch checkpoint writer and
TensorBoard scalars."""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from ._common import _CKPT_PREFIX, _CKPT_SUFFIX, CHECKPOINT_DIR
from .checkpoints import _checkpoint_paths, _to_numpy, _write_npz_atomic


class _PlateauStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that can start from a saved state (best value, epoch, wait, weights)."""

    def __init__(self, *, resume_state=None, **kwargs):
        super().__init__(**kwargs)
        self._resume_state = resume_state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._resume_state:
            s = self._resume_state
            self.best = s["best"]
            self.best_epoch = s["best_epoch"]
            self.wait = s["wait"]
            self.best_weights = s.get("best_weights")

    def state(self):
        return {
            "monitor": self.monitor,
            "best": None if self.best is None else float(self.best),
            "best_epoch": int(self.best_epoch),
            "wait": int(self.wait),
            "patience": int(self.patience),
        }


def _float_logs(logs):
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


class _Checkpointer(keras.callbacks.Callback):
    """Writes ``checkpoints/epoch-NNNNN.npz`` at the end of every epoch, atomically."""

    def __init__(self, *, out_dir, meta, history, stopper, keep):
        super().__init__()
        self.dir = Path(out_dir) / CHECKPOINT_DIR
        self.meta = meta
        self.history = history
        self.stopper = stopper
        self.keep = max(1, int(keep))

    def on_epoch_end(self, epoch, logs=None):
        values = _float_logs(logs)
        if not all(math.isfinite(v) for v in values.values()):
            warnings.warn(f"epoch {epoch + 1}: non-finite values {values}; no checkpoint "
                          "written, training stops", stacklevel=2)
            self.model.stop_training = True
            return
        self.history.append({"epoch": int(epoch), **values})
        meta = dict(self.meta)
        meta.update(
            epoch=int(epoch) + 1,
            history=self.history,
            early_stopping=self.stopper.state(),
            stopped=bool(self.model.stop_training),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        arrays = {"meta": np.array(json.dumps(meta))}
        for i, v in enumerate(self.model.variables):
            arrays[f"model_{i:05d}"] = _to_numpy(v)
        for i, v in enumerate(self.model.optimizer.variables):
            arrays[f"optim_{i:05d}"] = _to_numpy(v)
        best = self.stopper.best_weights
        if best is not None and self.stopper.best_epoch != epoch:
            for i, a in enumerate(best):
                arrays[f"best_{i:05d}"] = np.asarray(a)
        path = self.dir / f"{_CKPT_PREFIX}{epoch + 1:05d}{_CKPT_SUFFIX}"
        _write_npz_atomic(path, arrays)
        for old in _checkpoint_paths(self.dir.parent)[:-self.keep]:
            old.unlink(missing_ok=True)


class _ScalarSummaries(keras.callbacks.Callback):
    """TensorBoard scalars per epoch (``epoch_<metric>`` in ``train``/``validation``).

    Written with ``tf.summary.write`` and the scalars-plugin metadata, so it needs TensorFlow
    but not the ``tensorboard`` package; the tags and directories are those of
    ``keras.callbacks.TensorBoard``.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers = {}
        try:
            import tensorflow as tf  # noqa: PLC0415
            from tensorflow.core.framework import summary_pb2  # noqa: PLC0415
        except ImportError:  # pragma: no cover - TF is a dependency
            warnings.warn("TensorFlow is not installed: no TensorBoard logs", stacklevel=2)
            self.tf = None
            return
        self.tf = tf
        self.metadata = summary_pb2.SummaryMetadata()
        self.metadata.plugin_data.plugin_name = "scalars"

    def _writer(self, name):
        if name not in self._writers:
            with self.tf.device("/cpu:0"):
                self._writers[name] = self.tf.summary.create_file_writer(
                    str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        if self.tf is None:
            return
        values = _float_logs(logs)
        tf = self.tf
        for split, keys in (("train", [k for k in values if not k.startswith("val_")]),
                            ("validation", [k for k in values if k.startswith("val_")])):
            if not keys:
                continue
            w = self._writer(split)
            with tf.device("/cpu:0"), w.as_default():
                for k in keys:
                    tag = "epoch_" + (k[4:] if split == "validation" else k)
                    tf.summary.write(tag, tf.constant(values[k], dtype=tf.float32),
                                     step=int(epoch), metadata=self.metadata)
            w.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}
