"""Tests of pidoc_core.training: learning, checkpoints and resumption (also after SIGKILL),
early stopping, curves, the PiDOC export, MirroredStrategy and mixed precision.

Tiny networks on 32 x 32 maps keep every fit to a few seconds on 2 CPU cores.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import keras  # noqa: E402  (conftest has set KERAS_HOME)

from pidoc_core import training
from pidoc_core.model import PiDOC

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
MASS_ARCH = {"filters": (4, 8), "bottleneck_filters": 8, "input_shape": (32, 32, 1)}
CNN_ARCH = {"filters": (4, 8), "kernel_sizes": (3, 3), "dense_units": (8,),
            "input_shape": (32, 32, 1)}
MASS_STD = {"flux_mean": -5.0, "flux_std": 0.5, "mass_mean": 2.0, "mass_std": 0.3}
CNN_STD = {"flux_mean": -5.0, "flux_std": 0.5, "distance_age_mean": [20.0, 8.0],
           "distance_age_std": [10.0, 3.0]}
A, B = 0.8, 0.25  # the toy mapping mass = A * flux + B (standardised units)


def mass_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 32, 32)).astype("float32")
    return x, (A * x + B).astype("float32")


def cnn_data(n, seed):
    """Targets [mean, std-like statistic] of each map: a learnable map -> 2 numbers."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=(n, 1, 1))
    x = (level + 0.3 * rng.normal(size=(n, 32, 32))).astype("float32")
    y = np.stack([level[:, 0, 0], -level[:, 0, 0]], axis=1).astype("float32")
    return x, y


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_python(code, *, timeout=240, **popen):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


# ---------------------------------------------------------------------------------------------
# learning, export, curves
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mass_run(tmp_path_factory):
    """A perceptual-loss (random VGG16) encoder-decoder trained 5 epochs on mass = A flux + B."""
    out = tmp_path_factory.mktemp("mass_run")
    x, y = mass_data(96, seed=1)
    xv, yv = mass_data(32, seed=2)
    with pytest.warns(UserWarning, match="random VGG16"):
        res = training.fit("mass", (x, y), (xv, yv), out_dir=out, epochs=5,
                           architecture=MASS_ARCH, batch_size=16, standardisation=MASS_STD,
                           provenance={"dataset": "toy mass = 0.8 flux + 0.25"}, verbose=0)
    return out, res, (xv, yv)


def test_few_epochs_lower_the_validation_loss(mass_run):
    _, res, _ = mass_run
    h = res.history
    assert [row["epoch"] for row in h] == [0, 1, 2, 3, 4]
    assert all(b["val_loss"] < a["val_loss"] for a, b in zip(h, h[1:]))
    assert h[-1]["val_loss"] < 0.85 * h[0]["val_loss"]
    assert h[-1]["val_mse"] < h[0]["val_mse"]
    assert h[-1]["val_r2"] > h[0]["val_r2"]
    # the best epoch is the one with the lowest validation loss
    assert res.best_epoch == int(np.argmin([row["val_loss"] for row in h]))


def test_export_loads_with_pidoc_and_records_the_training(mass_run):
    out, res, (xv, _) = mass_run
    loaded = PiDOC.load(out / training.EXPORT_DIR)
    manifest = json.loads((out / training.EXPORT_DIR / "manifest.json").read_text())
    t = manifest["training"]
    assert t["loss"]["name"] == "perceptual" and t["loss"]["class"] == "PerceptualLoss"
    assert t["vgg_source"] == "random-seed-0" == t["loss"]["vgg_source"]
    assert t["optimizer"] == {"name": "Adam", "learning_rate": pytest.approx(10**-2.5),
                              "schedule": "constant"}
    assert t["epochs_completed"] == 5 and t["best_epoch"] == res.best_epoch
    assert t["best"]["val_loss"] == pytest.approx(res.history[res.best_epoch]["val_loss"])
    assert set(t["curves"]) >= {"loss", "mse", "r2", "val_loss", "val_mse", "val_r2"}
    assert len(t["curves"]["val_r2"]) == 5
    assert t["data"] == {"dataset": "toy mass = 0.8 flux + 0.25"}
    assert manifest["standardisation"]["mass_std"] == pytest.approx(0.3)
    # physical units: the exported model predicts what the trained network does, destandardised
    flux_phys = xv[:3] * MASS_STD["flux_std"] + MASS_STD["flux_mean"]
    pred = loaded.predict(flux_phys).mass.values
    expect = np.asarray(res.model(xv[:3, ..., None], training=False))[..., 0]
    np.testing.assert_allclose(pred, expect * 0.3 + 2.0, rtol=1e-5, atol=1e-5)


