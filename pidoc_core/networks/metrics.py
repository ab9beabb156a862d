"""The metrics of the paper's Sect. 3.2: :func:`r2_score` (eq. 1), :class:`R2Score`, :func:`mse`."""

from __future__ import annotations

import keras
import numpy as np  # noqa: F401 - the examples use it
from keras import ops

__all__ = ["r2_score", "R2Score", "mse"]


def r2_score(y_true, y_pred):
    """Coefficient of determination of the paper's eq. (1) over all elements of a batch.

    ``R^2 = 1 - sum((y_pred - y_true)^2) / sum((y_true - mean(y_true))^2)``, the sums and the mean
    running over every element (samples, pixels and outputs). Usable as a Keras metric function
    (Keras averages the per-batch values over an epoch; :class:`R2Score` gives the exact
    dataset-wide value).

    Parameters
    ----------
    y_true, y_pred : array-like or tensor
        Same shape, any units (the ratio is dimensionless).

    Returns
    -------
    scalar tensor

    Examples
    --------
    >>> float(r2_score(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])))
    1.0
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), y_true.dtype)
    ss_res = ops.sum(ops.square(y_pred - y_true))
    ss_tot = ops.sum(ops.square(y_true - ops.mean(y_true)))
    return 1.0 - ss_res / ops.maximum(ss_tot, keras.config.epsilon())


def mse(y_true, y_pred):
    """Mean squared error per sample (mean over all non-batch axes), as in the paper's Sect. 3.2.

    Examples
    --------
    >>> np.asarray(mse(np.zeros((2, 3)), np.ones((2, 3)))).tolist()
    [1.0, 1.0]
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), y_true.dtype)
    sq = ops.square(y_pred - y_true)
    if len(sq.shape) < 2:
        return sq
    return ops.mean(sq, axis=tuple(range(1, len(sq.shape))))


@keras.saving.register_keras_serializable(package="pidoc")
class R2Score(keras.metrics.Metric):
    """Stateful eq. (1) R^2 over every element seen since the last reset (all batches).

    Accumulates ``sum((pred - true)^2)``, ``sum(true)``, ``sum(true^2)`` and the element count,
    with ``sum((true - mean)^2) = sum(true^2) - sum(true)^2 / n``.

    Examples
    --------
    >>> m = R2Score()
    >>> m.update_state(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    >>> round(float(m.result()), 3)
    0.5
    """

    def __init__(self, name="r2", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ss_res = self.add_variable(shape=(), initializer="zeros", name="ss_res")
        self.sum_y = self.add_variable(shape=(), initializer="zeros", name="sum_y")
        self.sum_y2 = self.add_variable(shape=(), initializer="zeros", name="sum_y2")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.convert_to_tensor(y_true), self.dtype)
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        self.ss_res.assign_add(ops.sum(ops.square(y_pred - y_true)))
        self.sum_y.assign_add(ops.sum(y_true))
        self.sum_y2.assign_add(ops.sum(ops.square(y_true)))
        self.count.assign_add(ops.cast(ops.size(y_true), self.dtype))

    def result(self):
        n = ops.maximum(self.count, 1.0)
        ss_tot = self.sum_y2 - ops.square(self.sum_y) / n
        return 1.0 - self.ss_res / ops.maximum(ss_tot, keras.config.epsilon())

    def reset_state(self):
        for v in (self.ss_res, self.sum_y, self.sum_y2, self.count):
            v.assign(0.0)
