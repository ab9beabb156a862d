"""Training of the pi-DOC networks: fit, resumable checkpoints, curves and a PiDOC export.

:func:`fit` trains one of the two networks of Chardin & Bianchini (2021, MNRAS 504, 5656, Sect. 3)
the way the paper did and leaves behind everything a long run needs:

- the paper's optimiser and loss per network: ``'mass'`` (the encoder-decoder, standardised log10
  flux map -> standardised log10 mass map) with Adam at 10^-2.5 and the VGG16 perceptual loss of
  Appendix A; ``'age-distance'`` (the CNN, flux map -> standardised ``[distance, age]``) with Adam
  at 10^-4 and the mean squared error;
- the paper's monitoring metrics (Sect. 3.2, Fig. 3): MSE and the eq. (1) R^2 on the training and
  validation sets, every epoch, in a CSV log (``keras.callbacks.CSVLogger``) and TensorBoard event
  files (``epoch_loss``, ``epoch_mse``, ``epoch_r2`` under ``logs/train`` and
  ``logs/validation``);
- a checkpoint after every epoch (weights, optimiser state, random-generator states, epoch number,
  early-stopping state and the curves so far), written atomically, from which a run killed at any
  moment resumes at its last completed epoch;
- early stopping on the validation plateau with the best weights restored;
- at the end, a :class:`pidoc_core.model.PiDOC` directory (:meth:`~pidoc_core.model.PiDOC.save`)
  whose manifest has a ``training`` entry: loss and VGG source, learning rate, epochs, best
  validation metrics, curves and the data provenance given by the caller.

Layout of ``out_dir``::

    checkpoints/epoch-00012.npz   last checkpoints (``keep_checkpoints`` of them)
    training_log.csv              one row per epoch: epoch, loss, mse, r2, val_loss, val_mse, val_r2
    logs/train, logs/validation   TensorBoard event files
    model/                        the PiDOC export (manifest.json + <network>.weights.h5)

Data are standardised already (the network's input and target units); pass the constants used in
``standardisation`` so that the export converts physical units. Training data may be ``(x, y)``
arrays (shuffled here, per epoch, from ``seed``), a :class:`keras.utils.PyDataset` (it batches and
shuffles itself) or a ``tf.data.Dataset`` of batches.

Several GPUs are used through ``tf.distribute.MirroredStrategy`` (``strategy='auto'``); mixed
precision (``mixed_float16``) is an option, with the network's output cast to float32 and the
perceptual loss kept in float32.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import networks
from ._atomic import atomic_path
from .errors import PidocError
from .model import PiDOC, open_model

__all__ = [
    "KINDS",
    "PAPER_LEARNING_RATES",
    "PAPER_LOSSES",
    "CHECKPOINT_DIR",
    "CSV_NAME",
    "LOG_DIR",
    "EXPORT_DIR",
    "TrainingError",
    "TrainingResult",
    "ArrayBatches",
    "array_pipeline",
    "fit",
    "latest_checkpoint",
    "read_checkpoint_metadata",
    "add_train_arguments",
    "run_train",
]

#: The networks: kind -> default builder of :mod:`pidoc_core.networks`. ``'mass'`` is the
#: paper's flux-only mass network, ``'mass-ml'`` the distance-aware one (flux + log10 distance ->
#: log10 M/L_V per pixel), ``'age-distance'`` the CNN.
KINDS = {"mass": "build_encoder_decoder", "mass-ml": "build_mass_unet",
         "age-distance": "build_age_distance_cnn"}
#: Builders each kind may use: the paper's network and π-DOC Explorer's CPU recipe.
BUILDERS = {"mass": ("build_encoder_decoder", "build_mass_unet"),
            "mass-ml": ("build_mass_unet",),
            "age-distance": ("build_age_distance_cnn", "build_age_distance_net")}
#: Adam learning rates of the paper (Sect. 3.1.1 and 3.1.2); 10^-3 for the distance-aware net.
PAPER_LEARNING_RATES = {"mass": 10**-2.5, "mass-ml": 1e-3, "age-distance": 1e-4}
#: Losses of the paper: perceptual (Appendix A) for the mass maps, MSE for distance and age.
PAPER_LOSSES = {"mass": "perceptual", "mass-ml": "mse", "age-distance": "mse"}
#: Learning-rate schedules of :func:`fit`.
LR_SCHEDULES = ("constant", "cosine")
#: Keys of the caller's data provenance that are copied into the exported model's provenance.
_PREDICTION_PROVENANCE = ("training_mass_to_light", "training_grid")
#: Sub-directories and files of ``out_dir``.
CHECKPOINT_DIR = "checkpoints"
CSV_NAME = "training_log.csv"
LOG_DIR = "logs"
EXPORT_DIR = "model"

_ROLES = {"mass": "mass", "mass-ml": "mass_ml", "age-distance": "age_distance"}
_CKPT_FORMAT = "pidoc-training-checkpoint"
_CKPT_VERSION = 1
_CKPT_PREFIX = "epoch-"
_CKPT_SUFFIX = ".npz"


class TrainingError(PidocError):
    """Training cannot start or resume as asked; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : keras.Model
        A plain float32 copy of the network with the best weights (not bound to a distribution
        strategy), taking and returning standardised values.
    pidoc : PiDOC or None
        The exported model (``None`` when ``export=False``).
    export_dir : pathlib.Path or None
        Where it was saved.
    history : list of dict
        One entry per completed epoch of the whole run (resumed parts included): ``epoch``
        (0-based) and the logged values ``loss``, ``mse``, ``r2``, ``val_loss``, ``val_mse``,
        ``val_r2`` (dimensionless, standardised units).
    initial_epoch : int
        Epochs already completed when this call started (from a checkpoint).
    epochs_run : int
        Epochs completed by this call.
    best_epoch : int
        0-based epoch of the best monitored value (``val_loss``, or ``loss`` without validation).
    best : dict
        The logged values of that epoch.
    stopped_early : bool
        Whether early stopping ended the run (now or in an earlier, resumed part).
    training : dict
        The ``training`` entry written to the export manifest.
    """

    model: Any
    pidoc: Any
    export_dir: Path | None
    history: list
    initial_epoch: int
    epochs_run: int
    best_epoch: int
    best: dict
    stopped_early: bool
    training: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays, reshuffled every epoch from ``(seed, epoch)``.

    The order of epoch ``e`` is ``numpy.random.default_rng([seed, e]).permutation(n)``, so a
    resumed run sees the same batches as an uninterrupted one.

    Parameters
    ----------
    x, y : numpy.ndarray
        Inputs and targets with the same first (sample) dimension.
    batch_size : int
        Samples per batch (the last batch may be smaller).
    shuffle : bool
        Reshuffle every epoch; otherwise keep the array order.
    seed : int
        Seed of the shuffling.
    epoch : int
        Epoch of the first iteration (the number of epochs already run).

    Examples
    --------
    >>> b = ArrayBatches(np.zeros((5, 4, 4, 1)), np.zeros((5, 2)), batch_size=2, shuffle=False,
    ...                  seed=0)
    >>> len(b), b[2][0].shape
    (3, (1, 4, 4, 1))
    """

    def __init__(self, x, y, *, batch_size: int, shuffle: bool, seed: int, epoch: int = 0):
        super().__init__()
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self._order_epoch = None
        self._order = None

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def _indices(self):
        if not self.shuffle:
            return None
        if self._order_epoch != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = rng.permutation(len(self.x))
            self._order_epoch = self.epoch
        return self._order

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        sl = slice(index * self.batch_size, (index + 1) * self.batch_size)
        order = self._indices()
        if order is None:
            return self.x[sl], self.y[sl]
        idx = order[sl]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self):
        self.epoch += 1


