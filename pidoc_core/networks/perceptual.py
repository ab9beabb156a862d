"""The perceptual loss of the paper's Appendix A (VGG16 features) and the Keras 2 HDF5 weight
reader it (and the v0.1 import) use."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import ops

__all__ = ["VGG_FEATURE_LAYERS", "VGG_NOTOP_FILENAME", "read_keras2_h5_weights",
           "PerceptualLoss"]

#: VGG16 layers whose features enter the perceptual loss (paper Appendix A).
VGG_FEATURE_LAYERS = ("block1_conv1", "block1_conv2", "block2_conv2")
#: File name of the ImageNet VGG16 weights without the classifier, as Keras caches it.
VGG_NOTOP_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


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
