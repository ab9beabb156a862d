"""Tests of pidoc_core.networks: architectures against the authors' v0.1 configs, training,
perceptual loss and the paper's metrics."""

import os
import tempfile

# Keras writes keras.json and looks for cached weights under KERAS_HOME: keep both out of ~.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="pidoc_keras_home_")

import json  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from pidoc_core import networks  # noqa: E402
from pidoc_core.networks import (  # noqa: E402
    PerceptualLoss,
    R2Score,
    build_age_distance_cnn,
    build_encoder_decoder,
    mse,
    r2_score,
)

RELEASE = Path(__file__).resolve().parent.parent / "weights" / "pidoc-v0.1"


def keras2_json_to_model(path):
    """Independent interpreter of a Keras 2.3 functional-model JSON into Keras 3 layers.

    Reads every layer's class, options and inbound nodes from the JSON, so the resulting model is
    the config's graph without going through pidoc_core's builders.
    """
    cfg = json.loads(Path(path).read_text())["config"]
    tensors = {}
    for spec in cfg["layers"]:
        c, cls, name = spec["config"], spec["class_name"], spec["name"]
        if cls == "InputLayer":
            tensors[name] = keras.Input(shape=tuple(c["batch_input_shape"][1:]), name=name)
            continue
        if cls == "Conv2D":
            layer = layers.Conv2D(
                c["filters"], tuple(c["kernel_size"]), strides=tuple(c["strides"]),
                padding=c["padding"], activation=c["activation"], use_bias=c["use_bias"],
                name=name,
            )
        elif cls == "BatchNormalization":
            layer = layers.BatchNormalization(
                axis=c["axis"], momentum=c["momentum"], epsilon=c["epsilon"],
                center=c["center"], scale=c["scale"], name=name,
            )
        elif cls == "SpatialDropout2D":
            layer = layers.SpatialDropout2D(c["rate"], name=name)
        elif cls == "Dropout":
            layer = layers.Dropout(c["rate"], name=name)
        elif cls == "Activation":
            layer = layers.Activation(c["activation"], name=name)
        elif cls == "MaxPooling2D":
            layer = layers.MaxPooling2D(
                tuple(c["pool_size"]), strides=tuple(c["strides"]), padding=c["padding"],
                name=name,
            )
        elif cls == "UpSampling2D":
            layer = layers.UpSampling2D(
                tuple(c["size"]), interpolation=c["interpolation"], name=name
            )
        elif cls == "Concatenate":
            layer = layers.Concatenate(axis=c["axis"], name=name)
        elif cls == "Flatten":
            layer = layers.Flatten(name=name)
        elif cls == "Dense":
            layer = layers.Dense(
                c["units"], activation=c["activation"], use_bias=c["use_bias"], name=name
            )
        else:  # pragma: no cover
            raise NotImplementedError(cls)
        inbound = [tensors[n[0]] for n in spec["inbound_nodes"][0]]
        tensors[name] = layer(inbound if len(inbound) > 1 else inbound[0])
    (inp,) = [tensors[n[0]] for n in cfg["input_layers"]]
    (out,) = [tensors[n[0]] for n in cfg["output_layers"]]
    return keras.Model(inp, out)


def signature(model):
    """Per layer: class, output shape, weight shapes; and, per layer, the inbound layer indices."""
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    sig = []
    for layer, conf in zip(model.layers, model.get_config()["layers"]):
        inbound = sorted(
            index[h] for h in _histories(conf.get("inbound_nodes", []))
        )
        sig.append(
            (
                type(layer).__name__,
                tuple(layer.output.shape),
                tuple(tuple(w.shape) for w in layer.weights),
                tuple(inbound),
            )
        )
    return sig


def _histories(obj):
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            return [obj["config"]["keras_history"][0]]
        return [h for v in obj.values() for h in _histories(v)]
    if isinstance(obj, (list, tuple)):
        return [h for v in obj for h in _histories(v)]
    return []


# ---------------------------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------------------------