def array_pipeline(x, y, *, batch_size: int, shuffle: bool, seed: int = 0,
                   first_epoch: int = 0, channel=None):
    """Batches of in-memory arrays as a ``tf.data.Dataset``, without Python per sample or batch.

    Each batch gathers its samples from the arrays by index in one NumPy call (the arrays are
    never copied: a 20,000-map float16 split costs its own 1 GB per array), with indices
    shuffled for every epoch by ``tf.random.experimental.stateless_shuffle`` with seed ``(seed,
    epoch)``, so a run resumed at epoch ``e`` sees the batches an uninterrupted one would; then
    casts float16 maps to float32 and appends the per-sample ``channel`` as a constant map. Two
    batches are prefetched while the network computes.

    Parameters
    ----------
    x : numpy.ndarray
        Input maps ``(n, H, W)``, e.g. float16 from :func:`pidoc_core.dataset.load_arrays`.
    y : numpy.ndarray
        Targets: maps ``(n, H, W)`` or vectors ``(n, k)``.
    batch_size : int
        Samples per batch; the last batch of an epoch may be smaller.
    shuffle : bool
        True: an endless sequence of shuffled epochs (pass ``steps_per_epoch``); False: one pass
        in array order (validation).
    seed : int
        Seed of the shuffling.
    first_epoch : int
        Epoch of the first batch (a resumed run's completed epochs).
    channel : numpy.ndarray, optional
        ``(n,)`` per-sample value appended to the input as a second, constant channel (the
        standardised log10 distance of the distance-aware mass network).

    Returns
    -------
    tf.data.Dataset
        ``(x (b, H, W, C) float32, y float32)`` batches.
    """
    import tensorflow as tf  # noqa: PLC0415

    n = int(len(x))
    if len(y) != n or (channel is not None and len(channel) != n):
        raise ValueError(f"x, y (and channel) must hold the same number of samples; got {n}, "
                         f"{len(y)}" + ("" if channel is None else f", {len(channel)}"))
    x, y = np.asarray(x), np.asarray(y)
    c = None if channel is None else np.asarray(channel, np.float32)
    batch_size = _positive_int("batch_size", batch_size)
    map_dims = len(y.shape) == 3

    def take(idx):  # numpy fancy indexing: one call per batch, the arrays are never copied
        out = (x[idx], y[idx])
        return out if c is None else (*out, c[idx])

    def gather(idx):
        dtypes = [tf.as_dtype(x.dtype), tf.as_dtype(y.dtype)] + ([] if c is None else
                                                                 [tf.float32])
        parts = tf.numpy_function(take, [idx], dtypes, stateful=False)
        xb = tf.cast(parts[0], tf.float32)[..., None]
        xb.set_shape([None, *x.shape[1:], 1])
        if c is not None:
            cb = tf.reshape(parts[2], [-1, 1, 1, 1]) + tf.zeros_like(xb)
            xb = tf.concat([xb, cb], axis=-1)
        yb = tf.cast(parts[1], tf.float32)
        yb.set_shape([None, *y.shape[1:]])
        return xb, (yb[..., None] if map_dims else yb)

    def epoch_batches(epoch):
        idx = tf.range(n, dtype=tf.int64)
        if shuffle:
            idx = tf.random.experimental.stateless_shuffle(
                idx, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(idx).batch(batch_size)

    if shuffle:
        batches = tf.data.Dataset.range(int(first_epoch), 2**62).flat_map(epoch_batches)
    else:
        batches = epoch_batches(tf.constant(0, tf.int64))
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


@dataclass
class _Data:
    source: Any  # what model.fit receives
    n_samples: int | None
    x_shape: tuple  # per-sample input shape
    y_shape: tuple  # per-sample target shape
    kind: str  # 'arrays', 'pydataset', 'tf.data'


def _shape_tuple(shape):
    return tuple(None if s is None else int(s) for s in shape)


def _as_arrays(name, data, kind):
    if len(data) != 2:
        raise ValueError(f"{name} must be (x, y) arrays, a keras.utils.PyDataset or a "
                         f"tf.data.Dataset; got a {type(data).__name__} of length {len(data)}")
    x, y = (np.asarray(a, dtype=np.float32) for a in data)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(
            f"{name} x must hold flux maps of shape (n, H, W) or (n, H, W, C); got {x.shape}")
    if kind in ("mass", "mass-ml") and y.ndim == 3:
        y = y[..., None]
    if len(x) != len(y):
        raise ValueError(f"{name} x and y hold different numbers of samples: {len(x)} and "
                         f"{len(y)}")
    if len(x) == 0:
        raise ValueError(f"{name} holds no samples")
    for arr, what in ((x, "x"), (y, "y")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} {what} has {int((~np.isfinite(arr)).sum())} NaN/inf "
                             "values; standardised maps must be finite")
    return x, y


