"""Tests of pidoc_core.networks.folding: batch normalisation folded into the convolutions gives the
same function at inference, and PiDOC.predict follows weight changes."""

import os
import tempfile

os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="pidoc_keras_home_")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pidoc_core.model import PiDOC  # noqa: E402
from pidoc_core.networks import (build_age_distance_cnn, build_age_distance_net,  # noqa: E402
                                 build_encoder_decoder, build_mass_unet, fold_batch_norm)
from tests.test_model_v01 import _randomise  # noqa: E402


def _count(net, kind):
    return sum(isinstance(layer, kind) for layer in net.layers)


def _maps(n, shape, seed):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def test_folded_networks_compute_the_same_function():
    for net in (build_mass_unet(filters=(4, 8, 8), input_shape=(32, 32, 2)),
                build_age_distance_net(filters=(4, 8), input_shape=(32, 32, 1))):
        _randomise(net, 5)  # batch statistics far from 0 / 1, so that folding matters
        n_bn = _count(net, keras.layers.BatchNormalization)
        folded = fold_batch_norm(net)
        assert n_bn > 0 and _count(folded, keras.layers.BatchNormalization) == 0
        # the copy reads the network's own variables
        assert {id(v) for v in folded.weights} == {id(v) for v in net.weights}
        x = _maps(4, net.input_shape[1:], 6)
        before = net.predict_on_batch(x)
        np.testing.assert_allclose(folded.predict_on_batch(x), before,
                                   atol=2e-5 * np.abs(before).max())
        # the network itself is untouched
        np.testing.assert_array_equal(net.predict_on_batch(x), before)


def test_batch_norm_after_an_activation_is_not_folded():
    for net in (build_encoder_decoder(filters=(4, 8), bottleneck_filters=8,
                                      input_shape=(32, 32, 1)),
                build_age_distance_cnn(filters=(4, 8), kernel_sizes=(3, 3), dense_units=(8,),
                                       input_shape=(32, 32, 1))):
        assert _count(net, keras.layers.BatchNormalization) > 0
        assert fold_batch_norm(net) is net  # the paper's networks normalise after the ReLU


def test_predict_uses_the_folded_network_and_follows_new_weights():
    net = build_mass_unet(filters=(4, 8), input_shape=(32, 32, 1))
    _randomise(net, 7)
    pidoc = PiDOC(mass_network=net, standardisation={
        "flux_mean": -5.0, "flux_std": 1.0, "mass_mean": -0.8, "mass_std": 0.4})
    flux = _maps(3, (32, 32), 8) - 5.0
    expected = net.predict_on_batch((flux + 5.0)[..., None])[..., 0] * 0.4 - 0.8
    np.testing.assert_allclose(pidoc.predict(flux)["mass"].values, expected, atol=1e-5)
    assert len(pidoc._folded) == 1
    _randomise(net, 9)  # e.g. a user loads other weights into the network: followed
    expected = net.predict_on_batch((flux + 5.0)[..., None])[..., 0] * 0.4 - 0.8
    np.testing.assert_allclose(pidoc.predict(flux)["mass"].values, expected, atol=1e-5)
