"""π-DOC Explorer's compact networks, trained on a CPU: :func:`build_mass_unet` (flux [+ log10
distance] -> mass or M/L map) and :func:`build_age_distance_net`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from .registry import _int_tuple, _record, _register

__all__ = ["build_mass_unet", "build_age_distance_net"]


def _cbr(x, filters, *, name):
    """3x3 'same' convolution (no bias), batch normalisation, ReLU."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _check_pool(pool, input_shape, levels):
    (pool,) = _int_tuple("pool", [pool])
    if any(s % (pool * 2 ** (levels - 1)) for s in input_shape[:2]):
        raise ValueError(f"input_shape {input_shape!r}: height and width must be divisible by "
                         f"pool x 2**(levels - 1) = {pool * 2 ** (levels - 1)}")
    return pool


@_register
def build_mass_unet(
    *,
    filters: Sequence[int] = (16, 32, 64, 64),
    pool: int = 2,
    input_shape: Sequence[int] = (160, 160, 1),
    name: str = "pidoc_mass_unet",
) -> keras.Model:
    """A compact U-Net for mass maps, trained on a CPU (π-DOC Explorer's recipe).

    The maps are smoothed with a sigma = 4 px Gaussian, so the network works at ``1/pool`` of the
    map's resolution: 2x2 average pooling of the input, a U-Net (two 3x3 convolution + batch
    normalisation + ReLU blocks per level, max pooling down, bilinear upsampling up with skip
    connections), a linear 1x1 convolution and a bilinear upsampling back to the map size.

    With one input channel (the standardised log10 flux map) it is the paper's task, flux ->
    log10 mass; with two (flux and a constant map of the standardised log10 distance) it is the
    distance-aware task, flux + distance -> log10 M/L_V per pixel (see
    :mod:`pidoc_core.model`).

    Parameters
    ----------
    filters : sequence of int
        Filters per level, from the finest (``H/pool``) to the bottleneck.
    pool : int
        Average-pooling factor of the input (the internal resolution is ``H/pool``).
    input_shape : sequence of int
        ``(height, width, channels)``.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        ``(batch, H, W, C)`` -> ``(batch, H, W, 1)`` standardised target map, linear.

    Examples
    --------
    >>> net = build_mass_unet(filters=(4, 8), input_shape=(32, 32, 2))
    >>> net.output_shape
    (None, 32, 32, 1)
    """
    kwargs = dict(filters=filters, pool=pool, input_shape=input_shape, name=name)
    filters = _int_tuple("filters", filters, min_len=2)
    input_shape = _int_tuple("input_shape", input_shape, min_len=3)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    pool = _check_pool(pool, input_shape, len(filters))
    inputs = keras.Input(shape=input_shape, name="flux")
    x = layers.AveragePooling2D(pool, name="pool_in")(inputs) if pool > 1 else inputs
    skips = []
    for i, f in enumerate(filters[:-1], start=1):
        x = _cbr(_cbr(x, f, name=f"enc{i}a"), f, name=f"enc{i}b")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
    x = _cbr(_cbr(x, filters[-1], name="mid_a"), filters[-1], name="mid_b")
    for i in range(len(filters) - 1, 0, -1):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{i}_up")(x)
        x = layers.Concatenate(name=f"dec{i}_skip")([x, skips[i - 1]])
        f = filters[i - 1]
        x = _cbr(_cbr(x, f, name=f"dec{i}a"), f, name=f"dec{i}b")
    x = layers.Conv2D(1, 1, activation="linear", name="map")(x)
    if pool > 1:
        x = layers.UpSampling2D(pool, interpolation="bilinear", name="up_out")(x)
    model = keras.Model(inputs, x, name=name)
    return _record(model, "build_mass_unet", kwargs)


@_register
def build_age_distance_net(
    *,
    filters: Sequence[int] = (16, 32, 64, 96),
    dense_units: int = 64,
    pool: int = 2,
    n_outputs: int = 2,
    input_shape: Sequence[int] = (160, 160, 1),
    name: str = "pidoc_age_distance_net",
) -> keras.Model:
    """A compact CNN for ``[distance, age]``, trained on a CPU (π-DOC Explorer's recipe).

    2x2 average pooling of the input (the maps are smoothed with sigma = 4 px), then per level two
    3x3 convolution + batch normalisation + ReLU blocks and 2x2 max pooling; global average and
    global max pooling of the last level (concatenated), a dense ReLU layer and a linear output.

    Parameters
    ----------
    filters : sequence of int
        Filters per level.
    dense_units : int
        Units of the hidden dense layer.
    pool : int
        Average-pooling factor of the input.
    n_outputs : int
        Outputs; 2 for standardised ``[distance, age]``.
    input_shape : sequence of int
        ``(height, width, channels)``.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        ``(batch, H, W, C)`` -> ``(batch, n_outputs)``, linear.

    Examples
    --------
    >>> build_age_distance_net(filters=(4, 8), input_shape=(32, 32, 1)).output_shape
    (None, 2)
    """
    kwargs = dict(filters=filters, dense_units=dense_units, pool=pool, n_outputs=n_outputs,
                  input_shape=input_shape, name=name)
    filters = _int_tuple("filters", filters)
    (dense_units,) = _int_tuple("dense_units", [dense_units])
    (n_outputs,) = _int_tuple("n_outputs", [n_outputs])
    input_shape = _int_tuple("input_shape", input_shape, min_len=3)
    pool = _check_pool(pool, input_shape, len(filters) + 1)
    inputs = keras.Input(shape=input_shape, name="flux")
    x = layers.AveragePooling2D(pool, name="pool_in")(inputs) if pool > 1 else inputs
    for i, f in enumerate(filters, start=1):
        x = _cbr(_cbr(x, f, name=f"c{i}a"), f, name=f"c{i}b")
        x = layers.MaxPooling2D(2, name=f"c{i}_pool")(x)
    x = layers.Concatenate(name="global")([layers.GlobalAveragePooling2D(name="gap")(x),
                                           layers.GlobalMaxPooling2D(name="gmp")(x)])
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = layers.Dense(n_outputs, activation="linear", name="out")(x)
    model = keras.Model(inputs, outputs, name=name)
    return _record(model, "build_age_distance_net", kwargs)