def _as_data(name, data, kind, *, batch_size, shuffle, seed):
    if data is None:
        return None
    if isinstance(data, keras.utils.PyDataset):
        if len(data) == 0:
            raise ValueError(f"{name} PyDataset has no batches")
        batch = data[0]
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"{name} PyDataset must yield (x, y) batches; batch 0 is a "
                             f"{type(batch).__name__}")
        x, y = (np.asarray(b) for b in batch[:2])
        return _Data(data, None, _shape_tuple(x.shape[1:]), _shape_tuple(y.shape[1:]),
                     "pydataset")
    try:
        import tensorflow as tf  # noqa: PLC0415

        is_tf = isinstance(data, tf.data.Dataset)
    except ImportError:  # pragma: no cover - TF is a dependency
        is_tf = False
    if is_tf:
        spec = data.element_spec
        if not isinstance(spec, (tuple, list)) or len(spec) < 2:
            raise ValueError(f"{name} tf.data.Dataset must yield (x, y) batches, got {spec}")
        return _Data(data, None, _shape_tuple(spec[0].shape[1:]),
                     _shape_tuple(spec[1].shape[1:]), "tf.data")
    if isinstance(data, (tuple, list)):
        x, y = _as_arrays(name, data, kind)
        source = ArrayBatches(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
        return _Data(source, len(x), _shape_tuple(x.shape[1:]), _shape_tuple(y.shape[1:]),
                     "arrays")
    raise TypeError(f"{name} must be (x, y) arrays, a keras.utils.PyDataset or a "
                    f"tf.data.Dataset, not {type(data).__name__}")


def _check_shapes(name, data, model):
    want_x = _shape_tuple(model.input_shape[1:])
    want_y = _shape_tuple(model.output_shape[1:])
    for got, want, what in ((data.x_shape, want_x, "input maps"), (data.y_shape, want_y,
                                                                     "targets")):
        if len(got) != len(want) or any(g is not None and g != w for g, w in zip(got, want)):
            raise ValueError(
                f"{name} {what} have per-sample shape {got}, but the network takes {want}; "
                "pass an architecture with the matching input_shape (or n_outputs)"
            )


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# helpers of fit
# ---------------------------------------------------------------------------------------------


def _check_kind(kind):
    k = str(kind).replace("_", "-").lower()
    if k not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return k


def _positive_int(name, value, *, allow_zero=False):
    try:
        ok = int(value) == value and (int(value) >= 0 if allow_zero else int(value) >= 1)
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(value, bool):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                         f"integer, got {value!r}")
    return int(value)


def _resolve_architecture(kind, architecture, model, data):
    builder = KINDS[kind]
    if model is not None:
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, not {type(model).__name__}")
        spec = networks.architecture_of(model)
        if spec is None:
            raise ValueError(
                "model has no architecture record: build it with pidoc_core.networks "
                f"({builder}) so that the trained network can be exported and reloaded")
        if architecture is not None:
            raise ValueError("pass either model or architecture, not both")
    elif architecture is None:
        spec = {"builder": builder, "kwargs": {}}
    elif isinstance(architecture, str):
        spec = json.loads(architecture)
    elif isinstance(architecture, dict):
        spec = (dict(architecture) if "builder" in architecture
                else {"builder": builder, "kwargs": dict(architecture)})
    else:
        raise TypeError(f"architecture must be a dict (builder kwargs or an architecture "
                        f"record), not {type(architecture).__name__}")
    if spec.get("builder") not in BUILDERS[kind]:
        raise ValueError(f"a {kind!r} network is built by one of {list(BUILDERS[kind])}, but "
                         f"the architecture names {spec.get('builder')!r}")
    kwargs = dict(spec.get("kwargs", {}))
    if model is None and "input_shape" not in kwargs and None not in data.x_shape:
        kwargs["input_shape"] = list(data.x_shape)
    return {"builder": spec["builder"], "kwargs": kwargs}


def _learning_rate(learning_rate, schedule, *, epochs, steps_per_epoch):
    """Adam's learning rate: a float, or a cosine decay over the whole run with a short warm-up
    (5 % of the steps, at most 300) from 0 to ``learning_rate``, down to 1 % of it at the end."""
    if schedule == "constant":
        return learning_rate
    if steps_per_epoch is None:
        raise ValueError("lr_schedule='cosine' needs the number of steps per epoch: pass "
                         "steps_per_epoch= (or array data, whose size gives it)")
    total = int(epochs) * int(steps_per_epoch)
    warm = min(300, total // 20)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(total - warm, 1), alpha=0.01, warmup_target=learning_rate,
        warmup_steps=warm)


def _make_loss(kind, loss, *, vgg_weights, seed):
    """(loss object, description dict)."""
    if loss is None:
        loss = PAPER_LOSSES[kind]
    if isinstance(loss, str):
        name = loss.lower()
        if name == "perceptual":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                obj = networks.PerceptualLoss(vgg_weights=vgg_weights, seed=seed)
            for w in caught:
                if "random VGG16" not in str(w.message):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if obj.vgg_source.startswith("random"):
                warnings.warn(
                    f"the perceptual loss uses a random VGG16 (vgg_source={obj.vgg_source!r}): "
                    "pass vgg_weights= (ImageNet VGG16 'notop' .h5) to train as the paper did",
                    stacklevel=3,
                )
        elif name in ("mse", "mean_squared_error"):
            obj = keras.losses.MeanSquaredError(name="mse")
            name = "mse"
        else:
            raise ValueError(f"loss must be 'perceptual', 'mse' or a keras.losses.Loss, got "
                             f"{loss!r}")
    elif isinstance(loss, keras.losses.Loss):
        obj = loss
        name = getattr(loss, "name", type(loss).__name__)
    else:
        raise TypeError(f"loss must be 'perceptual', 'mse' or a keras.losses.Loss, not "
                        f"{type(loss).__name__}")
    desc = {"name": name, "class": type(obj).__name__}
    if isinstance(obj, networks.PerceptualLoss):
        desc.update(vgg_source=obj.vgg_source, vgg_weights=obj.vgg_weights,
                    feature_layers=list(obj.feature_layers), vgg_seed=obj.seed)
    return obj, desc


