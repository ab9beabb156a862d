"""Keras 3 networks of pi-DOC: builders, the perceptual loss and the paper's metrics.

The two networks of Chardin & Bianchini (2021, MNRAS 504, 5656, Sect. 3.1) are built by plain
Python functions whose default arguments reproduce the authors' published Keras 2.3.1 configs
(``weights/pidoc-v0.1/CED.json`` and ``CNN.json``) layer for layer, so that their weights load
into our models; the filter counts are arguments so small versions train on a CPU.

- :func:`build_encoder_decoder`: standardised log10 flux map (160 x 160 x 1) -> standardised log10
  mass map of the same size. Each encoder level is two blocks of 3x3 convolution (ReLU) + batch
  normalisation + spatial dropout whose outputs are concatenated and max-pooled; a bottleneck block
  at 10 x 10; each decoder level upsamples (nearest), concatenates the first block of the encoder
  level of the same size, applies a block, concatenates the pooled input of that encoder level and
  applies a second block; a linear 3x3 convolution gives the map.
- :func:`build_age_distance_cnn`: standardised log10 flux map -> ``[distance, age]`` in
  standardised units (v0.1: one joint mean and standard deviation for both). Four blocks of 'valid'
  convolution (ReLU) + batch normalisation + spatial dropout + ReLU + 2x2 max-pooling, then flatten,
  dropout and three dense (ReLU) + batch-normalisation + ReLU layers and a linear output.
- :class:`PerceptualLoss`: sum of the mean squared differences of VGG16 features (``block1_conv1``,
  ``block1_conv2``, ``block2_conv2``) of prediction and truth (the paper's Appendix A).
- :func:`r2_score`, :class:`R2Score`, :func:`mse`: the metrics of the paper's Sect. 3.2 (eq. 1).

Everything uses ``keras.ops`` only, so any Keras backend runs it (TensorFlow is the default).
Builders record their arguments in ``model.pidoc_architecture`` (a JSON string) so that
:class:`pidoc_core.model.PiDOC` can write them to a weights manifest.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "DEFAULT_DROPOUT",
    "VGG_FEATURE_LAYERS",
    "VGG_NOTOP_FILENAME",
    "build_encoder_decoder",
    "build_age_distance_cnn",
    "build_mass_unet",
    "build_age_distance_net",
    "build_network",
    "architecture_of",
    "read_keras2_h5_weights",
    "PerceptualLoss",
    "r2_score",
    "R2Score",
    "mse",
]

#: Dropout probability of the paper (Sect. 3.1): 10^-2.5.
DEFAULT_DROPOUT = 10**-2.5
#: VGG16 layers whose features enter the perceptual loss (paper Appendix A).
VGG_FEATURE_LAYERS = ("block1_conv1", "block1_conv2", "block2_conv2")
#: File name of the ImageNet VGG16 weights without the classifier, as Keras caches it.
VGG_NOTOP_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"

_BUILDERS = {}  # name -> builder, filled by _register


def _register(fn):
    _BUILDERS[fn.__name__] = fn
    return fn


def _record(model, builder, kwargs):
    spec = {"builder": builder, "kwargs": {k: _jsonable(v) for k, v in kwargs.items()}}
    model.pidoc_architecture = json.dumps(spec, sort_keys=True)
    return model


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _int_tuple(name, value, *, min_len=1):
    try:
        out = tuple(int(v) for v in value)
    except TypeError as exc:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from exc
    if len(out) < min_len or any(v < 1 for v in out):
        raise ValueError(
            f"{name} must hold at least {min_len} positive integers, got {value!r}"
        )
    return out


def _check_rate(name, rate):
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
    return rate


def _conv_block(x, filters, *, dropout, name):
    """3x3 'same' convolution with ReLU, then batch normalisation, then spatial dropout."""
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.SpatialDropout2D(dropout, name=f"{name}_drop")(x)


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


def build_network(spec: dict | str) -> keras.Model:
    """Build a network from an architecture record ``{"builder": name, "kwargs": {...}}``.

    Parameters
    ----------
    spec : dict or str
        The record (or its JSON string) written by the builders to ``model.pidoc_architecture``
        and stored in weight manifests.

    Returns
    -------
    keras.Model
        A freshly initialised model.

    Examples
    --------
    >>> m = build_network({"builder": "build_age_distance_cnn", "kwargs": {}})
    """
    if isinstance(spec, str):
        spec = json.loads(spec)
    try:
        builder = _BUILDERS[spec["builder"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"architecture record must name a builder among {sorted(_BUILDERS)}, got {spec!r}"
        ) from exc
    return builder(**spec.get("kwargs", {}))


def architecture_of(model: keras.Model) -> dict | None:
    """The architecture record of a model made by a builder of this module, else ``None``."""
    spec = getattr(model, "pidoc_architecture", None)
    return None if spec is None else json.loads(spec)


# --------------------------------------------------------------------------------------------
# Keras 2 HDF5 weights
# --------------------------------------------------------------------------------------------


def _attr_names(value):
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]


def read_keras2_h5_weights(path: str | os.PathLike) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Read the weights of a Keras 2 ``save_weights``/``save`` HDF5 file by layer name.

    Parameters
    ----------
    path : path-like
        An ``.h5`` file written by Keras 2 (whole-model files keep weights under
        ``model_weights``).

    Returns
    -------
    dict
        ``{layer_name: [(weight_name, array), ...]}`` in the file's ``weight_names`` order (for
        convolutions and dense layers: kernel then bias; for batch normalisation: gamma, beta,
        moving mean, moving variance). Layers without weights are left out.

    Raises
    ------
    OSError, KeyError
        If the file cannot be read as Keras 2 HDF5 weights.
    """
    out = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise KeyError(f"{path}: no 'layer_names' attribute; not a Keras 2 weights file")
        for lname in _attr_names(group.attrs["layer_names"]):
            g = group[lname]
            wnames = _attr_names(g.attrs.get("weight_names", []))
            if wnames:
                out[lname] = [(w, np.asarray(g[w])) for w in wnames]
    return out


