"""What :func:`~pidoc_core.training.fit` makes of its options: architecture, learning rate,
loss, distribution strategy, precision, standardisation, and the summary of the curves."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np

from .. import networks
from ._common import BUILDERS, KINDS, PAPER_LOSSES


def _resolve_architecture(kind, architecture, model, data):
    builder = KINDS[kind]
    if model is not None:
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, not {type(model).__name__}")
        spec = networks.architecture_of(model)
        if spec is None:
            raise ValueError(
                "model has no architecture record: build it with pidoc_core.networks "
                f"({builder}) so that the trained network can be exported and reloaded")
        if architecture is not None:
            raise ValueError("pass either model or architecture, not both")
    elif architecture is None:
        spec = {"builder": builder, "kwargs": {}}
    elif isinstance(architecture, str):
        spec = json.loads(architecture)
    elif isinstance(architecture, dict):
        spec = (dict(architecture) if "builder" in architecture
                else {"builder": builder, "kwargs": dict(architecture)})
    else:
        raise TypeError(f"architecture must be a dict (builder kwargs or an architecture "
                        f"record), not {type(architecture).__name__}")
    if spec.get("builder") not in BUILDERS[kind]:
        raise ValueError(f"a {kind!r} network is built by one of {list(BUILDERS[kind])}, but "
                         f"the architecture names {spec.get('builder')!r}")
    kwargs = dict(spec.get("kwargs", {}))
    if model is None and "input_shape" not in kwargs and None not in data.x_shape:
        kwargs["input_shape"] = list(data.x_shape)
    return {"builder": spec["builder"], "kwargs": kwargs}


def _learning_rate(learning_rate, schedule, *, epochs, steps_per_epoch):
    """Adam's learning rate: a float, or a cosine decay over the whole run with a short warm-up
    (5 % of the steps, at most 300) from 0 to ``learning_rate``, down to 1 % of it at the end."""
    if schedule == "constant":
        return learning_rate
    if steps_per_epoch is None:
        raise ValueError("lr_schedule='cosine' needs the number of steps per epoch: pass "
                         "steps_per_epoch= (or array data, whose size gives it)")
    total = int(epochs) * int(steps_per_epoch)
    warm = min(300, total // 20)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(total - warm, 1), alpha=0.01, warmup_target=learning_rate,
        warmup_steps=warm)


def _make_loss(kind, loss, *, vgg_weights, seed):
    """(loss object, description dict)."""
    if loss is None:
        loss = PAPER_LOSSES[kind]
    if isinstance(loss, str):
        name = loss.lower()
        if name == "perceptual":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                obj = networks.PerceptualLoss(vgg_weights=vgg_weights, seed=seed)
            for w in caught:
                if "random VGG16" not in str(w.message):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if obj.vgg_source.startswith("random"):
                warnings.warn(
                    f"the perceptual loss uses a random VGG16 (vgg_source={obj.vgg_source!r}): "
                    "pass vgg_weights= (ImageNet VGG16 'notop' .h5) to train as the paper did",
                    stacklevel=3,
                )
        elif name in ("mse", "mean_squared_error"):
            obj = keras.losses.MeanSquaredError(name="mse")
            name = "mse"
        else:
            raise ValueError(f"loss must be 'perceptual', 'mse' or a keras.losses.Loss, got "
                             f"{loss!r}")
    elif isinstance(loss, keras.losses.Loss):
        obj = loss
        name = getattr(loss, "name", type(loss).__name__)
    else:
        raise TypeError(f"loss must be 'perceptual', 'mse' or a keras.losses.Loss, not "
                        f"{type(loss).__name__}")
    desc = {"name": name, "class": type(obj).__name__}
    if isinstance(obj, networks.PerceptualLoss):
        desc.update(vgg_source=obj.vgg_source, vgg_weights=obj.vgg_weights,
                    feature_layers=list(obj.feature_layers), vgg_seed=obj.seed)
    return obj, desc


def _resolve_strategy(strategy):
    """A tf.distribute.Strategy or None (default, single device)."""
    if strategy is None:
        return None
    if isinstance(strategy, str):
        s = strategy.lower()
        if s in ("none", "default"):
            return None
        if keras.backend.backend() != "tensorflow":
            if s == "auto":
                return None
            raise ValueError(f"strategy={strategy!r} needs the TensorFlow backend; the backend "
                             f"is {keras.backend.backend()!r}")
        import tensorflow as tf  # noqa: PLC0415

        gpus = tf.config.list_logical_devices("GPU")
        if s == "auto":
            return tf.distribute.MirroredStrategy() if len(gpus) > 1 else None
        if s == "mirrored":
            devices = gpus or tf.config.list_logical_devices("CPU")
            return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
        raise ValueError(f"strategy must be None, 'auto', 'mirrored' or a "
                         f"tf.distribute.Strategy, got {strategy!r}")
    if not hasattr(strategy, "scope"):
        raise TypeError(f"strategy must be None, 'auto', 'mirrored' or a tf.distribute.Strategy,"
                        f" not {type(strategy).__name__}")
    return strategy


def _precision_policy(mixed_precision) -> str:
    """The Keras dtype policy of ``mixed_precision`` (False/None, True, 'float16', 'bfloat16')."""
    if mixed_precision in (None, False):
        return "float32"
    if mixed_precision is True or mixed_precision in ("float16", "mixed_float16"):
        return "mixed_float16"
    if mixed_precision in ("bfloat16", "mixed_bfloat16"):
        return "mixed_bfloat16"
    raise ValueError(f"mixed_precision must be False, True, 'float16' or 'bfloat16', got "
                     f"{mixed_precision!r}")


#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags(path: str = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags, or None where ``path`` cannot be read (not Linux)."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def _warn_emulated_bfloat16(policy: str, *, flags=None) -> bool:
    """Warn when bfloat16 would run on a CPU without native bfloat16 (and no GPU): TensorFlow
    then emulates it, and training is many times slower than in float32 (on an AMD EPYC without
    AVX512-BF16, an age/distance epoch that takes 145 s in float32 had not ended after 22 min).
    Returns whether it warned."""
    if policy != "mixed_bfloat16":
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    flags = _cpu_flags() if flags is None else set(flags)
    if flags is None or flags & set(_BF16_CPU_FLAGS):
        return False
    warnings.warn("--mixed-precision bfloat16 on a CPU without AVX512-BF16 or AMX (and no GPU): "
                  "TensorFlow emulates bfloat16 here, and training is many times slower than in "
                  "float32; leave out --mixed-precision", RuntimeWarning, stacklevel=3)
    return True


def _precision_record(policy: str):
    """What checkpoints and manifests record: False, True (float16, as before) or 'bfloat16'."""
    return {"float32": False, "mixed_float16": True, "mixed_bfloat16": "bfloat16"}[policy]


def _float32_output(net, *, mixed):
    """The network itself, or (under mixed precision) a wrapper casting the output to float32."""
    if not mixed or str(net.output.dtype) == "float32":
        return net
    out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(net.output)
    wrapper = keras.Model(net.input, out, name=f"{net.name}_fp32_out")
    return wrapper


def _default_standardisation(kind, train, standardisation):
    if standardisation is None:
        cand = getattr(train, "standardisation", None)
        if isinstance(cand, dict):
            standardisation = cand
    if standardisation is None:
        warnings.warn(
            "no standardisation given: the export assumes the data are physical units "
            "(mean 0, std 1); pass standardisation= with the training-set constants",
            stacklevel=3,
        )
        standardisation = {"flux_mean": 0.0, "flux_std": 1.0}
        if kind == "mass":
            standardisation.update(mass_mean=0.0, mass_std=1.0)
        else:
            standardisation.update(distance_age_mean=0.0, distance_age_std=1.0)
    return {k: (np.asarray(v).tolist()) for k, v in dict(standardisation).items()}


def _curves_summary(history):
    out = {}
    if not history:
        return out
    keys = sorted({k for row in history for k in row if k != "epoch"})
    for k in keys:
        vals = [row[k] for row in history if k in row]
        best_fn = np.argmax if k.endswith("r2") else np.argmin
        i = int(best_fn(vals))
        out[k] = {"first": vals[0], "last": vals[-1], "best": vals[i],
                  "best_epoch": int(history[i]["epoch"])}
    return out


def restandardise_outputs(network, *, old_mean, old_std, new_mean, new_std) -> None:
    """Re-express a network's linear last layer in other standardisation units, in place.

    A network that predicts ``o`` with targets ``y = o * old_std + old_mean`` then predicts
    ``o' = (y - new_mean) / new_std`` for the same inputs: the last Dense layer's kernel is
    scaled by ``old_std / new_std`` per output and its bias becomes
    ``(b * old_std + old_mean - new_mean) / new_std``. Used to fine-tune the age/distance
    network with one standardisation per output (age in Gyr no longer weighs ~1/8 of a kpc).

    Parameters
    ----------
    network : keras.Model
        Ends in a linear :class:`keras.layers.Dense` layer with a bias.
    old_mean, old_std, new_mean, new_std : float or sequence of float, keyword-only
        Constants per output (a scalar applies to every output), in the targets' units.
    """
    last = network.layers[-1]
    if not isinstance(last, keras.layers.Dense) or not last.use_bias or \
            last.activation not in (keras.activations.linear, None):
        raise ValueError(f"restandardise_outputs: the last layer {last.name!r} is not a linear "
                         "Dense layer with a bias")
    kernel, bias = last.get_weights()
    k = bias.shape[0]
    om, osd, nm, nsd = (np.broadcast_to(np.asarray(v, np.float64), (k,))
                        for v in (old_mean, old_std, new_mean, new_std))
    if not (np.all(osd > 0) and np.all(nsd > 0)):
        raise ValueError("restandardise_outputs: standard deviations must be > 0")
    last.set_weights([(kernel * (osd / nsd)).astype(kernel.dtype),
                      ((bias * osd + om - nm) / nsd).astype(bias.dtype)])