def test_default_encoder_decoder_equals_ced_json():
    reference = keras2_json_to_model(RELEASE / "CED.json")
    ours = build_encoder_decoder()
    assert ours.count_params() == reference.count_params() == 2_182_241
    n_trainable = sum(int(np.prod(w.shape)) for w in ours.trainable_weights)
    assert n_trainable == 2_179_681
    assert signature(ours) == signature(reference)
    # bottleneck at 10 x 10, output a single linear map at full resolution
    assert ours.get_layer("bottleneck_conv").output.shape[1:3] == (10, 10)
    assert ours.output_shape == (None, 160, 160, 1)
    assert ours.layers[-1].get_config()["activation"] == "linear"


def test_default_cnn_equals_cnn_json():
    reference = keras2_json_to_model(RELEASE / "CNN.json")
    ours = build_age_distance_cnn()
    assert ours.count_params() == reference.count_params() == 517_954
    assert signature(ours) == signature(reference)
    assert ours.get_layer("Flat").output.shape[1:] == (3200,)  # 5 x 5 x 128
    assert ours.output_shape == (None, 2)


def test_small_encoder_decoder_shapes_and_arguments():
    small = build_encoder_decoder(filters=(4, 8, 16), bottleneck_filters=8, input_shape=(32, 32, 1))
    assert small.output_shape == (None, 32, 32, 1)
    assert small.get_layer("bottleneck_conv").output.shape[1:] == (4, 4, 8)
    assert small.get_layer("dec3a_conv").output.shape[1:] == (8, 8, 8)  # filters[1]
    assert small.get_layer("dec2b_conv").output.shape[1:] == (16, 16, 4)  # filters[0]
    assert small.count_params() < 20_000
    with pytest.raises(ValueError, match="divisible"):
        build_encoder_decoder(filters=(4, 8, 16), input_shape=(30, 30, 1))
    with pytest.raises(ValueError, match="dropout"):
        build_encoder_decoder(dropout=1.5)
    with pytest.raises(ValueError, match="too small"):
        build_age_distance_cnn(input_shape=(32, 32, 1))