def _resolve_strategy(strategy):
    """A tf.distribute.Strategy or None (default, single device)."""
    if strategy is None:
        return None
    if isinstance(strategy, str):
        s = strategy.lower()
        if s in ("none", "default"):
            return None
        if keras.backend.backend() != "tensorflow":
            if s == "auto":
                return None
            raise ValueError(f"strategy={strategy!r} needs the TensorFlow backend; the backend "
                             f"is {keras.backend.backend()!r}")
        import tensorflow as tf  # noqa: PLC0415

        gpus = tf.config.list_logical_devices("GPU")
        if s == "auto":
            return tf.distribute.MirroredStrategy() if len(gpus) > 1 else None
        if s == "mirrored":
            devices = gpus or tf.config.list_logical_devices("CPU")
            return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
        raise ValueError(f"strategy must be None, 'auto', 'mirrored' or a "
                         f"tf.distribute.Strategy, got {strategy!r}")
    if not hasattr(strategy, "scope"):
        raise TypeError(f"strategy must be None, 'auto', 'mirrored' or a tf.distribute.Strategy,"
                        f" not {type(strategy).__name__}")
    return strategy


def _precision_policy(mixed_precision) -> str:
    """The Keras dtype policy of ``mixed_precision`` (False/None, True, 'float16', 'bfloat16')."""
    if mixed_precision in (None, False):
        return "float32"
    if mixed_precision is True or mixed_precision in ("float16", "mixed_float16"):
        return "mixed_float16"
    if mixed_precision in ("bfloat16", "mixed_bfloat16"):
        return "mixed_bfloat16"
    raise ValueError(f"mixed_precision must be False, True, 'float16' or 'bfloat16', got "
                     f"{mixed_precision!r}")


def _precision_record(policy: str):
    """What checkpoints and manifests record: False, True (float16, as before) or 'bfloat16'."""
    return {"float32": False, "mixed_float16": True, "mixed_bfloat16": "bfloat16"}[policy]


def _float32_output(net, *, mixed):
    """The network itself, or (under mixed precision) a wrapper casting the output to float32."""
    if not mixed or str(net.output.dtype) == "float32":
        return net
    out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(net.output)
    wrapper = keras.Model(net.input, out, name=f"{net.name}_fp32_out")
    return wrapper


def _default_standardisation(kind, train, standardisation):
    if standardisation is None:
        cand = getattr(train, "standardisation", None)
        if isinstance(cand, dict):
            standardisation = cand
    if standardisation is None:
        warnings.warn(
            "no standardisation given: the export assumes the data are physical units "
            "(mean 0, std 1); pass standardisation= with the training-set constants",
            stacklevel=3,
        )
        standardisation = {"flux_mean": 0.0, "flux_std": 1.0}
        if kind == "mass":
            standardisation.update(mass_mean=0.0, mass_std=1.0)
        else:
            standardisation.update(distance_age_mean=0.0, distance_age_std=1.0)
    return {k: (np.asarray(v).tolist()) for k, v in dict(standardisation).items()}


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


def _curves_summary(history):
    out = {}
    if not history:
        return out
    keys = sorted({k for row in history for k in row if k != "epoch"})
    for k in keys:
        vals = [row[k] for row in history if k in row]
        best_fn = np.argmax if k.endswith("r2") else np.argmin
        i = int(best_fn(vals))
        out[k] = {"first": vals[0], "last": vals[-1], "best": vals[i],
                  "best_epoch": int(history[i]["epoch"])}
    return out


def _position_at_epoch(source, epoch):
    """Put a PyDataset that counts epochs (an integer ``epoch`` attribute advanced by
    ``on_epoch_end``, as :class:`ArrayBatches` and ``pidoc_core.dataset.BatchStream``) at
    ``epoch``, so that a resumed run gets the shuffles of an uninterrupted one."""
    if isinstance(source, keras.utils.PyDataset) and isinstance(
            getattr(source, "epoch", None), (int, np.integer)):
        if epoch > 0:
            source.epoch = int(epoch) - 1
            source.on_epoch_end()
        else:
            source.epoch = 0