# --------------------------------------------------------------------------------------------
# Perceptual loss
# --------------------------------------------------------------------------------------------


def _keras_cache_file() -> Path:
    home = os.environ.get("KERAS_HOME")
    if home is None:
        try:  # the directory Keras itself resolved at import
            from keras.src.backend.config import keras_home

            home = keras_home()
        except Exception:  # pragma: no cover - private API moved
            home = os.path.join(os.path.expanduser("~"), ".keras")
    return Path(os.path.expanduser(home)) / "models" / VGG_NOTOP_FILENAME


def _vgg_features(feature_layers):
    """A VGG16 (no classifier, any image size) cut after the last layer in ``feature_layers``."""
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    unknown = [n for n in feature_layers if n not in {l.name for l in vgg.layers}]
    if unknown:
        raise ValueError(f"feature_layers {unknown!r} are not VGG16 layers")
    outputs = [vgg.get_layer(n).output for n in feature_layers]
    features = keras.Model(vgg.input, outputs, name="vgg16_features")
    return features


def _set_vgg_from_keras2_file(features, path):
    weights = read_keras2_h5_weights(path)
    for layer in features.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            raise KeyError(f"{path}: no weights for VGG16 layer {layer.name!r}")
        arrays = [a for _, a in weights[layer.name]]
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(
                f"{path}: layer {layer.name!r} has weights of shapes "
                f"{[a.shape for a in arrays]}, expected {expected}"
            )
        layer.set_weights(arrays)


def _set_vgg_random(features, seed):
    rng = np.random.default_rng(seed)
    for layer in features.layers:
        if not layer.weights:
            continue
        kernel, bias = layer.get_weights()
        fan_in = np.prod(kernel.shape[:-1])
        kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=kernel.shape)
        layer.set_weights([kernel.astype("float32"), np.zeros_like(bias)])