def test_csv_and_tensorboard_curves(mass_run):
    out, res, _ = mass_run
    rows = read_csv(out / training.CSV_NAME)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert {"loss", "mse", "r2", "val_loss", "val_mse", "val_r2"} <= set(rows[0])
    np.testing.assert_allclose([float(r["val_r2"]) for r in rows],
                               [h["val_r2"] for h in res.history], rtol=1e-6)
    import tensorflow as tf

    for split, prefix in (("train", ""), ("validation", "val_")):
        files = list((out / training.LOG_DIR / split).glob("events.out.tfevents.*"))
        assert files, split
        got = {}
        for f in files:
            for event in tf.compat.v1.train.summary_iterator(str(f)):
                for v in event.summary.value:
                    assert v.metadata.plugin_data.plugin_name == "scalars"
                    got[(v.tag, event.step)] = float(tf.make_ndarray(v.tensor))
        for row in res.history:
            for metric in ("mse", "r2"):
                assert got[(f"epoch_{metric}", row["epoch"])] == pytest.approx(
                    row[prefix + metric], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# checkpoints and resumption
# ---------------------------------------------------------------------------------------------


def test_resume_runs_exactly_the_remaining_epochs_and_matches_an_uninterrupted_run(tmp_path):
    x, y = cnn_data(48, seed=3)
    xv, yv = cnn_data(16, seed=4)
    kw = dict(architecture=CNN_ARCH, batch_size=16, standardisation=CNN_STD, patience=None,
              verbose=0, seed=7)
    first = training.fit("age-distance", (x, y), (xv, yv), out_dir=tmp_path / "r", epochs=2,
                         **kw)
    assert first.epochs_run == 2 and first.initial_epoch == 0
    meta = training.read_checkpoint_metadata(training.latest_checkpoint(tmp_path / "r"))
    assert meta["epoch"] == 2 and meta["learning_rate"] == pytest.approx(1e-4)
    assert meta["rng"]["seed"] == 7

    second = training.fit("age-distance", (x, y), (xv, yv), out_dir=tmp_path / "r", epochs=4,
                          resume=True, **kw)
    assert second.initial_epoch == 2 and second.epochs_run == 2
    assert [row["epoch"] for row in second.history] == [0, 1, 2, 3]
    rows = read_csv(tmp_path / "r" / training.CSV_NAME)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    # same optimizer state continued: Adam's step counter counts all 4 epochs of 3 steps
    with np.load(training.latest_checkpoint(tmp_path / "r")) as z:
        assert int(z["optim_00000"]) == 4 * 3

    straight = training.fit("age-distance", (x, y), (xv, yv), out_dir=tmp_path / "s", epochs=4,
                            **kw)
    for a, b in zip(straight.history, second.history):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    for wa, wb in zip(straight.model.get_weights(), second.model.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)

    # a finished run resumed with the same epochs trains nothing and re-exports
    again = training.fit("age-distance", (x, y), (xv, yv), out_dir=tmp_path / "r", epochs=4,
                         resume=True, **kw)
    assert again.epochs_run == 0 and again.best_epoch == second.best_epoch
    assert len(read_csv(tmp_path / "r" / training.CSV_NAME)) == 4
    PiDOC.load(tmp_path / "r" / training.EXPORT_DIR)

    # resuming with another learning rate or architecture is refused, naming the setting
    with pytest.raises(training.TrainingError, match="learning_rate"):
        training.fit("age-distance", (x, y), (xv, yv), out_dir=tmp_path / "r", epochs=6,
                     learning_rate=1e-3, **kw)
    # resume=False starts afresh and clears the old logs
    fresh = training.fit("age-distance", (x, y), (xv, yv), out_dir=tmp_path / "r", epochs=1,
                         resume=False, **kw)
    assert fresh.initial_epoch == 0
    assert len(read_csv(tmp_path / "r" / training.CSV_NAME)) == 1


def test_run_killed_mid_epoch_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "killed"
    marker = tmp_path / "progress"
    code = f"""
        import time, warnings
        warnings.simplefilter("ignore")
        import keras
        from pidoc_core import training
        from tests.test_training import cnn_data, CNN_ARCH, CNN_STD

        class Slow(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
            def on_train_batch_end(self, batch, logs=None):
                open({str(marker)!r}, "w").write(f"{{self.epoch}} {{batch}}")
                time.sleep(0.15)

        x, y = cnn_data(64, seed=5)
        xv, yv = cnn_data(16, seed=6)
        training.fit("age-distance", (x, y), (xv, yv), out_dir={str(out)!r}, epochs=1000,
                     architecture=CNN_ARCH, batch_size=8, standardisation=CNN_STD,
                     patience=None, callbacks=[Slow()], verbose=0)
    """
    proc = run_python(code)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            # wait until the first checkpoint exists and the next epoch is half done
            if training.latest_checkpoint(out) is not None and marker.exists():
                parts = marker.read_text().split()
                if len(parts) == 2 and int(parts[0]) >= 1 and int(parts[1]) >= 3:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    epoch_in_progress = int(marker.read_text().split()[0])
    done = training.read_checkpoint_metadata(training.latest_checkpoint(out))["epoch"]
    assert done == epoch_in_progress  # killed inside the epoch after the last checkpoint

    x, y = cnn_data(64, seed=5)
    xv, yv = cnn_data(16, seed=6)
    res = training.fit("age-distance", (x, y), (xv, yv), out_dir=out, epochs=done + 1,
                       architecture=CNN_ARCH, batch_size=8, standardisation=CNN_STD,
                       patience=None, verbose=0)
    assert res.initial_epoch == done and res.epochs_run == 1
    rows = read_csv(out / training.CSV_NAME)
    assert [int(r["epoch"]) for r in rows] == list(range(done + 1))
    assert not list((out / training.CHECKPOINT_DIR).glob(".*.tmp"))
    assert len(list((out / training.CHECKPOINT_DIR).glob("epoch-*.npz"))) <= 2


# ---------------------------------------------------------------------------------------------
# early stopping
# ---------------------------------------------------------------------------------------------


def test_early_stopping_on_a_validation_plateau_restores_the_best_weights(tmp_path):
    x, y = mass_data(64, seed=8)
    xv, _ = mass_data(16, seed=9)
    yv = (-A * xv + B).astype("float32")  # anti-correlated: learning the training set hurts
    res = training.fit("mass", (x, y), (xv, yv), out_dir=tmp_path, epochs=12, loss="mse",
                       architecture=MASS_ARCH, batch_size=16, standardisation=MASS_STD,
                       patience=1, verbose=0)
    val = [row["val_loss"] for row in res.history]
    assert res.stopped_early and len(val) < 12
    assert res.best_epoch == int(np.argmin(val)) and res.best_epoch < len(val) - 1
    # the returned (and exported) weights are the best epoch's: they reproduce its val metrics
    pred = np.asarray(res.model(xv[..., None], training=False))
    assert float(np.mean((pred - yv[..., None]) ** 2)) == pytest.approx(
        res.history[res.best_epoch]["val_mse"], rel=1e-4)
    manifest = json.loads((tmp_path / training.EXPORT_DIR / "manifest.json").read_text())
    assert manifest["training"]["stopped_early"] is True
    assert manifest["training"]["loss"] == {"name": "mse", "class": "MeanSquaredError"}
    assert manifest["training"]["vgg_source"] is None


# ---------------------------------------------------------------------------------------------
# devices and precision
# ---------------------------------------------------------------------------------------------


def test_mirrored_strategy_on_two_logical_cpus_trains(tmp_path):
    out = tmp_path / "mirrored"
    code = f"""
        import json, warnings
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        warnings.simplefilter("ignore")
        import numpy as np
        from pidoc_core import training
        from tests.test_training import mass_data, MASS_ARCH, MASS_STD
        x, y = mass_data(16, seed=10)
        xv, yv = mass_data(8, seed=11)
        res = training.fit("mass", (x, y), (xv, yv), out_dir={str(out)!r}, epochs=1,
                           architecture=MASS_ARCH, batch_size=16, standardisation=MASS_STD,
                           strategy="mirrored", verbose=0)
        print(json.dumps({{"devices": len(tf.config.list_logical_devices("CPU")),
                          "strategy": res.training["strategy"], "history": res.history}}))
    """
    proc = run_python(code)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["devices"] == 2
    assert report["strategy"] == {"class": "MirroredStrategy", "replicas": 2}
    assert len(report["history"]) == 1
    assert all(np.isfinite(v) for v in report["history"][0].values())
    with np.load(training.latest_checkpoint(out)) as z:
        assert int(z["optim_00000"]) == 1  # one optimizer step on the global batch of 16
    loaded = PiDOC.load(out / training.EXPORT_DIR)
    assert loaded.has_mass and loaded.map_shape == (32, 32)


def test_bfloat16_on_a_cpu_without_it_warns_that_it_is_emulated(tmp_path):
    import tensorflow as tf

    from pidoc_core.training.options import _cpu_flags, _warn_emulated_bfloat16

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU runs bfloat16 natively")
    with pytest.warns(RuntimeWarning, match="without AVX512-BF16 or AMX"):
        assert _warn_emulated_bfloat16("mixed_bfloat16", flags={"avx2", "fma"})
    assert not _warn_emulated_bfloat16("mixed_bfloat16", flags={"avx2", "amx_bf16"})
    assert not _warn_emulated_bfloat16("mixed_float16", flags={"avx2"})
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n\n")
    assert _cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx512_bf16"}
    assert _cpu_flags(str(tmp_path / "missing")) is None


def test_mixed_precision_keeps_a_float32_output_and_restores_the_policy(tmp_path):
    x, y = cnn_data(16, seed=12)
    before = keras.mixed_precision.global_policy().name
    res = training.fit("age-distance", (x, y), None, out_dir=tmp_path, epochs=1,
                       architecture=CNN_ARCH, batch_size=8, standardisation=CNN_STD,
                       mixed_precision=True, verbose=0)
    assert keras.mixed_precision.global_policy().name == before == "float32"
    assert res.training["mixed_precision"] is True
    assert np.isfinite(res.history[0]["loss"])
    assert str(res.model.output.dtype) == "float32"
    assert all(w.dtype == np.float32 for w in res.model.get_weights())
    PiDOC.load(tmp_path / training.EXPORT_DIR)


# ---------------------------------------------------------------------------------------------
# input types and bad arguments
# ---------------------------------------------------------------------------------------------


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.bs = x[..., None], y, batch_size

    def __len__(self):
        return len(self.x) // self.bs

    def __getitem__(self, i):
        sl = slice(i * self.bs, (i + 1) * self.bs)
        return self.x[sl], self.y[sl]


def test_pydataset_and_tf_data_inputs(tmp_path):
    import tensorflow as tf

    x, y = cnn_data(32, seed=13)
    xv, yv = cnn_data(16, seed=14)
    val = tf.data.Dataset.from_tensor_slices((xv[..., None], yv)).batch(8)
    res = training.fit("age-distance", _Batches(x, y, 8), val, out_dir=tmp_path, epochs=1,
                       architecture=CNN_ARCH, standardisation=CNN_STD, verbose=0)
    assert set(res.history[0]) >= {"loss", "val_loss", "val_r2"}


def test_bad_arguments_raise_clear_errors(tmp_path):
    x, y = cnn_data(8, seed=15)
    kw = dict(out_dir=tmp_path, architecture=CNN_ARCH, standardisation=CNN_STD, verbose=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        training.fit("luminosity", (x, y), None, epochs=1, **kw)
    for bad in (0, -3, 1.5, "2"):
        with pytest.raises(ValueError, match="epochs must be a positive integer"):
            training.fit("age-distance", (x, y), None, epochs=bad, **kw)
    with pytest.raises(ValueError, match="different numbers of samples"):
        training.fit("age-distance", (x, y[:5]), None, epochs=1, **kw)
    with pytest.raises(ValueError, match=r"train targets have per-sample shape \(3,\)"):
        training.fit("age-distance", (x, np.zeros((8, 3))), None, epochs=1, **kw)
    with pytest.raises(ValueError, match=r"validation input maps .* \(16, 16, 1\)"):
        training.fit("age-distance", (x, y), (np.zeros((4, 16, 16)), np.zeros((4, 2))),
                     epochs=1, **kw)
    with pytest.raises(ValueError, match=r"train targets .*\(32, 32, 1\)"):
        training.fit("mass", (x, y), None, epochs=1, out_dir=tmp_path, verbose=0,
                     architecture=MASS_ARCH, standardisation=MASS_STD)
    with pytest.raises(ValueError, match="NaN/inf"):
        training.fit("age-distance", (np.full_like(x, np.nan), y), None, epochs=1, **kw)
    with pytest.raises(ValueError, match="build_encoder_decoder"):
        training.fit("mass", (x, y), None, epochs=1, out_dir=tmp_path, verbose=0,
                     architecture={"builder": "build_age_distance_cnn", "kwargs": {}})
    with pytest.raises(ValueError, match="loss must be"):
        training.fit("age-distance", (x, y), None, epochs=1, loss="huber", **kw)
    with pytest.raises(ValueError, match="learning_rate must be a positive"):
        training.fit("age-distance", (x, y), None, epochs=1, learning_rate=-1.0, **kw)
    with pytest.raises(TypeError, match="must be \\(x, y\\) arrays"):
        training.fit("age-distance", "not data", None, epochs=1, **kw)
    with pytest.raises(ValueError, match="strategy must be"):
        training.fit("age-distance", (x, y), None, epochs=1, strategy="tpu", **kw)
    plain = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no architecture record"):
        training.fit("age-distance", (x, y), None, epochs=1, model=plain, out_dir=tmp_path,
                     verbose=0)
    assert not (tmp_path / training.CHECKPOINT_DIR).exists()


def test_paper_defaults():
    assert training.PAPER_LEARNING_RATES == {"mass": pytest.approx(10**-2.5),
                                             "mass-ml": pytest.approx(1e-3),
                                             "age-distance": pytest.approx(1e-4)}
    assert training.PAPER_LOSSES == {"mass": "perceptual", "mass-ml": "mse",
                                     "age-distance": "mse"}
    loss, desc = training._make_loss("age-distance", None, vgg_weights=None, seed=0)
    assert isinstance(loss, keras.losses.MeanSquaredError) and desc["name"] == "mse"


def test_cli_arguments_parse():
    import argparse

    parser = training.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["mass", "--dataset", "d", "--out", "o", "--epochs", "3",
                              "--filters", "4", "8", "--resume", "--mixed-precision",
                              "--vgg-weights", "v.h5"])
    assert (args.kind, args.epochs, args.filters, args.resume, args.mixed_precision,
            args.vgg_weights, args.batch_size) == ("mass", 3, [4, 8], True, "float16", "v.h5",
                                                   32)
    args = parser.parse_args(["mass-ml", "--dataset", "d", "--out", "o", "--mixed-precision",
                              "bfloat16", "--lr-schedule", "cosine"])
    assert (args.mixed_precision, args.lr_schedule) == ("bfloat16", "cosine")
    assert training._precision_policy(args.mixed_precision) == "mixed_bfloat16"
    assert training._precision_policy(True) == "mixed_float16"


def test_run_train_on_a_dataset_directory(tmp_path, capsys):
    """`pidoc train mass --dataset DIR` end to end on tiny split stores of 32 x 32 maps."""
    import argparse

    from pidoc_core import dataset as D

    if not all(hasattr(D, n) for n in ("paper_splits", "build_splits", "batch_stream",
                                         "standardisation", "open_dataset")):
        pytest.skip("pidoc_core.dataset does not have its public API yet")
    from .test_dataset import PlummerRun

    runs = {name: PlummerRun(name, scale, n_stars=400, times=(1.0, 2.0))
            for name, scale in zip((*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN), (1.0, 2.0, 1.5))}
    plans = D.paper_splits(runs, n_train=8, n_val=4, n_test=4, seed=3)
    plans = {k: v for k, v in plans.items() if k in ("train", "val")}
    D.build_splits(plans, runs, tmp_path / "data", chunk_size=4, progress=False,
                   imager_options={"fov_arcsec": 8.0})
    parser = training.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["mass", "--dataset", str(tmp_path / "data"), "--out",
                              str(tmp_path / "run"), "--epochs", "1", "--filters", "4", "8",
                              "--batch-size", "4", "--verbose", "0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG16
        assert training.run_train(args) == 0
    manifest = json.loads((tmp_path / "run" / training.EXPORT_DIR / "manifest.json").read_text())
    t = manifest["training"]
    assert t["data"]["train"].endswith("train.zarr")
    assert t["data"]["validation"].endswith("val.zarr")
    assert t["batch_size"] == 4 and t["epochs_completed"] == 1
    consts = D.standardisation(D.open_dataset(tmp_path / "data" / "train.zarr"))
    assert manifest["standardisation"]["flux_mean"] == pytest.approx(consts["flux_mean"])
    assert "model:" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--resume"):
        training.run_train(args)


def _tiny_splits(tmp_path):
    from pidoc_core import dataset as D

    from .test_dataset import PlummerRun

    runs = {name: PlummerRun(name, scale, n_stars=400, times=(1.0, 2.0, 3.0))
            for name, scale in zip((*D.PAPER_TRAIN_RUNS, D.PAPER_TEST_RUN), (1.0, 2.0, 1.5))}
    plans = D.paper_splits(runs, n_train=16, n_val=8, n_test=4, seed=3, order="snapshot")
    plans = {k: v for k, v in plans.items() if k in ("train", "val")}
    D.build_splits(plans, runs, tmp_path / "data", chunk_size=4, progress=False,
                   imager_options={"fov_arcsec": 8.0})
    return tmp_path / "data"


def test_distance_aware_network_trains_from_memory_and_predicts_mass_from_ml(tmp_path):
    """`pidoc train mass-ml`: flux + log d -> log M/L per pixel; mass = M/L x 4 pi d^2 F."""
    import argparse

    from pidoc_core import dataset as D
    from pidoc_core.conventions import log_luminosity_per_pixel
    from pidoc_core.model import PiDOC

    data = _tiny_splits(tmp_path)
    parser = training.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["mass-ml", "--dataset", str(data), "--out", str(tmp_path / "run"),
                              "--epochs", "2", "--filters", "4", "8", "--batch-size", "4",
                              "--lr-schedule", "cosine", "--mixed-precision", "bfloat16",
                              "--verbose", "0"])
    assert training.run_train(args) == 0
    model = PiDOC.load(tmp_path / "run" / training.EXPORT_DIR)
    assert all(w.dtype == "float32" for w in model.mass_ml_network.weights)  # bf16 training
    assert model.has_distance_aware_mass and not model.has_flux_only_mass
    assert model.mass_ml_network.input_shape[1:] == (32, 32, 2)
    manifest = json.loads((tmp_path / "run" / training.EXPORT_DIR / "manifest.json").read_text())
    assert manifest["training"]["optimizer"]["schedule"] == "cosine"
    assert manifest["training"]["mixed_precision"] == "bfloat16"
    assert manifest["training"]["epochs_completed"] == 2
    ds = D.open_dataset(data / "val.zarr")
    flux = ds.flux.values[:3]
    d = ds.distance.values[:3]
    out = model.predict(flux, distance_kpc=d)
    assert out.attrs["mass_network"] == "distance-aware"
    assert out.attrs["distance_source"] == "given"
    logl = log_luminosity_per_pixel(flux, d[:, None, None])
    np.testing.assert_allclose(out.mass.values, out.ml.values + logl, atol=1e-4)
    # the same maps 4x farther: same flux, 16x the luminosity per pixel -> M/L input differs
    far = model.predict(flux, distance_kpc=4 * d)
    assert not np.allclose(far.ml.values, out.ml.values)
    from pidoc_core.model.spec import ModelError

    with pytest.raises(ModelError, match="needs a distance: give distance_kpc"):
        model.predict(flux, mass_network="distance-aware")
    with pytest.raises(ModelError, match="distance_kpc must be positive and finite"):
        model.predict(flux, distance_kpc=-1.0)


def test_training_on_extra_stores_records_them_and_their_conditions(tmp_path):
    """`pidoc train mass-ml --extra-train STORE --augment dihedral+luminosity`: the extra store's
    maps train too, and the manifest's data record covers both stores."""
    import argparse

    from pidoc_core import dataset as D

    from .test_dataset import PlummerRun

    data = _tiny_splits(tmp_path)
    extra = tmp_path / "extra.zarr"
    D.build_dataset({"X": PlummerRun("X", 3.0, n_stars=400, times=(5.0, 6.0))}, n_samples=8,
                    distances_kpc=[20.0, 70.0], psf_fwhms_arcsec=[1.0], seed=1, store=extra,
                    chunk_size=4, progress=False, imager_options={"fov_arcsec": 8.0})
    parser = training.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["mass-ml", "--dataset", str(data), "--extra-train", str(extra),
                              "--out", str(tmp_path / "run"), "--epochs", "1", "--filters", "4",
                              "8", "--batch-size", "4", "--augment", "dihedral+luminosity",
                              "--verbose", "0"])
    assert training.run_train(args) == 0
    manifest = json.loads((tmp_path / "run" / training.EXPORT_DIR / "manifest.json").read_text())
    prov = manifest["training"]["data"]
    assert prov["extra_train"] == [str(extra.resolve())]
    assert prov["extra_train_info_0"]["n_samples"] == 8 and prov["augmentation"] == (
        "dihedral+luminosity")
    both = D.concat_splits([data / "train.zarr", extra])
    assert prov["training_mass_to_light"] == pytest.approx(D.training_mass_to_light(both))
    assert {20.0, 70.0} <= set(prov["training_grid"]["distance_kpc"])
    assert prov["training_grid"]["time_gyr"][1] == 6.0  # the extra run's times
    # `pidoc combine` without --train measures the range on the stores the networks record
    from pidoc_core.model.ship import _recorded_training_stores

    export = tmp_path / "run" / training.EXPORT_DIR
    assert _recorded_training_stores(None, export) == [str((data / "train.zarr").resolve()),
                                                       str(extra.resolve())]
    extra.rename(tmp_path / "moved.zarr")  # a recorded store gone: no silent partial range
    assert _recorded_training_stores(export) is None
    extra = (tmp_path / "moved.zarr").rename(extra)
    with pytest.raises(D.DatasetError, match="concat_splits: the stores differ in split"):
        training.run_train(parser.parse_args(
            ["mass-ml", "--dataset", str(data), "--extra-train", str(data / "val.zarr"),
             "--out", str(tmp_path / "run2"), "--epochs", "1", "--verbose", "0"]))


