"""Tests of pidoc_core.model: the authors' v0.1 release against a pure-numpy forward pass,
prediction conventions, bad inputs, and save/load with checksums."""

import os
import tempfile

# Keras writes keras.json and looks for cached weights under KERAS_HOME: keep both out of ~.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="pidoc_keras_home_")

import json  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from pidoc_core.model import (  # noqa: E402
    DEFAULT_WEIGHTS_DIR,
    MANIFEST_NAME,
    ModelError,
    PiDOC,
    is_saved_model,
    open_model,
)

# Keras's own save_weights trips a NumPy 2 deprecation inside TensorFlow; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

RELEASE = Path(__file__).resolve().parent.parent / "weights" / "pidoc-v0.1"
V01_STANDARDISATION = dict(
    flux_mean=-5.3818855, flux_std=0.97016734, distance_age_mean=29.628756,
    distance_age_std=32.401917,
)


# ---------------------------------------------------------------------------------------------
# a pure-numpy reading of CNN.json + CNN_100.h5
# ---------------------------------------------------------------------------------------------


def _pad_same(x, k, fill):
    before = (k - 1) // 2
    after = k - 1 - before
    return np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), constant_values=fill)


def np_conv2d(x, kernel, bias, *, padding, strides):
    kh, kw = kernel.shape[:2]
    if padding == "same":
        assert kh == kw and strides == [1, 1]
        x = _pad_same(x, kh, 0.0)
    out = []
    for xi in x:  # one map at a time keeps the window matrix small
        win = sliding_window_view(xi, (kh, kw), axis=(0, 1))[:: strides[0], :: strides[1]]
        # win: (H', W', C, kh, kw); kernel: (kh, kw, C, F)
        out.append(np.tensordot(win, kernel.transpose(2, 0, 1, 3), axes=([2, 3, 4], [0, 1, 2])))
    return np.stack(out) + bias


def np_maxpool(x, pool, *, padding):
    p = pool[0]
    if padding == "same":
        h, w = x.shape[1:3]
        x = np.pad(x, ((0, 0), (0, -h % p), (0, -w % p), (0, 0)), constant_values=-np.inf)
    n, h, w, c = x.shape
    h2, w2 = h // p, w // p
    return x[:, : h2 * p, : w2 * p].reshape(n, h2, p, w2, p, c).max(axis=(2, 4))


def np_activation(x, name):
    return {"relu": lambda v: np.maximum(v, 0.0), "linear": lambda v: v}[name](x)


def numpy_forward(json_path, h5_path, x):
    """Forward pass in float64 through a Keras 2 config and its HDF5 weights (inference mode)."""
    cfg = json.loads(Path(json_path).read_text())["config"]
    weights = {}
    with h5py.File(h5_path, "r") as f:
        for name in f.attrs["layer_names"]:
            g = f[name.decode()]
            weights[name.decode()] = [
                np.asarray(g[w.decode()], dtype=np.float64) for w in g.attrs["weight_names"]
            ]
    out = {}
    for spec in cfg["layers"]:
        cls, c, name = spec["class_name"], spec["config"], spec["name"]
        if cls == "InputLayer":
            out[name] = np.asarray(x, dtype=np.float64)
            continue
        (inp,) = [out[n[0]] for n in spec["inbound_nodes"][0]]
        w = weights.get(name, [])
        if cls == "Conv2D":
            y = np_conv2d(inp, w[0], w[1], padding=c["padding"], strides=c["strides"])
            y = np_activation(y, c["activation"])
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = w
            y = gamma * (inp - mean) / np.sqrt(var + c["epsilon"]) + beta
        elif cls in ("SpatialDropout2D", "Dropout"):
            y = inp  # identity at inference
        elif cls == "Activation":
            y = np_activation(inp, c["activation"])
        elif cls == "MaxPooling2D":
            assert c["strides"] == c["pool_size"]
            y = np_maxpool(inp, c["pool_size"], padding=c["padding"])
        elif cls == "Flatten":
            y = inp.reshape(inp.shape[0], -1)
        elif cls == "Dense":
            y = np_activation(inp @ w[0] + w[1], c["activation"])
        else:  # pragma: no cover
            raise NotImplementedError(cls)
        out[name] = y
    return out[cfg["output_layers"][0][0]]