@keras.saving.register_keras_serializable(package="pidoc")
class PerceptualLoss(keras.losses.Loss):
    """Perceptual loss of the paper's Appendix A: summed MSEs of VGG16 features.

    For each sample, ``sum_l mean((phi_l(y_pred) - phi_l(y_true))**2)`` over the VGG16 layers
    ``phi_l`` in ``feature_layers`` (default ``block1_conv1``, ``block1_conv2``,
    ``block2_conv2``). Single-channel maps are repeated to three channels and fed as they are
    (standardised log10 mass, no ImageNet colour preprocessing). The VGG16 is frozen and called as
    a layer inside the loss; only its first layers, up to the last feature layer, are evaluated.

    The VGG16 weights come, in this order of preference, from ``vgg_weights`` (a local ``.h5``
    file: the Keras 2 ImageNet "notop" file, or a Keras 3 ``.weights.h5`` of
    ``keras.applications.VGG16(include_top=False)``), from Keras's cache
    ``$KERAS_HOME/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``, or else from a fixed
    He-normal random draw with ``seed`` (with a warning). No download is ever attempted.
    ``vgg_source`` records which: ``'imagenet-file'``, ``'imagenet-cache'`` or
    ``'random-seed-<seed>'``; it is also in :meth:`get_config`.

    Parameters
    ----------
    vgg_weights : path-like, optional
        Local VGG16 weights file. A missing or unreadable file raises.
    seed : int
        Seed of the random VGG16 used when no ImageNet weights are available.
    feature_layers : sequence of str
        VGG16 layer names whose features are compared.
    allow_random : bool
        If False, raise instead of falling back to random VGG16 weights.
    name, reduction, dtype
        As for :class:`keras.losses.Loss`.

    Examples
    --------
    >>> loss = PerceptualLoss(seed=0)  # doctest: +SKIP
    >>> loss.vgg_source  # doctest: +SKIP
    'random-seed-0'
    >>> model.compile(optimizer=keras.optimizers.Adam(10**-2.5), loss=loss)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        vgg_weights=None,
        seed: int = 0,
        feature_layers: Sequence[str] = VGG_FEATURE_LAYERS,
        allow_random: bool = True,
        name: str = "perceptual_loss",
        reduction: str = "sum_over_batch_size",
        dtype=None,
        vgg_source: str | None = None,  # accepted from get_config(), informative only
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.seed = int(seed)
        self.feature_layers = tuple(feature_layers)
        self.allow_random = bool(allow_random)
        self.vgg_weights = None if vgg_weights is None else str(vgg_weights)
        features = _vgg_features(self.feature_layers)
        cache = _keras_cache_file()
        if self.vgg_weights is not None:
            path = Path(self.vgg_weights)
            if not path.is_file():
                raise FileNotFoundError(f"VGG16 weights file {path} does not exist")
            self._load(features, path)
            self.vgg_source = "imagenet-file"
        elif cache.is_file():
            self._load(features, cache)
            self.vgg_source = "imagenet-cache"
        elif self.allow_random:
            _set_vgg_random(features, self.seed)
            self.vgg_source = f"random-seed-{self.seed}"
            warnings.warn(
                f"No ImageNet VGG16 weights (no vgg_weights given and no {cache}); the perceptual "
                f"loss uses a fixed random VGG16 (seed {self.seed}), recorded as "
                f"vgg_source={self.vgg_source!r}.",
                stacklevel=2,
            )
        else:
            raise FileNotFoundError(
                f"No ImageNet VGG16 weights: pass vgg_weights= or place {VGG_NOTOP_FILENAME} "
                f"in {cache.parent}"
            )
        features.trainable = False
        self.vgg = features

    @staticmethod
    def _load(features, path):
        try:
            if str(path).endswith(".weights.h5"):
                full = keras.applications.VGG16(
                    include_top=False, weights=None, input_shape=(None, None, 3)
                )
                full.load_weights(path)
                for layer in features.layers:
                    if layer.weights:
                        layer.set_weights(full.get_layer(layer.name).get_weights())
            else:
                _set_vgg_from_keras2_file(features, path)
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"cannot read VGG16 weights from {path}: {exc}") from exc

    def call(self, y_true, y_pred):
        y_true = _as_image(y_true)
        y_pred = _as_image(y_pred)
        f_true = self.vgg(y_true, training=False)
        f_pred = self.vgg(y_pred, training=False)
        if not isinstance(f_true, (list, tuple)):
            f_true, f_pred = [f_true], [f_pred]
        total = 0.0
        for t, p in zip(f_true, f_pred):
            total = total + ops.mean(ops.square(p - ops.stop_gradient(t)), axis=(1, 2, 3))
        return total

    def get_config(self):
        config = super().get_config()
        config.update(
            vgg_weights=self.vgg_weights,
            seed=self.seed,
            feature_layers=list(self.feature_layers),
            allow_random=self.allow_random,
            vgg_source=self.vgg_source,
        )
        return config


def _as_image(x):
    """(batch, H, W) or (batch, H, W, 1) -> (batch, H, W, 3) by repeating the channel."""
    x = ops.convert_to_tensor(x)
    if len(x.shape) == 3:
        x = ops.expand_dims(x, -1)
    if x.shape[-1] == 1:
        x = ops.concatenate([x, x, x], axis=-1)
    elif x.shape[-1] != 3:
        raise ValueError(f"perceptual loss takes maps with 1 or 3 channels, got shape {x.shape}")
    return x


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


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