def test_array_pipeline_shuffles_each_epoch_reproducibly_and_adds_the_channel():
    x = np.arange(10 * 4 * 4, dtype=np.float16).reshape(10, 4, 4)
    y = np.arange(20, dtype=np.float32).reshape(10, 2)
    ds = training.array_pipeline(x, y, batch_size=4, shuffle=True, seed=1, channel=np.arange(10))
    batches = list(ds.take(6))
    first, second = (np.concatenate([b[1].numpy()[:, 0] for b in batches[i:i + 3]])
                     for i in (0, 3))
    assert sorted(first // 2) == list(range(10)) == sorted(second // 2)  # whole epochs
    assert not np.array_equal(first, second)  # reshuffled
    xb, yb = batches[0]
    assert xb.shape == (4, 4, 4, 2) and xb.dtype.name == "float32"
    # channel 1 is the sample's value everywhere; channel 0 its map
    idx = (yb.numpy()[:, 0] // 2).astype(int)
    np.testing.assert_array_equal(xb.numpy()[:, :, :, 1], np.broadcast_to(
        idx[:, None, None].astype(np.float32), (4, 4, 4)))
    np.testing.assert_array_equal(xb.numpy()[..., 0], x[idx].astype(np.float32))
    resumed = training.array_pipeline(x, y, batch_size=4, shuffle=True, seed=1, first_epoch=1)
    again = np.concatenate([b[1].numpy()[:, 0] for b in resumed.take(3)])
    np.testing.assert_array_equal(again, second)


def test_dihedral_augmentation_turns_inputs_and_map_targets_alike_and_resumes():
    from pidoc_core.training import array_pipeline

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8, 8)).astype(np.float16)
    y_map = (x * 2).astype(np.float16)
    y_vec = rng.normal(size=(40, 2)).astype(np.float32)

    def first(ds, n):
        return [tuple(np.asarray(t) for t in b) for _, b in zip(range(n), ds)]

    plain = first(array_pipeline(x, y_map, batch_size=4, shuffle=True, seed=3), 20)
    turned = first(array_pipeline(x, y_map, batch_size=4, shuffle=True, seed=3,
                                  augment="dihedral"), 20)
    seen = set()
    for (xp, yp), (xa, ya) in zip(plain, turned):
        matches = [(k, f) for k in range(4) for f in (False, True)
                   if np.array_equal(xa, (lambda a: a[:, :, ::-1] if f else a)(
                       np.rot90(xp, k, axes=(1, 2))))]
        assert matches, "an augmented batch is not a symmetry of the square of the plain one"
        k, f = matches[0]
        t = np.rot90(yp, k, axes=(1, 2))
        np.testing.assert_array_equal(ya, t[:, :, ::-1] if f else t)  # the target turned alike
        seen.add((k, f))
    assert len(seen) >= 4  # several of the 8 symmetries over 20 batches
    # a run resumed at epoch 1 sees the batches an uninterrupted one saw (10 batches per epoch)
    resumed = first(array_pipeline(x, y_map, batch_size=4, shuffle=True, seed=3, first_epoch=1,
                                   augment="dihedral"), 10)
    for a, b in zip(turned[10:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
    # vector targets (age, distance) are not changed
    vec = first(array_pipeline(x, y_vec, batch_size=4, shuffle=True, seed=3,
                               augment="dihedral"), 5)
    ref = first(array_pipeline(x, y_vec, batch_size=4, shuffle=True, seed=3), 5)
    for a, b in zip(vec, ref):
        np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match=r"augment must be one of \['none', 'dihedral', "
                                         r"'luminosity', 'dihedral\+luminosity'\]"):
        array_pipeline(x, y_vec, batch_size=4, shuffle=True, augment="mirror")


def test_luminosity_augmentation_scales_flux_and_mass_alike_and_keeps_the_rest():
    """Each map becomes a cluster with 10^u times the stars: log flux and log mass grow by u (in
    standardised units), |u| <= 0.3 dex; the distance channel, M/L and age targets stay."""
    from pidoc_core.training import array_pipeline
    from pidoc_core.training.data import LUMINOSITY_AUGMENT_DEX

    rng = np.random.default_rng(0)
    n = 64
    x = rng.normal(size=(n, 6, 6)).astype(np.float32)
    y = rng.normal(size=(n, 6, 6)).astype(np.float32)
    key = np.arange(n, dtype=np.float32)  # the channel names each map
    per_dex = (1 / 0.5, 1 / 0.8)  # 1 / flux_std, 1 / mass_std

    def batches(yy, augment, **kw):
        ds = array_pipeline(x, yy, batch_size=8, shuffle=True, seed=5, channel=key,
                            augment=augment, luminosity_per_dex=per_dex, **kw)
        return [tuple(np.asarray(t) for t in b) for _, b in zip(range(16), ds)]

    shifts = []
    for xb, yb in batches(y, "luminosity"):
        idx = xb[:, 0, 0, 1].astype(int)
        np.testing.assert_array_equal(xb[..., 1], key[idx][:, None, None] + 0 * xb[..., 1])
        dx, dy = xb[..., 0] - x[idx], yb[..., 0] - y[idx]
        u = dx.mean(axis=(1, 2)) / per_dex[0]
        every = np.ones_like(dx)
        np.testing.assert_allclose(dx, u[:, None, None] * per_dex[0] * every, atol=1e-5)  # a map
        np.testing.assert_allclose(dy, u[:, None, None] * per_dex[1] * every, atol=1e-5)  # same u
        shifts.extend(u)
    shifts = np.asarray(shifts)
    assert np.abs(shifts).max() <= LUMINOSITY_AUGMENT_DEX + 1e-6
    assert shifts.std() > 0.1 and len(np.unique(shifts.round(6))) == len(shifts)
    # vector targets (age, distance) and M/L maps (per-dex change 0) do not change
    y_vec = rng.normal(size=(n, 2)).astype(np.float32)
    per_dex = (2.0, 0.0)
    for xb, yb in batches(y_vec, "luminosity"):
        np.testing.assert_array_equal(yb, y_vec[xb[:, 0, 0, 1].astype(int)])
    # with the dihedral turns the same maps are shifted, then turned; resumable
    both = batches(y_vec, "dihedral+luminosity")
    again = batches(y_vec, "dihedral+luminosity", first_epoch=0)
    for a, b in zip(both, again):
        np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match=r"augment='luminosity' needs luminosity_per_dex="):
        array_pipeline(x, y, batch_size=4, shuffle=True, augment="luminosity")