def _clear_run(out_dir: Path):
    shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(out_dir / LOG_DIR, ignore_errors=True)
    (out_dir / CSV_NAME).unlink(missing_ok=True)


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def fit(
    kind: str,
    train,
    validation=None,
    *,
    out_dir: str | os.PathLike,
    epochs: int,
    model: keras.Model | None = None,
    architecture: dict | None = None,
    learning_rate: float | None = None,
    lr_schedule: str = "constant",
    loss=None,
    vgg_weights: str | os.PathLike | None = None,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    patience: int | None = 20,
    min_delta: float = 0.0,
    resume: bool = True,
    mixed_precision: bool | str = False,
    strategy=None,
    seed: int = 0,
    standardisation: dict | None = None,
    provenance: dict | None = None,
    keep_checkpoints: int = 2,
    export: bool = True,
    callbacks: list | None = None,
    verbose: int | str = "auto",
) -> TrainingResult:
    """Train a pi-DOC network with checkpoints, curves, early stopping and a PiDOC export.

    Parameters
    ----------
    kind : {'mass', 'mass-ml', 'age-distance'}
        ``'mass'``: the encoder-decoder, standardised log10 flux map (H, W, 1) -> standardised
        log10 mass map (H, W, 1). ``'mass-ml'``: the distance-aware network, standardised flux
        and log10 distance (H, W, 2) -> standardised log10 M/L_V per pixel (H, W, 1).
        ``'age-distance'``: the CNN, flux map -> ``(2,)`` standardised ``[distance, age]``.
    train, validation : (x, y) arrays, keras.utils.PyDataset or tf.data.Dataset
        Standardised data. Arrays: ``x`` of shape (n, H, W) or (n, H, W, 1), ``y`` of shape
        (n, H, W[, 1]) (mass) or (n, 2) (age-distance); they are batched by ``batch_size`` and
        the training set reshuffled every epoch from ``(seed, epoch)``. A PyDataset or
        tf.data.Dataset yields ``(x, y)`` batches and does its own batching and shuffling.
        Without ``validation``, early stopping and the best weights follow the training loss.
    out_dir : path-like
        Run directory (checkpoints, CSV and TensorBoard logs, export); see the module docstring.
    epochs : int
        Total number of epochs of the run, counting epochs already in a resumed checkpoint.
    model : keras.Model, optional
        Initial network, built by :mod:`pidoc_core.networks` (its architecture record is needed
        for the export); it is rebuilt from that record under the strategy/precision in use and
        its weights copied. Ignored when resuming from a checkpoint (checkpoint weights win).
    architecture : dict, optional
        Keyword arguments of the kind's builder (e.g. ``{"filters": (4, 8, 8, 8)}``) or a full
        record ``{"builder": ..., "kwargs": ...}``. Default: the paper's network, with
        ``input_shape`` taken from the data.
    learning_rate : float, optional
        Adam learning rate; default the paper's (10^-2.5 for 'mass', 10^-4 for 'age-distance';
        10^-3 for 'mass-ml'); with a schedule, its peak.
    lr_schedule : {'constant', 'cosine'}
        'cosine': a short linear warm-up, then a cosine decay to 1 % over ``epochs`` (the total
        of the run, so a resumed run continues the same schedule).
    loss : {'perceptual', 'mse'} or keras.losses.Loss, optional
        Default the paper's: 'perceptual' (VGG16 features, Appendix A) for 'mass', 'mse' for
        'age-distance'.
    vgg_weights : path-like, optional
        ImageNet VGG16 weights for the perceptual loss (see
        :class:`pidoc_core.networks.PerceptualLoss`); without them and without Keras's cache a
        fixed random VGG16 is used (with a warning) and recorded as ``vgg_source``.
    batch_size : int
        Samples per step for array data (the global batch, split across replicas).
    steps_per_epoch : int, optional
        Steps per epoch, if not a full pass over the training data.
    patience : int or None
        Epochs without improvement of ``val_loss`` (more than ``min_delta``) before stopping;
        ``None``: never stop early. The best weights are restored either way.
    min_delta : float
        Minimum decrease of the monitored loss counted as an improvement.
    resume : bool
        Continue from the last checkpoint in ``out_dir`` if there is one (same kind,
        architecture, loss and learning rate, else :class:`TrainingError`); if False, earlier
        checkpoints, CSV and TensorBoard logs of ``out_dir`` are deleted.
    mixed_precision : bool or {'float16', 'bfloat16'}
        Train the network under the ``mixed_float16`` policy (True or 'float16': GPUs; dynamic
        loss scaling) or ``mixed_bfloat16`` ('bfloat16': CPUs with AVX512-BF16/AMX), with a
        float32 output and the loss in float32; the exported network is float32. The global
        policy is restored afterwards.
    strategy : None, 'auto', 'mirrored' or tf.distribute.Strategy
        ``None``: default device. ``'auto'``: ``MirroredStrategy`` over all GPUs if more than
        one is visible, else default. ``'mirrored'``: ``MirroredStrategy`` over all GPUs, or all
        logical CPUs without GPUs. TensorFlow backend only.
    seed : int
        Seed of weight initialisation (``keras.utils.set_random_seed``), of dropout and of the
        shuffling of array data, and of the random VGG16 fallback.
    standardisation : dict, optional
        Constants the data were standardised with (``flux_mean``, ``flux_std`` in log10 Lsun
        kpc^-2; ``mass_mean``, ``mass_std`` in log10 Msun; ``distance_age_mean``,
        ``distance_age_std`` for [kpc, Gyr]), written to the export. Default: a
        ``standardisation`` dict attribute of ``train``, else identity (with a warning).
    provenance : dict, optional
        Description of the training data (dataset path, version, checksums, splits), stored in
        the manifest under ``training.data``.
    keep_checkpoints : int
        Number of most recent checkpoints kept.
    export : bool
        Save a :class:`~pidoc_core.model.PiDOC` to ``out_dir/model`` at the end.
    callbacks : list of keras.callbacks.Callback, optional
        More callbacks, run after the built-in ones (early stopping, checkpoint, CSV, TensorBoard).
    verbose : 'auto', 0, 1 or 2
        Progress output of ``keras.Model.fit`` (1: progress bar, 2: one line per epoch).

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError
        Unknown kind, ``epochs`` < 1, bad options, data whose shapes do not fit the network.
    TrainingError
        A checkpoint in ``out_dir`` from a different kind, architecture, loss or learning rate.

    Examples
    --------
    >>> res = fit("age-distance", (x_train, y_train), (x_val, y_val),  # doctest: +SKIP
    ...           out_dir="runs/cnn", epochs=200, standardisation=consts)
    >>> res.best["val_r2"], res.export_dir  # doctest: +SKIP
    (0.98, PosixPath('runs/cnn/model'))
    """
    t_start = time.perf_counter()
    kind = _check_kind(kind)
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    seed = _positive_int("seed", seed, allow_zero=True)
    keep_checkpoints = _positive_int("keep_checkpoints", keep_checkpoints)
    if steps_per_epoch is not None:
        steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
    if patience is not None:
        patience = _positive_int("patience", patience, allow_zero=True)
    if learning_rate is None:
        learning_rate = PAPER_LEARNING_RATES[kind]
    learning_rate = float(learning_rate)
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if provenance is not None and not isinstance(provenance, dict):
        raise TypeError(f"provenance must be a dict, not {type(provenance).__name__}")
    out_dir = Path(out_dir)

    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {lr_schedule!r}")
    train_data = _as_data("train", train, kind, batch_size=batch_size, shuffle=True, seed=seed)
    if train_data is None:
        raise ValueError("train data are required")
    steps = steps_per_epoch or (math.ceil(train_data.n_samples / batch_size)
                                if train_data.n_samples else None)
    val_data = _as_data("validation", validation, kind, batch_size=batch_size, shuffle=False,
                        seed=seed)
    spec = _resolve_architecture(kind, architecture, model, train_data)
    standardisation = _default_standardisation(kind, train, standardisation)
    strategy = _resolve_strategy(strategy)
    scope = strategy.scope if strategy is not None else contextlib.nullcontext

    keras.utils.set_random_seed(seed)
    policy = _precision_policy(mixed_precision)
    old_policy = keras.mixed_precision.global_policy()
    try:
        if policy != "float32":
            keras.mixed_precision.set_global_policy(policy)
        with scope():
            try:
                net = networks.build_network(spec)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cannot build the {kind!r} network from {spec}: {exc}") from exc
            if model is not None:
                net.set_weights(model.get_weights())
            train_model = _float32_output(net, mixed=policy != "float32")
    finally:
        keras.mixed_precision.set_global_policy(old_policy)

    _check_shapes("train", train_data, train_model)
    if val_data is not None:
        _check_shapes("validation", val_data, train_model)

    with scope():
        loss_obj, loss_desc = _make_loss(kind, loss, vgg_weights=vgg_weights, seed=seed)
        train_model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=_learning_rate(
                learning_rate, lr_schedule, epochs=epochs, steps_per_epoch=steps)),
            loss=loss_obj,
            metrics=[keras.metrics.MeanSquaredError(name="mse"), networks.R2Score(name="r2")],
        )
        train_model.optimizer.build(train_model.trainable_variables)

    meta = {
        "format": _CKPT_FORMAT,
        "format_version": _CKPT_VERSION,
        "kind": kind,
        "architecture": spec,
        "loss": {k: loss_desc[k] for k in ("name", "class")},
        "learning_rate": learning_rate,
        "lr_schedule": lr_schedule,
        "mixed_precision": _precision_record(policy),
        "rng": {
            "seed": seed,
            "initialisation": "keras.utils.set_random_seed(seed) before building the network",
            "shuffle": "numpy.random.default_rng([seed, epoch]).permutation (array data)",
            "dropout": "Keras SeedGenerator states, saved with the model variables",
        },
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
    }

    # ---- checkpoint to resume from (only now that every argument is checked) ----
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = latest_checkpoint(out_dir) if resume else None
    if not resume:
        _clear_run(out_dir)
    ckpt_meta = read_checkpoint_metadata(ckpt_path) if ckpt_path is not None else None
    for stale in (out_dir / CHECKPOINT_DIR).glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # left by a run killed while writing

    # ---- restore ----
    history: list = []
    initial_epoch = 0
    es_state = None
    previously_stopped = False
    if ckpt_meta is not None:
        for key in ("kind", "architecture", "loss", "learning_rate", "mixed_precision",
                    "lr_schedule"):
            if not _same(ckpt_meta.get(key, "constant" if key == "lr_schedule" else None),
                         meta[key]):
                raise TrainingError(
                    f"{ckpt_path} was written by a run with {key}={ckpt_meta.get(key)!r}, this "
                    f"run has {key}={meta[key]!r}: pass the same settings to resume, or "
                    "resume=False (deletes the run's checkpoints and logs) or another out_dir"
                )
        with np.load(ckpt_path, allow_pickle=False) as z:
            model_arrays = _load_arrays(z, "model_")
            optim_arrays = _load_arrays(z, "optim_")
            best_arrays = _load_arrays(z, "best_")
        with scope():
            _assign_all(train_model.variables, model_arrays, "model variable", ckpt_path)
            _assign_all(train_model.optimizer.variables, optim_arrays, "optimizer variable",
                        ckpt_path)
        initial_epoch = int(ckpt_meta["epoch"])
        history = list(ckpt_meta.get("history", []))
        es = ckpt_meta.get("early_stopping", {})
        best_epoch = es.get("best_epoch", initial_epoch - 1)
        if best_arrays:
            best_weights = best_arrays
        else:  # the last checkpointed epoch was the best
            best_weights = train_model.get_weights() if best_epoch == initial_epoch - 1 else None
        es_state = {"best": es.get("best"), "best_epoch": best_epoch, "wait": es.get("wait", 0),
                    "best_weights": best_weights}
        previously_stopped = bool(ckpt_meta.get("stopped", False))
        if verbose:
            print(f"pidoc training: resuming {kind!r} from {ckpt_path.name} at epoch "
                  f"{initial_epoch + 1}/{epochs}", flush=True)
    _position_at_epoch(train_data.source, initial_epoch)

    monitor = "val_loss" if val_data is not None else "loss"
    stopper = _PlateauStopping(
        monitor=monitor, mode="min", min_delta=float(min_delta),
        patience=epochs if patience is None else patience, restore_best_weights=True,
        resume_state=es_state,
    )
    csv_path = out_dir / CSV_NAME
    _rewrite_csv(csv_path, history)
    checkpointer = _Checkpointer(out_dir=out_dir, meta=meta, history=history, stopper=stopper,
                                 keep=keep_checkpoints)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        stopper,
        checkpointer,
        keras.callbacks.CSVLogger(str(csv_path), append=True),
        _ScalarSummaries(out_dir / LOG_DIR),
        *(callbacks or []),
    ]

    epochs_before = len(history)
    t_fit = time.perf_counter()
    ran = initial_epoch < epochs and not previously_stopped
    if ran:
        train_model.fit(
            train_data.source,
            validation_data=None if val_data is None else val_data.source,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # arrays are shuffled by ArrayBatches; datasets shuffle themselves
            callbacks=callbacks,
            verbose=verbose,
        )
        best_epoch = int(stopper.best_epoch) if history else -1
        stopped_early = stopper.stopped_epoch > 0
    else:
        if verbose:
            reason = "stopped early" if previously_stopped else f"completed {initial_epoch} epochs"
            print(f"pidoc training: nothing to train ({reason}); exporting", flush=True)
        if es_state and es_state["best_weights"] is not None:
            train_model.set_weights(es_state["best_weights"])
        best_epoch = int(es_state["best_epoch"]) if es_state else -1
        stopped_early = previously_stopped
    fit_seconds = time.perf_counter() - t_fit
    epochs_run = len(history) - epochs_before

    # ---- best epoch and a plain float32 copy of the best network ----
    best_row = next((dict(r) for r in history if r["epoch"] == best_epoch), {})
    best_row.pop("epoch", None)
    final = networks.build_network(spec)
    final.set_weights([np.asarray(w, dtype=np.float32) for w in net.get_weights()])

    training = {
        "kind": kind,
        "network": _ROLES[kind],
        "loss": loss_desc,
        "vgg_source": loss_desc.get("vgg_source"),
        "optimizer": {"name": "Adam", "learning_rate": learning_rate,
                      "schedule": lr_schedule},
        "metrics": ["mse", "r2 (paper eq. 1)"],
        "batch_size": (batch_size if train_data.kind in ("arrays", "tf.data")
                       else getattr(train_data.source, "batch_size", None)),
        "steps_per_epoch": steps_per_epoch,
        "epochs_requested": epochs,
        "epochs_completed": len(history),
        "resumed_from_epoch": initial_epoch if ckpt_meta is not None else None,
        "stopped_early": bool(stopped_early),
        "early_stopping": {"monitor": monitor, "patience": patience, "min_delta": min_delta},
        "best_epoch": best_epoch,
        "best": best_row,
        "curves_summary": _curves_summary(history),
        "curves": {k: [row.get(k) for row in history]
                   for k in sorted({k for row in history for k in row})},
        "seed": seed,
        "mixed_precision": _precision_record(policy),
        "strategy": None if strategy is None else {
            "class": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync)},
        "train_samples": train_data.n_samples,
        "validation_samples": None if val_data is None else val_data.n_samples,
        "seconds_this_call": round(time.perf_counter() - t_start, 3),
        "seconds_per_epoch_this_call": (round(fit_seconds / epochs_run, 3)
                                        if epochs_run else None),
        "data": dict(provenance or {}),
        "log_csv": CSV_NAME,
        "tensorboard_logs": LOG_DIR,
    }

    pidoc = None
    export_dir = None
    if export:
        role = _ROLES[kind]
        pidoc = PiDOC(
            **{f"{role}_network": final},
            standardisation=standardisation,
            # what users of the model need at prediction time (the constant-M/L baseline, the
            # training conditions for range checks) travels in its provenance; the rest of the
            # data description stays in the manifest's training entry
            provenance={"source": f"pidoc_core.training.fit ({kind})",
                        "run_dir": str(out_dir.resolve()),
                        **{k: (provenance or {})[k] for k in _PREDICTION_PROVENANCE
                           if k in (provenance or {})}},
        )
        export_dir = pidoc.save(out_dir / EXPORT_DIR, manifest_extra={"training": training},
                                overwrite=True)
        if verbose:
            print(f"pidoc training: exported {export_dir} (best epoch {best_epoch + 1}, "
                  + ", ".join(f"{k}={v:.4g}" for k, v in best_row.items()) + ")", flush=True)
    return TrainingResult(
        model=final,
        pidoc=pidoc,
        export_dir=export_dir,
        history=list(history),
        initial_epoch=initial_epoch,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        best=best_row,
        stopped_early=bool(stopped_early),
        training=training,
    )


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``pidoc train`` to a (sub-)parser; returns it.

    ``pidoc train mass|age-distance --dataset DIR --out DIR [--validation STORE] [--epochs N]
    [--batch-size B]
    [--filters F ...] [--learning-rate LR] [--patience P] [--seed S] [--resume]
    [--mixed-precision] [--strategy auto|none|mirrored] [--vgg-weights PATH]``. Set
    ``func=run_train`` on it (``parser.set_defaults(func=run_train)``).
    """
    parser.add_argument("kind", choices=sorted(KINDS), help="network to train")
    parser.add_argument("--dataset", required=True,
                        help="directory of split stores (train.zarr, val.zarr) written by "
                             "pidoc_core.dataset.build_splits, or one training store")
    parser.add_argument("--validation", default=None,
                        help="validation store (default: val.zarr next to train.zarr)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--epochs", type=int, default=200, help="total epochs (default 200)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--filters", type=int, nargs="+", default=None,
                        help="filters per encoder level (mass; the bottleneck takes the last) "
                             "or per convolution block (age-distance; 4 blocks with the "
                             "paper's kernel sizes); default: the paper's network")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam learning rate (default: the paper's, 10^-2.5 for mass, "
                             "10^-4 for age-distance)")
    parser.add_argument("--patience", type=int, default=20,
                        help="epochs without validation improvement before stopping")
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in --out")
    parser.add_argument("--mixed-precision", nargs="?", const="float16", default=None,
                        choices=("float16", "bfloat16"),
                        help="mixed precision: float16 (GPUs; the default of the bare flag) or "
                             "bfloat16 (CPUs with AVX512-BF16/AMX: ~1.7x faster steps here)")
    parser.add_argument("--strategy", default="auto", choices=("auto", "none", "mirrored"),
                        help="auto: MirroredStrategy when several GPUs are visible")
    parser.add_argument("--vgg-weights", default=None,
                        help="ImageNet VGG16 'notop' .h5 for the perceptual loss")
    parser.add_argument("--builder", default=None,
                        choices=sorted({b for v in BUILDERS.values() for b in v}),
                        help="network builder (default: the paper's network for mass and "
                             "age-distance, build_mass_unet for mass-ml)")
    parser.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES,
                        help="constant (the paper) or cosine decay over --epochs with warm-up")
    parser.add_argument("--loss", default=None, choices=("perceptual", "mse"),
                        help="default: the paper's (perceptual for mass, MSE for age-distance)")
    parser.add_argument("--init-from", default=None,
                        help="start from the weights of a saved pi-DOC model directory or of the "
                             "authors' v0.1 release (fine-tuning); its standardisation is kept")
    parser.add_argument("--flux-standardisation-from", default=None,
                        help="take the input (flux) standardisation from a saved model or a v0.1 "
                             "release instead of the training set, so that networks trained "
                             "separately can be shipped together")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    return parser


#: kind -> (input maps, target, extra constant input channel) of dataset.load_arrays.
_ARRAY_ROLES = {"mass": ("flux", "mass", None), "mass-ml": ("flux", "ml", "log_distance"),
                "age-distance": ("flux", "distance_age", None)}


@dataclass(frozen=True)
class _Start:
    network: Any
    standardisation: dict


def _initial_network(path, kind) -> _Start:
    """The network of ``kind`` and its standardisation from a saved model or a v0.1 release."""
    start = open_model(path)
    network = getattr(start, f"{_ROLES[kind]}_network")
    if network is None:
        raise TrainingError(f"--init-from {path}: holds no {kind} network")
    keys = {"mass": ("flux_mean", "flux_std", "mass_mean", "mass_std"),
            "mass-ml": ("flux_mean", "flux_std", "ml_mean", "ml_std", "log_distance_mean",
                        "log_distance_std"),
            "age-distance": ("flux_mean", "flux_std", "distance_age_mean",
                             "distance_age_std")}[kind]
    return _Start(network, {k: start.standardisation.get(k) for k in keys})


def _training_grid(ds) -> dict:
    """Training conditions of a dataset in the form of pidoc_core.exploration.TRAINING_GRID."""
    return {
        "distance_kpc": sorted({float(v) for v in np.unique(ds.distance.values)}),
        "psf_fwhm_arcsec": sorted({float(v) for v in np.unique(ds.psf_fwhm.values)}),
        "shift_max_arcsec": float(max(np.abs(ds.shift_x.values).max(),
                                      np.abs(ds.shift_y.values).max())),
        "rotations_deg": sorted({float(v) for v in np.unique(ds.rotation.values)}),
        "time_gyr": [float(ds.time.values.min()), float(ds.time.values.max())],
    }


def _dataset_stores(path, validation=None):
    """(train store, validation store or None) for ``--dataset`` / ``--validation``.

    ``path`` is a directory of split stores written by
    :func:`pidoc_core.dataset.build_splits` (``train.zarr``, ``val.zarr``, ...) or one store.
    """
    path = Path(path)
    if (path / "train.zarr").exists():
        train = path / "train.zarr"
        if validation is None and (path / "val.zarr").exists():
            validation = path / "val.zarr"
    elif path.exists():
        train = path
    else:
        raise FileNotFoundError(f"dataset {path} does not exist")
    return train, (None if validation is None else Path(validation))


def run_train(args) -> int:
    """Run ``pidoc train`` from parsed arguments (see :func:`add_train_arguments`)."""
    out = Path(args.out)
    if not args.resume and latest_checkpoint(out) is not None:
        raise SystemExit(f"pidoc train: {out} holds checkpoints of an earlier run; pass --resume "
                         "to continue it or choose another --out")
    from . import dataset as dsmod  # noqa: PLC0415 - heavy, only for this command

    train_path, val_path = _dataset_stores(args.dataset, getattr(args, "validation", None))
    train_ds = dsmod.open_dataset(train_path)
    val_ds = None if val_path is None else dsmod.open_dataset(val_path)
    consts = dsmod.standardisation(train_ds)
    init_model = None
    if getattr(args, "init_from", None):
        start = _initial_network(args.init_from, args.kind)
        init_model = start.network
        # the starting weights expect their own standardisation: keep it where it is defined
        consts = {**consts, **{k: v for k, v in start.standardisation.items()
                               if v is not None}}

    if getattr(args, "flux_standardisation_from", None):
        source = Path(args.flux_standardisation_from)
        ref = open_model(source)
        consts = {**consts, "flux_mean": ref.standardisation["flux_mean"],
                  "flux_std": ref.standardisation["flux_std"]}
    first_epoch = 0
    if args.resume and latest_checkpoint(out) is not None:
        first_epoch = int(read_checkpoint_metadata(latest_checkpoint(out))["epoch"])
    x_name, y_name, channel = _ARRAY_ROLES[args.kind]
    needed = [x_name, y_name] + ([channel] if channel else [])

    def pipeline(ds, shuffle):
        arrays = dsmod.load_arrays(ds, standardisation=consts, targets=needed)
        data = array_pipeline(arrays[x_name], arrays[y_name], batch_size=args.batch_size,
                              shuffle=shuffle, seed=args.seed, first_epoch=first_epoch,
                              channel=None if channel is None else arrays[channel])
        return data, arrays

    train_data, train_arrays = pipeline(train_ds, True)
    val_data = None if val_ds is None else pipeline(val_ds, False)[0]
    steps = args.steps_per_epoch or math.ceil(len(train_arrays[x_name]) / args.batch_size)

    provenance = {"train": str(train_path.resolve()),
                  "validation": None if val_path is None else str(val_path.resolve())}
    for role, p in (("train_info", train_path), ("validation_info", val_path)):
        if p is not None and hasattr(dsmod, "dataset_info"):
            info = dsmod.dataset_info(p)
            provenance[role] = json.loads(json.dumps(info, default=str))
    if getattr(args, "init_from", None):
        provenance["initialised_from"] = str(Path(args.init_from).resolve())
    # the constant-M/L baseline (evaluation, dashboard) and the range checks need these
    provenance["training_mass_to_light"] = float(dsmod.training_mass_to_light(train_ds))
    provenance["training_grid"] = _training_grid(train_ds)
    builder = getattr(args, "builder", None) or KINDS[args.kind]
    architecture = {"builder": builder, "kwargs": {}}
    if args.filters:
        architecture["kwargs"]["filters"] = list(args.filters)
        if builder == "build_encoder_decoder":  # the paper's bottleneck: the last level's
            architecture["kwargs"]["bottleneck_filters"] = int(args.filters[-1])
    if init_model is None:
        architecture["kwargs"]["input_shape"] = [*train_arrays[x_name].shape[1:],
                                                 1 if channel is None else 2]
    result = fit(
        args.kind,
        train_data,
        val_data,
        out_dir=out,
        epochs=args.epochs,
        model=init_model,
        architecture=None if init_model is not None else architecture,
        learning_rate=args.learning_rate,
        lr_schedule=getattr(args, "lr_schedule", "constant"),
        loss=getattr(args, "loss", None),
        vgg_weights=args.vgg_weights,
        batch_size=args.batch_size,
        steps_per_epoch=steps,
        patience=args.patience,
        resume=args.resume,
        mixed_precision=args.mixed_precision,
        strategy=args.strategy,
        seed=args.seed,
        standardisation=consts,
        provenance=provenance,
        verbose=args.verbose,
    )
    print(f"best epoch {result.best_epoch + 1}: "
          + ", ".join(f"{k}={v:.4g}" for k, v in result.best.items()))
    print(f"model: {result.export_dir}")
    return 0