def test_architecture_record_rebuilds_the_same_network():
    cnn = build_age_distance_cnn(filters=(4, 8), kernel_sizes=(3, 3), dense_units=(8,),
                                 input_shape=(32, 32, 1))
    spec = networks.architecture_of(cnn)
    assert spec["builder"] == "build_age_distance_cnn"
    assert spec["kwargs"]["filters"] == [4, 8]
    again = networks.build_network(json.dumps(spec))
    assert signature(again) == signature(cnn)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def _smooth_maps(rng, n, size=32):
    yy, xx = np.mgrid[:size, :size].astype("float32")
    maps = np.zeros((n, size, size), "float32")
    for i in range(n):
        for _ in range(3):
            cy, cx = rng.uniform(6, size - 6, 2)
            s = rng.uniform(1.5, 4.0)
            maps[i] += rng.uniform(0.5, 2.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
    return maps[..., None]


def test_training_steps_lower_the_perceptual_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    flux = _smooth_maps(rng, 8)
    mass = 0.7 * flux - 0.2  # a learnable map-to-map relation
    model = build_encoder_decoder(filters=(4, 8), bottleneck_filters=8, input_shape=(32, 32, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loss = PerceptualLoss(seed=0)
    model.compile(optimizer=keras.optimizers.Adam(10**-2.5), loss=loss,
                  metrics=[r2_score])
    history = [float(np.atleast_1d(model.train_on_batch(flux, mass))[0]) for _ in range(12)]
    assert np.all(np.isfinite(history))
    assert np.mean(history[-3:]) < 0.7 * np.mean(history[:3]), history


# ---------------------------------------------------------------------------------------------
# perceptual loss
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_loss():
    with pytest.warns(UserWarning, match="random VGG16"):
        return PerceptualLoss(seed=3)


def test_perceptual_loss_zero_for_identical_and_grows_with_shift(random_loss):
    assert random_loss.vgg_source == "random-seed-3"
    assert not random_loss.vgg.trainable
    assert [l.name for l in random_loss.vgg.layers][-1] == "block2_conv2"
    rng = np.random.default_rng(1)
    truth = _smooth_maps(rng, 2, size=48)
    assert float(random_loss(truth, truth)) == 0.0
    values = [float(random_loss(truth, np.roll(truth, s, axis=2))) for s in (1, 3, 6)]
    assert 0.0 < values[0] < values[1] < values[2], values
    # (batch, H, W) maps work too and give the same loss
    assert float(random_loss(truth[..., 0], np.roll(truth, 3, axis=2)[..., 0])) == pytest.approx(
        values[1], rel=1e-6
    )


def test_perceptual_loss_config_records_the_vgg_source(random_loss):
    config = random_loss.get_config()
    assert config["vgg_source"] == "random-seed-3"
    assert config["seed"] == 3
    assert config["feature_layers"] == ["block1_conv1", "block1_conv2", "block2_conv2"]
    with pytest.warns(UserWarning):
        again = PerceptualLoss.from_config(config)
    x = _smooth_maps(np.random.default_rng(2), 1)
    y = np.roll(x, 2, axis=1)
    assert float(again(x, y)) == float(random_loss(x, y))  # same seed, same VGG
    with pytest.warns(UserWarning):
        other = PerceptualLoss(seed=4)
    assert float(other(x, y)) != float(random_loss(x, y))


def _write_keras2_vgg_notop(path, seed):
    """A file in the layout of Keras's vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5."""
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(seed)
    arrays = {}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [l.name.encode() for l in vgg.layers]
        for layer in vgg.layers:
            g = f.create_group(layer.name)
            names = []
            for suffix, w in zip(("W", "b"), layer.weights):
                wname = f"{layer.name}_{suffix}_1:0"
                value = rng.normal(0, 0.1, w.shape).astype("float32")
                g.create_dataset(wname, data=value)
                names.append(wname.encode())
            g.attrs["weight_names"] = names
            arrays[layer.name] = [g[n.decode()][()] for n in names]
    return arrays


def test_perceptual_loss_reads_local_and_cached_weights(tmp_path, monkeypatch):
    path = tmp_path / "vgg_notop.h5"
    arrays = _write_keras2_vgg_notop(path, seed=5)
    loss = PerceptualLoss(vgg_weights=path)
    assert loss.vgg_source == "imagenet-file"
    assert loss.get_config()["vgg_weights"] == str(path)
    np.testing.assert_array_equal(
        loss.vgg.get_layer("block2_conv2").get_weights()[0], arrays["block2_conv2"][0]
    )
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    path.rename(home / "models" / networks.VGG_NOTOP_FILENAME)
    monkeypatch.setenv("KERAS_HOME", str(home))
    cached = PerceptualLoss()
    assert cached.vgg_source == "imagenet-cache"
    np.testing.assert_array_equal(
        cached.vgg.get_layer("block1_conv1").get_weights()[0], arrays["block1_conv1"][0]
    )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PerceptualLoss(vgg_weights=tmp_path / "missing.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=networks.VGG_NOTOP_FILENAME):
        PerceptualLoss(allow_random=False)


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def test_r2_score_and_mse_follow_eq_1():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(6, 5)).astype("float32")
    p = y + rng.normal(scale=0.3, size=y.shape).astype("float32")
    expected = 1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert float(r2_score(y, p)) == pytest.approx(expected, rel=1e-5)
    assert float(r2_score(y, y)) == 1.0
    assert float(r2_score(y, np.full_like(y, y.mean()))) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(np.asarray(mse(y, p)), np.mean((p - y) ** 2, axis=1), rtol=1e-5)
    metric = R2Score()
    metric.update_state(y[:2], p[:2])
    metric.update_state(y[2:], p[2:])
    assert float(metric.result()) == pytest.approx(expected, rel=1e-4)
    metric.reset_state()
    metric.update_state(y, y)
    assert float(metric.result()) == pytest.approx(1.0)
