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

Modules: :mod:`.paper` (the paper's two networks), :mod:`.compact` (the CPU recipe),
:mod:`.registry` (:func:`build_network`, :func:`architecture_of`), :mod:`.perceptual`
(:class:`PerceptualLoss`, :func:`read_keras2_h5_weights`), :mod:`.metrics`, :mod:`.folding`
(:func:`fold_batch_norm`: the inference copy that :meth:`pidoc_core.model.PiDOC.predict` runs).
"""

from __future__ import annotations

from .compact import build_age_distance_net, build_mass_unet
from .folding import fold_batch_norm
from .metrics import R2Score, mse, r2_score
from .paper import DEFAULT_DROPOUT, build_age_distance_cnn, build_encoder_decoder
from .perceptual import (VGG_FEATURE_LAYERS, VGG_NOTOP_FILENAME, PerceptualLoss,
                         read_keras2_h5_weights)
from .registry import _BUILDERS, architecture_of, build_network  # noqa: F401

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
    "fold_batch_norm",
    "read_keras2_h5_weights",
    "PerceptualLoss",
    "r2_score",
    "R2Score",
    "mse",
]
