"""Inference copies of trained networks with batch normalisation folded into the convolutions.

A 2-D convolution followed directly by batch normalisation (the compact networks' blocks,
:mod:`.compact`) computes, at inference, ``gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta``:
one convolution with kernel ``W * s`` and bias ``(b - mean) * s + beta``, ``s = gamma / sqrt(var +
eps)`` per output channel. :func:`fold_batch_norm` builds that equivalent network, which skips one
full pass over every activation map per block (the standard inference rewrite of TensorFlow Lite,
ONNX Runtime or OpenVINO). The folded kernel and bias are computed from the original layers'
variables at each call (a few thousand numbers), so the copy always follows the network's current
weights. Batch normalisations that follow anything but a convolution whose output nothing else
reads (the paper's networks normalise after the ReLU) are kept as they are.
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["fold_batch_norm"]


class _Identity(layers.Layer):
    """Stands in for a batch normalisation folded into the convolution before it (it takes
    the same call arguments)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class _FoldedConv(layers.Layer):
    """``conv`` then ``bn`` (inference) as one convolution, read from their variables."""

    def __init__(self, conv, bn, **kwargs):
        super().__init__(**kwargs)
        self.conv, self.bn = conv, bn

    def call(self, inputs):
        conv, bn = self.conv, self.bn
        scale = ops.rsqrt(bn.moving_variance + bn.epsilon)
        if bn.scale:
            scale = scale * bn.gamma
        shift = -bn.moving_mean * scale + (bn.beta if bn.center else 0.0)
        if conv.use_bias:
            shift = shift + conv.bias * scale
        return ops.add(conv.convolution_op(inputs, conv.kernel * scale), shift)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


def _foldable_pairs(model) -> dict[str, str]:
    """``{batch-norm layer name: convolution layer name}`` for each foldable pair."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        axis = layer.axis if isinstance(layer.axis, int) else None
        (parent,) = layer._inbound_nodes[0].parent_nodes or (None,)
        conv = getattr(parent, "operation", None)
        if (isinstance(conv, layers.Conv2D) and type(conv) is layers.Conv2D
                and conv.data_format == "channels_last" and axis in (-1, 3)
                and len(conv._outbound_nodes) == 1 and conv.activation is keras.activations.linear):
            pairs[layer.name] = conv.name
    return pairs


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """An inference copy of ``model`` with each convolution + batch normalisation pair merged.

    Parameters
    ----------
    model : keras.Model
        A functional network (e.g. from :func:`pidoc_core.networks.build_mass_unet`).

    Returns
    -------
    keras.Model
        The same function of its inputs at inference (``training=False``) to float32 rounding
        (~1e-6 relative), sharing ``model``'s variables, with the folded batch normalisations
        replaced by identities; ``model`` itself is returned when nothing folds. For prediction
        only: it must not be trained or saved as the network.

    Examples
    --------
    >>> from pidoc_core.networks import build_mass_unet
    >>> net = build_mass_unet(filters=(4, 8), input_shape=(32, 32, 2))
    >>> sum(isinstance(layer, keras.layers.BatchNormalization)
    ...     for layer in fold_batch_norm(net).layers)
    0
    """
    pairs = _foldable_pairs(model)
    if not pairs:
        return model
    convs = {conv: bn for bn, conv in pairs.items()}

    def clone(layer):
        if layer.name in pairs:
            return _Identity(name=layer.name)
        if layer.name in convs:
            return _FoldedConv(layer, model.get_layer(convs[layer.name]), name=layer.name)
        return layer  # shared with ``model``: the same variables

    return keras.models.clone_model(model, clone_function=clone)