def standardised_maps(n, seed):
    """Cluster-like standardised log10 flux maps: a cored profile plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:160, :160] - 79.5
    maps = []
    for _ in range(n):
        rc = rng.uniform(4, 30)
        log_f = np.log10(1e-3 + (1 + (yy**2 + xx**2) / rc**2) ** -1.5)
        log_f = log_f + rng.normal(0, 0.05, log_f.shape)
        maps.append((log_f - log_f.mean()) / log_f.std())
    return np.stack(maps)[..., None].astype(np.float32)


@pytest.fixture(scope="module")
def v01():
    return PiDOC.from_v01(RELEASE)


# ---------------------------------------------------------------------------------------------
# the v0.1 release
# ---------------------------------------------------------------------------------------------


def test_from_v01_loads_the_cnn_and_the_constants(v01):
    assert v01.has_age_distance and not v01.has_mass  # CED_200.h5 is not shipped
    assert "mass" in v01.provenance["skipped"]
    assert v01.provenance["age_distance"]["weights"] == "CNN_100.h5"
    assert v01.map_shape == (160, 160)
    for key, value in V01_STANDARDISATION.items():
        assert v01.standardisation[key] == pytest.approx(value, rel=1e-6)
    assert v01.age_distance_network.count_params() == 517_954


def test_keras3_cnn_equals_numpy_reimplementation(v01):
    x = standardised_maps(3, seed=0)
    reference = numpy_forward(RELEASE / "CNN.json", RELEASE / "CNN_100.h5", x)
    ours = np.asarray(v01.age_distance_network(x, training=False))
    assert reference.shape == ours.shape == (3, 2)
    diff = np.max(np.abs(ours - reference))
    print(f"max |Keras 3 - numpy| = {diff:.2e} (standardised units)")
    assert diff < 1e-5
    # predict(): standardisation of the input and of the [distance, age] output inside
    s = v01.standardisation
    raw = x[..., 0] * s["flux_std"] + s["flux_mean"]
    ds = v01.predict(raw)
    physical = reference * s["distance_age_std"] + s["distance_age_mean"]
    np.testing.assert_allclose(ds["distance"].values, physical[:, 0], atol=1e-3)
    np.testing.assert_allclose(ds["age"].values, physical[:, 1], atol=1e-3)


def test_predict_returns_dims_and_units(v01):
    one = standardised_maps(1, seed=1)[0, ..., 0] * 0.97 - 5.38
    ds = v01.predict(one)
    assert isinstance(ds, xr.Dataset)
    assert set(ds.data_vars) == {"distance", "age"}  # no mass network in v0.1 as shipped
    assert ds["distance"].dims == ds["age"].dims == ("sample",)
    assert ds.sizes["sample"] == 1
    assert ds["distance"].attrs["units"] == "kpc"
    assert ds["age"].attrs["units"] == "Gyr"
    assert np.isfinite(ds["age"].values).all()
    # a DataArray batch keeps its sample coordinates, except ones named like an output
    maps = np.stack([one, one + 0.1])
    da = xr.DataArray(
        maps, dims=("run_sample", "py", "px"),
        coords={"run": ("run_sample", ["a", "b"]), "distance": ("run_sample", [15.0, 30.0])},
    )
    ds2 = v01.predict(da)
    assert list(ds2["run"].values) == ["a", "b"]
    assert ds2["distance"].dims == ("sample",)  # the prediction, not the input coordinate
    # batches of 1 and 2 maps take different oneDNN kernels: equal to ~2e-5 Gyr, not bit for bit
    np.testing.assert_allclose(ds2["age"].values[0], ds["age"].values[0], atol=1e-4)


def test_predict_is_thread_safe(v01):
    maps = standardised_maps(4, seed=2)[..., 0]
    serial = [v01.predict(m)["age"].values[0] for m in maps]
    results = [None] * len(maps)

    def work(i):
        results[i] = v01.predict(maps[i])["age"].values[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(maps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(results, serial, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# bad inputs and files
# ---------------------------------------------------------------------------------------------


def test_bad_maps_raise_model_error(v01):
    with pytest.raises(ModelError, match=r"shape \(160, 160\) or \(n, 160, 160\).*\(159, 160\)"):
        v01.predict(np.zeros((159, 160)))
    with pytest.raises(ModelError, match="shape"):
        v01.predict(np.zeros((2, 160, 160, 3)))
    bad = np.full((2, 160, 160), -5.0)
    bad[1, 3, 4] = np.nan
    with pytest.raises(ModelError, match=r"1 NaN/inf pixel\(s\) in sample\(s\) \[1\]"):
        v01.predict(bad)
    with pytest.raises(ModelError, match="numeric"):
        v01.predict(np.full((160, 160), "x"))
    assert issubclass(ModelError, ValueError)


@pytest.fixture
def release_copy(tmp_path):
    dst = tmp_path / "release"
    shutil.copytree(RELEASE, dst)
    return dst


def test_missing_and_corrupt_release_files_are_named(release_copy, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        PiDOC.from_v01(tmp_path / "nowhere")
    (release_copy / "meanluminosityVtrain.npy").unlink()
    with pytest.raises(ModelError, match="meanluminosityVtrain.npy"):
        PiDOC.from_v01(release_copy)
    shutil.copy(RELEASE / "meanluminosityVtrain.npy", release_copy)
    h5 = release_copy / "CNN_100.h5"
    h5.write_bytes(h5.read_bytes()[:5000])  # truncated download
    with pytest.raises(ModelError, match="CNN_100.h5"):
        PiDOC.from_v01(release_copy)
    h5.unlink()
    with pytest.raises(ModelError, match="no network weights"):
        PiDOC.from_v01(release_copy)
    shutil.copy(RELEASE / "CNN_100.h5", release_copy)
    (release_copy / "CNN.json").write_text("{not json")
    with pytest.raises(ModelError, match="CNN.json"):
        PiDOC.from_v01(release_copy)


def test_load_without_shipped_weights(monkeypatch, tmp_path):
    from pidoc_core.model import io

    monkeypatch.setitem(io.SHIPPED_MODELS, "paper", tmp_path / "pidoc")
    monkeypatch.setattr(io, "DEFAULT_WEIGHTS_DIR", tmp_path / "pidoc")
    with pytest.raises(ModelError, match=r"^the paper model is not shipped in this version: "
                                         r".*pidoc/manifest\.json does not exist"):
        PiDOC.load()


def test_shipped_models_by_name(monkeypatch, tmp_path, small_pidoc):
    """'paper' and 'wide' name the shipped models; one not shipped is a clear error; a directory
    of that name in the working directory is taken as the directory."""
    from pidoc_core.model import SHIPPED_MODELS, io, resolve_model_path

    assert resolve_model_path("paper") == resolve_model_path(None) == DEFAULT_WEIGHTS_DIR
    assert SHIPPED_MODELS["wide"] == DEFAULT_WEIGHTS_DIR.parent / "pidoc-wide"
    monkeypatch.setitem(io.SHIPPED_MODELS, "wide", tmp_path / "pidoc-wide")
    for load in (PiDOC.load, open_model):
        with pytest.raises(ModelError, match=r"^the wide model is not shipped in this version: "
                                             r".*pidoc-wide/manifest\.json does not exist\. "
                                             r"Shipped: (paper|none);"):
            load("wide")
    small_pidoc.save(tmp_path / "pidoc-wide")
    assert PiDOC.load("wide").provenance["loaded_from"] == str(tmp_path / "pidoc-wide")
    assert open_model("wide").provenance["loaded_from"] == str(tmp_path / "pidoc-wide")
    monkeypatch.chdir(tmp_path)
    small_pidoc.save(tmp_path / "paper")
    assert resolve_model_path("paper") == Path("paper")
    assert PiDOC.load("paper").provenance["loaded_from"] == "paper"


def test_the_shipped_wide_model_answers_with_either_mass_network_and_names_itself():
    wide = PiDOC.load("wide")
    assert wide.name == "wide" and wide.has_distance_aware_mass and wide.has_flux_only_mass
    flux = np.full((160, 160), -5.4)
    assert wide.predict(flux, distance_kpc=20.0).attrs["model"] == "wide"
    assert wide.predict(flux, mass_network="flux-only").attrs["model"] == "wide"


def test_a_model_without_a_flux_only_network_names_itself_in_the_error(small_pidoc):
    no_mass = PiDOC(age_distance_network=small_pidoc.age_distance_network,
                    standardisation=small_pidoc.standardisation)
    with pytest.raises(ModelError, match=r"^mass_network='flux-only': this model "
                                         r"\(pi-DOC \(not saved\)\) has no flux-only network$"):
        no_mass.predict(np.full((32, 32), -5.4), mass_network="flux-only")


# ---------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------


def _randomise(net, seed):
    """Random weights that keep activations O(1) (kernels ~ 1/sqrt(fan-in), BN stats near 0/1)."""
    rng = np.random.default_rng(seed)
    values = []
    for w in net.weights:
        shape = tuple(w.shape)
        if len(shape) > 1:  # kernel
            v = rng.normal(0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape)
        elif "variance" in w.name:
            v = 0.5 + np.abs(rng.normal(0, 0.3, shape))
        elif "gamma" in w.name:
            v = 1.0 + rng.normal(0, 0.1, shape)
        else:  # bias, beta, moving mean
            v = rng.normal(0, 0.1, shape)
        values.append(v.astype("float32"))
    net.set_weights(values)


@pytest.fixture
def small_pidoc():
    pidoc = PiDOC.build(
        mass=dict(filters=(4, 8), bottleneck_filters=8, input_shape=(32, 32, 1)),
        age_distance=dict(filters=(4, 8), kernel_sizes=(3, 3), dense_units=(8,),
                          input_shape=(32, 32, 1)),
        standardisation=dict(V01_STANDARDISATION, mass_mean=-0.85, mass_std=0.45,
                             distance_age_mean=[30.0, 7.0], distance_age_std=[20.0, 3.0]),
        provenance={"source": "test"},
    )
    _randomise(pidoc.mass_network, 1)
    _randomise(pidoc.age_distance_network, 2)
    return pidoc


def test_save_load_round_trip_gives_identical_predictions(small_pidoc, tmp_path):
    flux = standardised_maps(2, seed=3)[:, 64:96, 64:96, 0] - 5.0
    before = small_pidoc.predict(flux)
    assert before["mass"].dims == ("sample", "y", "x")
    assert before["mass"].attrs["units"] == "log10(Msun)"
    target = tmp_path / "model"
    small_pidoc.save(target, manifest_extra={"training": {"epochs": 0}, "vgg_source": "none"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left over
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {"mass.weights.h5", "age_distance.weights.h5"}
    assert manifest["networks"]["mass"]["architecture"]["kwargs"]["filters"] == [4, 8]
    assert manifest["standardisation"]["distance_age_std"] == [20.0, 3.0]
    assert manifest["training"] == {"epochs": 0}
    loaded = PiDOC.load(target)
    after = loaded.predict(flux)
    for key in ("mass", "distance", "age"):
        np.testing.assert_array_equal(after[key].values, before[key].values)
    with pytest.raises(ModelError, match="exists"):
        small_pidoc.save(target)
    small_pidoc.save(target, overwrite=True)
    assert PiDOC.load(target).predict(flux)["age"].values.tolist() == before["age"].values.tolist()
    with pytest.raises(ModelError, match="may not replace"):
        small_pidoc.save(tmp_path / "other", manifest_extra={"files": {}})


def test_xla_batches_equal_predict_on_batch(small_pidoc):
    """Full batches go through the XLA-compiled call, the remainder through predict_on_batch;
    both paths give the same numbers as the plain networks."""
    flux = standardised_maps(40, seed=4)[:, 64:96, 64:96, 0] - 5.0
    assert small_pidoc.xla is False  # opt-in: it slows the compact U-Nets on a CPU
    small_pidoc.xla = True
    fast = small_pidoc.predict(flux, batch_size=16)  # 2 compiled batches + 8 maps
    assert len(small_pidoc._compiled) == 2 and small_pidoc.xla
    small_pidoc.xla = False
    plain = small_pidoc.predict(flux, batch_size=16)
    for key in ("mass", "distance", "age"):
        np.testing.assert_allclose(fast[key].values, plain[key].values, rtol=1e-5, atol=1e-5)
    assert fast.sizes["sample"] == 40


def test_v01_save_load_round_trip(v01, tmp_path):
    v01.save(tmp_path / "v01")
    loaded = PiDOC.load(tmp_path / "v01")
    x = standardised_maps(2, seed=4)[..., 0] - 5.4
    np.testing.assert_array_equal(loaded.predict(x)["age"].values, v01.predict(x)["age"].values)
    assert loaded.provenance["age_distance"]["weights"] == "CNN_100.h5"


def test_checksum_mismatch_is_refused(small_pidoc, tmp_path):
    target = small_pidoc.save(tmp_path / "model")
    weights = target / "age_distance.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"checksum mismatch for .*age_distance\.weights\.h5"):
        PiDOC.load(target)
    weights.unlink()
    with pytest.raises(ModelError, match=r"age_distance\.weights\.h5 .*does not exist"):
        PiDOC.load(target)
    with pytest.raises(ModelError, match="manifest.json does not exist"):
        PiDOC.load(tmp_path)


# ---------------------------------------------------------------------------------------------
# the mass network path of from_v01 (CED_200.h5 is not shipped: write one in Keras 2 layout)
# ---------------------------------------------------------------------------------------------


def test_open_model_is_the_one_loader(v01, small_pidoc, tmp_path):
    """open_model takes a saved directory, the v0.1 release or None; one place decides which."""
    target = small_pidoc.save(tmp_path / "saved")
    assert is_saved_model(target) and not is_saved_model(RELEASE)
    assert open_model(target).provenance["loaded_from"] == str(target)
    assert open_model(RELEASE).provenance["release_dir"] == str(RELEASE)
    if is_saved_model(DEFAULT_WEIGHTS_DIR):
        assert open_model().provenance["loaded_from"] == str(DEFAULT_WEIGHTS_DIR)
    with pytest.raises(ModelError, match=r"pi-DOC v0\.1 release directory .*nowhere does not exist"):
        open_model(tmp_path / "nowhere")


def test_no_copied_model_format_checks():
    """The manifest's file name is written once (model/io.py); nothing else tests for it."""
    root = Path(__file__).resolve().parent.parent
    offenders = [
        str(path.relative_to(root))
        for folder in ("pidoc_core", "app")
        for path in sorted((root / folder).rglob("*.py"))
        if '"manifest.json"' in path.read_text() and path.name != "io.py"
    ]
    assert offenders == [], offenders