def test_restandardise_outputs_keeps_the_predictions_in_physical_units():
    import keras

    from pidoc_core.training.options import restandardise_outputs

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                            keras.layers.Dense(2)])
    x = np.random.default_rng(1).normal(size=(16, 5)).astype(np.float32)
    joint_mean, joint_std = 29.5, 32.3  # the v0.1 convention: one pair for distance and age
    before = net.predict(x, verbose=0) * joint_std + joint_mean
    new_mean, new_std = [49.0, 7.0], [31.0, 4.0]
    restandardise_outputs(net, old_mean=joint_mean, old_std=joint_std, new_mean=new_mean,
                          new_std=new_std)
    after = net.predict(x, verbose=0) * np.asarray(new_std) + np.asarray(new_mean)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-4)
    relu_last = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="relu")])
    with pytest.raises(ValueError, match="is not a linear Dense layer with a bias"):
        restandardise_outputs(relu_last, old_mean=0, old_std=1, new_mean=0, new_std=1)


def test_fine_tune_age_distance_with_per_output_targets_and_dihedral_batches(tmp_path):
    """`pidoc train age-distance --init-from M --targets per-output --augment dihedral`."""
    import argparse

    from pidoc_core import dataset as D
    from pidoc_core.model import PiDOC

    data = _tiny_splits(tmp_path)
    parser = training.add_train_arguments(argparse.ArgumentParser())
    common = ["age-distance", "--dataset", str(data), "--builder", "build_age_distance_net",
              "--batch-size", "4", "--verbose", "0", "--steps-per-epoch", "1"]
    assert training.run_train(parser.parse_args(
        common + ["--out", str(tmp_path / "joint"), "--epochs", "1", "--filters", "4", "4"])) == 0
    start_dir = tmp_path / "joint" / training.EXPORT_DIR
    start = PiDOC.load(start_dir)
    assert np.ndim(start.standardisation["distance_age_std"]) == 0  # the paper's joint pair
    assert training.run_train(parser.parse_args(
        common + ["--out", str(tmp_path / "tuned"), "--epochs", "1", "--init-from",
                  str(start_dir), "--targets", "per-output", "--augment", "dihedral",
                  "--learning-rate", "1e-12"])) == 0
    tuned_dir = tmp_path / "tuned" / training.EXPORT_DIR
    tuned = PiDOC.load(tuned_dir)
    consts = D.standardisation(D.open_dataset(data / "train.zarr"), joint_distance_age=False)
    np.testing.assert_allclose(tuned.standardisation["distance_age_mean"],
                               consts["distance_age_mean"])
    np.testing.assert_allclose(tuned.standardisation["distance_age_std"],
                               consts["distance_age_std"])
    manifest = json.loads((tuned_dir / "manifest.json").read_text())
    prov = manifest["training"]["data"]
    assert (prov["augmentation"], prov["targets_standardisation"]) == ("dihedral", "per-output")
    # re-expressed, not retrained (lr ~ 0): the same ages and distances in Gyr and kpc, up to
    # one batch's update of the batch-normalisation statistics
    flux = D.open_dataset(data / "val.zarr").flux.values[:4]
    a, b = start.predict(flux, mass_network="none"), tuned.predict(flux, mass_network="none")
    np.testing.assert_allclose(b.age.values, a.age.values, rtol=0.02, atol=0.05)
    np.testing.assert_allclose(b.distance.values, a.distance.values, rtol=0.02, atol=0.05)
    with pytest.raises(training.TrainingError, match="per-output applies to the age-distance"):
        training.run_train(parser.parse_args(["mass", "--dataset", str(data), "--out",
                                              str(tmp_path / "m"), "--targets", "per-output"]))
