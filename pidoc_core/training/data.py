"""Training data: in-memory arrays batched and reshuffled per epoch (:class:`ArrayBatches`,
:func:`array_pipeline`) and the checks that turn ``train``/``validation`` into what ``fit`` needs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ._common import _positive_int

__all__ = ["ArrayBatches", "array_pipeline", "AUGMENTATIONS", "LUMINOSITY_AUGMENT_DEX"]

#: Augmentations of :func:`array_pipeline`.
AUGMENTATIONS = ("none", "dihedral", "luminosity", "dihedral+luminosity")
#: Half-width of the 'luminosity' augmentation, dex: each map stands for a cluster with up to
#: 10^0.3 = 2 times more or fewer stars of the same structure and age.
LUMINOSITY_AUGMENT_DEX = 0.3


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
                   first_epoch: int = 0, channel=None, augment: str = "none",
                   luminosity_per_dex=None):
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
    augment : {'none', 'dihedral', 'luminosity', 'dihedral+luminosity'}
        With ``shuffle`` only; drawn from generators seeded with ``(seed, epoch, batch)``, so a
        resumed run sees the batches an uninterrupted one would.
        'dihedral': each batch is turned by one of the 8 symmetries of the square (quarter
        turns, with or without a mirror flip), the same for the inputs and map targets. A map's
        true mass, age and distance do not change under them; the networks then need not learn
        the orientations themselves.
        'luminosity': each map becomes that of a cluster with 10^u times as many stars of the
        same structure, age and distance, u uniform in +-:data:`LUMINOSITY_AUGMENT_DEX`: log
        flux and log mass grow by u, M/L, age and distance stay. The number of stars is what
        differs most between clusters and the image alone cannot tell it from youth, so a
        network cannot learn a training run's brightness as its age. To first order only: the
        map's relative graininess stays that of the original number of stars.
    luminosity_per_dex : (float, float), optional
        With 'luminosity': the change of the standardised input and target per dex of u
        (``1 / flux_std``; ``1 / mass_std`` for mass maps, 0 for M/L maps, ages and distances).

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
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {list(AUGMENTATIONS)}, got {augment!r}")
    turns, brighten = "dihedral" in augment, "luminosity" in augment
    if brighten:
        try:
            x_per_dex, y_per_dex = (float(v) for v in luminosity_per_dex)
        except (TypeError, ValueError):
            raise ValueError("augment='luminosity' needs luminosity_per_dex=(input, target) "
                             f"changes per dex, got {luminosity_per_dex!r}") from None
    map_dims = len(y.shape) == 3

    def take(idx):  # numpy fancy indexing: one call per batch, the arrays are never copied
        out = (x[idx], y[idx])
        return out if c is None else (*out, c[idx])

    def dihedral(key, xb, yb):
        t = tf.random.stateless_uniform([], seed=tf.stack([key[0] * 1_000_003 + key[1], key[2]]),
                                        minval=0, maxval=8, dtype=tf.int32)
        turn = (lambda a: tf.image.rot90(a, k=t % 4))
        flip = (lambda a: tf.cond(t >= 4, lambda: tf.image.flip_left_right(a), lambda: a))
        return flip(turn(xb)), (flip(turn(yb)) if map_dims else yb)

    def luminosity(key, xb, yb):
        u = tf.random.stateless_uniform(
            tf.shape(xb)[:1], seed=tf.stack([key[0] * 1_000_003 + key[1], key[2] + 2**40]),
            minval=-LUMINOSITY_AUGMENT_DEX, maxval=LUMINOSITY_AUGMENT_DEX)
        flux_only = tf.one_hot(0, tf.shape(xb)[-1])  # the distance channel does not change
        xb = xb + (x_per_dex * u)[:, None, None, None] * flux_only
        shape = tf.concat([tf.shape(u), tf.ones([tf.rank(yb) - 1], tf.int32)], 0)
        return xb, yb + tf.reshape(y_per_dex * u, shape)

    def augmented(key, xb, yb):
        if brighten:
            xb, yb = luminosity(key, xb, yb)
        return dihedral(key, xb, yb) if turns else (xb, yb)

    def gather(idx, key=None):
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
        yb = yb[..., None] if map_dims else yb
        return (xb, yb) if key is None else augmented(key, xb, yb)

    def epoch_batches(epoch):
        idx = tf.range(n, dtype=tf.int64)
        if shuffle:
            idx = tf.random.experimental.stateless_shuffle(
                idx, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        batches = tf.data.Dataset.from_tensor_slices(idx).batch(batch_size)
        if shuffle and augment != "none":
            batches = batches.enumerate().map(
                lambda b, i: (i, tf.stack([tf.constant(seed, tf.int64), epoch, b])))
        return batches

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
