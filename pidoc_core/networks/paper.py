"""The two networks of the paper (Chardin & Bianchini 2021, Sect. 3.1), layer for layer as the
authors' Keras 2.3.1 release: :func:`build_encoder_decoder` and :func:`build_age_distance_cnn`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from .registry import _check_rate, _int_tuple, _record, _register

__all__ = ["DEFAULT_DROPOUT", "build_encoder_decoder", "build_age_distance_cnn"]

#: Dropout probability of the paper (Sect. 3.1): 10^-2.5.
DEFAULT_DROPOUT = 10**-2.5


def _conv_block(x, filters, *, dropout, name):
    """3x3 'same' convolution with ReLU, then batch normalisation, then spatial dropout."""
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.SpatialDropout2D(dropout, name=f"{name}_drop")(x)


# Over 80 lines: a ~35-line docstring and the layer list of the published network, read as one.
@_register
def build_encoder_decoder(
    *,
    filters: Sequence[int] = (32, 64, 128, 128),
    bottleneck_filters: int = 128,
    dropout: float = DEFAULT_DROPOUT,
    input_shape: Sequence[int] = (160, 160, 1),
    name: str = "pidoc_encoder_decoder",
) -> keras.Model:
    """Convolutional encoder-decoder mapping a flux map to a mass map (paper Sect. 3.1.1).

    With default arguments the layers, their order, wiring, shapes and parameter count (2,182,241,
    of which 2,179,681 trainable) equal the authors' ``CED.json`` (Keras 2.3.1). With ``L = len(filters)`` levels, the spatial size is
    divided by ``2**L`` at the bottleneck (160 -> 10 for four levels).

    Parameters
    ----------
    filters : sequence of int
        Filters of the two 3x3 convolutions of each encoder level, from the finest level (full
        resolution) to the coarsest. The decoder level at the resolution of encoder level ``i``
        (``i >= 2``, 1-based) uses ``filters[i - 2]``, as in ``CED.json``.
    bottleneck_filters : int
        Filters of the convolution at the coarsest resolution.
    dropout : float
        Spatial dropout probability after each convolution (paper: 10^-2.5).
    input_shape : sequence of int
        ``(height, width, channels)``; height and width must be divisible by ``2**L``.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Input: standardised log10 flux, ``(batch, H, W, C)``. Output: standardised log10 mass
        (dimensionless), ``(batch, H, W, 1)``, linear activation.

    Examples
    --------
    >>> small = build_encoder_decoder(filters=(8, 16), bottleneck_filters=16,
    ...                               input_shape=(32, 32, 1))
    >>> small.output_shape
    (None, 32, 32, 1)
    """
    kwargs = dict(
        filters=filters,
        bottleneck_filters=bottleneck_filters,
        dropout=dropout,
        input_shape=input_shape,
        name=name,
    )
    filters = _int_tuple("filters", filters)
    (bottleneck_filters,) = _int_tuple("bottleneck_filters", [bottleneck_filters])
    dropout = _check_rate("dropout", dropout)
    input_shape = _int_tuple("input_shape", input_shape, min_len=3)
    n_levels = len(filters)
    if len(input_shape) != 3 or any(s % 2**n_levels for s in input_shape[:2]):
        raise ValueError(
            f"input_shape must be (height, width, channels) with height and width divisible by "
            f"2**len(filters) = {2**n_levels}, got {input_shape!r}"
        )

    inputs = keras.Input(shape=input_shape, name="flux")
    x = inputs
    first_blocks = []  # dropout output of the first block of each encoder level
    level_inputs = []  # input of each encoder level (the input, then each pooled map)
    for i, f in enumerate(filters, start=1):
        level_inputs.append(x)
        a = _conv_block(x, f, dropout=dropout, name=f"enc{i}a")
        b = _conv_block(a, f, dropout=dropout, name=f"enc{i}b")
        first_blocks.append(a)
        x = layers.Concatenate(name=f"enc{i}_concat")([b, a])
        x = layers.MaxPooling2D(2, padding="same", name=f"enc{i}_pool")(x)
    x = _conv_block(x, bottleneck_filters, dropout=dropout, name="bottleneck")
    for i in range(n_levels, 1, -1):
        f = filters[i - 2]
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"dec{i}_up")(x)
        x = layers.Concatenate(name=f"dec{i}_skip_a")([x, first_blocks[i - 1]])
        x = _conv_block(x, f, dropout=dropout, name=f"dec{i}a")
        x = layers.Concatenate(name=f"dec{i}_skip_b")([x, level_inputs[i - 1]])
        x = _conv_block(x, f, dropout=dropout, name=f"dec{i}b")
    x = layers.UpSampling2D(2, interpolation="nearest", name="dec1_up")(x)
    x = layers.Concatenate(name="dec1_skip_a")([x, first_blocks[0]])
    outputs = layers.Conv2D(1, 3, padding="same", activation="linear", name="mass")(x)
    model = keras.Model(inputs, outputs, name=name)
    return _record(model, "build_encoder_decoder", kwargs)


# Over 80 lines: a ~35-line docstring and the layer list of the published network, read as one.
# build_age_distance_cnn: ~93 lines, ~35 of them the docstring (each option and its units), ~58 code
@_register
def build_age_distance_cnn(
    *,
    filters: Sequence[int] = (16, 32, 64, 128),
    kernel_sizes: Sequence[int] = (10, 10, 5, 5),
    dense_units: Sequence[int] = (64, 32, 16),
    dropout: float = DEFAULT_DROPOUT,
    dense_dropout: float = 0.1,
    n_outputs: int = 2,
    input_shape: Sequence[int] = (160, 160, 1),
    name: str = "pidoc_age_distance_cnn",
) -> keras.Model:
    """CNN estimating distance and age from a flux map (paper Sect. 3.1.2).

    With default arguments the layers, wiring, shapes and parameter count (517,954, of which
    517,250 trainable) equal the authors' ``CNN.json`` (Keras 2.3.1), so the published ``CNN_100.h5``
    weights load into it (see :meth:`pidoc_core.model.PiDOC.from_v01`).

    Parameters
    ----------
    filters, kernel_sizes : sequence of int
        Filters and square kernel sizes of the 'valid' convolutions, one per block.
    dense_units : sequence of int
        Units of the hidden dense layers.
    dropout : float
        Spatial dropout probability after each convolution (paper: 10^-2.5).
    dense_dropout : float
        Dropout probability after flattening (``CNN.json``: 0.1).
    n_outputs : int
        Outputs of the linear last layer; 2 for ``[distance, age]``.
    input_shape : sequence of int
        ``(height, width, channels)``.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Input: standardised log10 flux ``(batch, H, W, C)``. Output: ``(batch, n_outputs)``,
        ``[distance, age]`` in standardised units (dimensionless).

    Examples
    --------
    >>> cnn = build_age_distance_cnn()
    >>> cnn.output_shape
    (None, 2)
    """
    kwargs = dict(
        filters=filters,
        kernel_sizes=kernel_sizes,
        dense_units=dense_units,
        dropout=dropout,
        dense_dropout=dense_dropout,
        n_outputs=n_outputs,
        input_shape=input_shape,
        name=name,
    )
    filters = _int_tuple("filters", filters)
    kernel_sizes = _int_tuple("kernel_sizes", kernel_sizes)
    if len(kernel_sizes) != len(filters):
        raise ValueError(
            f"kernel_sizes must have one entry per block ({len(filters)}), got {kernel_sizes!r}"
        )
    dense_units = _int_tuple("dense_units", dense_units, min_len=0)
    dropout = _check_rate("dropout", dropout)
    dense_dropout = _check_rate("dense_dropout", dense_dropout)
    (n_outputs,) = _int_tuple("n_outputs", [n_outputs])
    input_shape = _int_tuple("input_shape", input_shape, min_len=3)
    size = np.array(input_shape[:2])
    for k in kernel_sizes:
        size = (size - k + 1) // 2
    if len(input_shape) != 3 or np.any(size < 1):
        raise ValueError(
            f"input_shape {input_shape!r} is too small for kernel_sizes {kernel_sizes!r}: "
            "the last block would have no pixels left"
        )

    inputs = keras.Input(shape=input_shape, name="flux")
    x = inputs
    for i, (f, k) in enumerate(zip(filters, kernel_sizes), start=1):
        x = layers.Conv2D(f, k, padding="valid", activation="relu", name=f"Conv-{i}")(x)
        x = layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = layers.SpatialDropout2D(dropout, name=f"conv{i}_drop")(x)
        x = layers.Activation("relu", name=f"conv{i}_relu")(x)
        x = layers.MaxPooling2D(2, padding="valid", name=f"Pool-{i}")(x)
    x = layers.Flatten(name="Flat")(x)
    x = layers.Dropout(dense_dropout, name="flat_drop")(x)
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"Dense-{i}")(x)
        x = layers.BatchNormalization(name=f"dense{i}_bn")(x)
        x = layers.Activation("relu", name=f"dense{i}_relu")(x)
    outputs = layers.Dense(n_outputs, activation="linear", name="Out")(x)
    model = keras.Model(inputs, outputs, name=name)
    return _record(model, "build_age_distance_cnn", kwargs)