def test_model_errors_are_pidoc_errors():
    from pidoc_core.errors import PidocError

    assert issubclass(ModelError, PidocError) and issubclass(ModelError, ValueError)


def _write_keras2_weights(model, path):
    """Keras 2 save_weights layout: layer_names, per-layer weight_names, '<layer>/<layer>_1/w:0'."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [l.name.encode() for l in model.layers]
        f.attrs["keras_version"] = b"2.3.1"
        for layer in model.layers:
            g = f.create_group(layer.name)
            names = [f"{layer.name}_1/{w.name}:0" for w in layer.weights]
            for name, value in zip(names, layer.get_weights()):
                g.create_dataset(name, data=value)
            g.attrs["weight_names"] = [n.encode() for n in names]


def test_from_v01_mass_network_from_keras2_weights(release_copy):
    from tests.test_networks import keras2_json_to_model  # independent reading of CED.json

    reference = keras2_json_to_model(RELEASE / "CED.json")
    _randomise(reference, 7)
    _write_keras2_weights(reference, release_copy / "CED_200.h5")
    pidoc = PiDOC.from_v01(release_copy)
    assert pidoc.has_mass and pidoc.has_age_distance
    assert pidoc.provenance["mass"]["weights"] == "CED_200.h5"
    x = standardised_maps(2, seed=5)
    expected = np.asarray(reference(x, training=False))
    np.testing.assert_allclose(
        np.asarray(pidoc.mass_network(x, training=False)), expected, rtol=1e-5, atol=1e-5
    )
    s = pidoc.standardisation
    ds = pidoc.predict(x[..., 0] * s["flux_std"] + s["flux_mean"])
    assert ds["mass"].dims == ("sample", "y", "x") and ds["mass"].shape == (2, 160, 160)
    assert ds["mass"].attrs["units"] == "log10(Msun)"
    np.testing.assert_allclose(
        ds["mass"].values, expected[..., 0] * s["mass_std"] + s["mass_mean"], atol=1e-4
    )
    # a weights file of another architecture is refused, naming the file and the layer
    small = keras2_json_to_model(RELEASE / "CNN.json")
    _write_keras2_weights(small, release_copy / "CED_200.h5")
    with pytest.raises(ModelError, match="CED_200.h5"):
        PiDOC.from_v01(release_copy)


def test_from_v01_finds_files_in_the_authors_layout(tmp_path):
    """The release's own tree: trained_piDOC/ and input_files/standardization_files/."""
    root = tmp_path / "piDOC-0.1"
    (root / "trained_piDOC").mkdir(parents=True)
    (root / "input_files" / "standardization_files").mkdir(parents=True)
    for name in ("CNN.json", "CED.json", "CNN_100.h5"):
        shutil.copy(RELEASE / name, root / "trained_piDOC")
    for path in RELEASE.glob("*train.npy"):
        shutil.copy(path, root / "input_files" / "standardization_files")
    pidoc = PiDOC.from_v01(root)
    assert pidoc.has_age_distance and not pidoc.has_mass
    assert pidoc.standardisation["distance_age_mean"] == pytest.approx(29.628756)


def test_model_name_and_the_observation_default(monkeypatch, tmp_path, small_pidoc):
    """A model says which one it is (a shipped name, else its directory); real images default to
    the wide model once it is shipped, else to the paper model."""
    from pidoc_core.model import io, observation_model

    assert small_pidoc.name == "pi-DOC (not saved)"
    saved = small_pidoc.save(tmp_path / "mine")
    assert PiDOC.load(saved).name == str(saved)
    assert small_pidoc.predict(np.full((32, 32), -5.4)).attrs["model"] == "pi-DOC (not saved)"
    monkeypatch.setitem(io.SHIPPED_MODELS, "paper", tmp_path / "paper-dir")
    monkeypatch.setitem(io.SHIPPED_MODELS, "wide", tmp_path / "wide-dir")
    small_pidoc.save(tmp_path / "paper-dir")
    assert observation_model().name == "paper"  # no wide model shipped
    small_pidoc.save(tmp_path / "wide-dir")
    assert observation_model().name == "wide"
    assert observation_model("paper").name == "paper"
    assert observation_model(saved).name == str(saved)
