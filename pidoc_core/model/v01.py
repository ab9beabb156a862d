"""Import of the authors' Keras 2.3.1 release of pi-DOC v0.1 (Chardin & Bianchini 2021).

``CED.json`` + ``CED_200.h5`` (mass network) and ``CNN.json`` + ``CNN_100.h5`` (age/distance
network) with the standardisation ``.npy`` files. Each JSON config is mapped onto our builders
(checked layer by layer: class, options, wiring) and the HDF5 weights are read with h5py by layer
name. :class:`V01Import` gives :class:`~pidoc_core.model.PiDOC` its :meth:`from_v01` constructor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np

from .. import networks
from .io import sha256
from .spec import ModelError

__all__ = ["V01Import", "V01_STANDARDISATION_FILES"]

#: v0.1 standardisation file of each key; searched in the release directory and the release's
#: own sub-directories.
V01_STANDARDISATION_FILES = {
    "flux_mean": "meanluminosityVtrain.npy",
    "flux_std": "stdluminosityVtrain.npy",
    "mass_mean": "meanmasstrain.npy",
    "mass_std": "stdmasstrain.npy",
    "distance_age_mean": "mean_distance_age_train.npy",
    "distance_age_std": "std_distance_age_train.npy",
}
_V01_NPY = V01_STANDARDISATION_FILES
_V01_SUBDIRS = (".", "trained_piDOC", "input_files/standardization_files", "input_files")


def _keras_inbound_names(layer_config) -> list[str]:
    """Names of the layers feeding a layer in a Keras 3 functional config."""
    names = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "__keras_tensor__":
                names.append(obj["config"]["keras_history"][0])
                return
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    walk(layer_config.get("inbound_nodes", []))
    return names


# Layer options compared between a Keras 2 config and our builder's layer.
_CHECKED_OPTIONS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias"),
    "Dense": ("units", "activation", "use_bias"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "UpSampling2D": ("size", "interpolation"),
    "Activation": ("activation",),
    "SpatialDropout2D": ("rate",),
    "Dropout": ("rate",),
}


def _norm_option(v):
    if isinstance(v, (list, tuple)):
        return tuple(_norm_option(x) for x in v)
    if isinstance(v, float):
        return round(v, 12)
    return v


def _check_topology(k2_config: dict, model: keras.Model, path: Path) -> list[str]:
    """Check that ``model`` has the layers and wiring of a Keras 2 functional config.

    Layers are paired by position. Returns the Keras 2 layer names in that order.
    """
    k2_layers = k2_config["config"]["layers"]
    k3_config = model.get_config()["layers"]
    if len(k2_layers) != len(model.layers) or len(k3_config) != len(model.layers):
        raise ModelError(
            f"{path}: {len(k2_layers)} layers, but the pi-DOC builder made {len(model.layers)}; "
            "this architecture is not one pi-DOC can rebuild"
        )
    k2_index = {spec["name"]: i for i, spec in enumerate(k2_layers)}
    k3_index = {layer.name: i for i, layer in enumerate(model.layers)}
    for i, (spec, layer, k3) in enumerate(zip(k2_layers, model.layers, k3_config)):
        where = f"{path}: layer {i} {spec['name']!r} ({spec['class_name']})"
        if spec["class_name"] != type(layer).__name__:
            raise ModelError(f"{where} where the builder has {type(layer).__name__}")
        k2_in = [k2_index[n[0]] for node in spec.get("inbound_nodes", []) for n in node]
        k3_in = [k3_index[n] for n in _keras_inbound_names(k3)]
        if k2_in != k3_in:
            raise ModelError(f"{where} takes layers {k2_in}, the builder's takes {k3_in}")
        ours = layer.get_config()
        for key in _CHECKED_OPTIONS.get(spec["class_name"], ()):
            if _norm_option(spec["config"][key]) != _norm_option(ours[key]):
                raise ModelError(
                    f"{where} has {key}={spec['config'][key]!r}, the builder's {ours[key]!r}"
                )
    return [spec["name"] for spec in k2_layers]


def _encoder_decoder_kwargs(k2_config: dict, path: Path) -> dict:
    layers_ = k2_config["config"]["layers"]
    convs = [l["config"] for l in layers_ if l["class_name"] == "Conv2D"]
    drops = [l["config"] for l in layers_ if l["class_name"] == "SpatialDropout2D"]
    inputs = [l["config"] for l in layers_ if l["class_name"] == "InputLayer"]
    if len(convs) < 4 or len(convs) % 4 or not drops or len(inputs) != 1:
        raise ModelError(f"{path}: not a pi-DOC encoder-decoder config ({len(convs)} Conv2D)")
    n_levels = len(convs) // 4
    return dict(
        filters=[convs[2 * i]["filters"] for i in range(n_levels)],
        bottleneck_filters=convs[2 * n_levels]["filters"],
        dropout=drops[0]["rate"],
        input_shape=list(inputs[0]["batch_input_shape"][1:]),
    )


def _cnn_kwargs(k2_config: dict, path: Path) -> dict:
    layers_ = k2_config["config"]["layers"]
    convs = [l["config"] for l in layers_ if l["class_name"] == "Conv2D"]
    dense = [l["config"] for l in layers_ if l["class_name"] == "Dense"]
    sdrops = [l["config"] for l in layers_ if l["class_name"] == "SpatialDropout2D"]
    drops = [l["config"] for l in layers_ if l["class_name"] == "Dropout"]
    inputs = [l["config"] for l in layers_ if l["class_name"] == "InputLayer"]
    if not convs or not dense or not sdrops or len(drops) != 1 or len(inputs) != 1:
        raise ModelError(f"{path}: not a pi-DOC age/distance CNN config")
    if any(len(set(c["kernel_size"])) != 1 for c in convs):
        raise ModelError(f"{path}: only square convolution kernels are supported")
    return dict(
        filters=[c["filters"] for c in convs],
        kernel_sizes=[c["kernel_size"][0] for c in convs],
        dense_units=[d["units"] for d in dense[:-1]],
        dropout=sdrops[0]["rate"],
        dense_dropout=drops[0]["rate"],
        n_outputs=dense[-1]["units"],
        input_shape=list(inputs[0]["batch_input_shape"][1:]),
    )


def _set_keras2_weights(model, k2_names, h5_path: Path):
    """Copy Keras 2 HDF5 weights into ``model``; ``k2_names[i]`` names ``model.layers[i]``."""
    try:
        weights = networks.read_keras2_h5_weights(h5_path)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"cannot read Keras 2 weights from {h5_path}: {exc}") from exc
    expected = {name for name, layer in zip(k2_names, model.layers) if layer.weights}
    if set(weights) != expected:
        raise ModelError(
            f"{h5_path}: layers with weights {sorted(weights)} do not match the config's "
            f"{sorted(expected)}"
        )
    for name, layer in zip(k2_names, model.layers):
        if not layer.weights:
            continue
        stored = {w.split("/")[-1].split(":")[0]: a for w, a in weights[name]}
        values = []
        for var in layer.weights:
            key = var.name.split("/")[-1]
            if key not in stored or tuple(stored[key].shape) != tuple(var.shape):
                got = {k: tuple(a.shape) for k, a in stored.items()}
                raise ModelError(
                    f"{h5_path}: layer {name!r} holds {got}; expected {key} of shape "
                    f"{tuple(var.shape)}"
                )
            values.append(stored[key])
        layer.set_weights(values)


def _find_v01(release_dir: Path, pattern: str) -> list[Path]:
    found = []
    for sub in _V01_SUBDIRS:
        found.extend(sorted((release_dir / sub).glob(pattern)))
    return found


def _epoch_of(path: Path) -> int:
    digits = "".join(c for c in path.stem.split("_")[-1] if c.isdigit())
    return int(digits) if digits else -1


def _load_v01_network(release_dir, json_name, h5_pattern, kwargs_of, builder, explicit_h5):
    """(model, info) or (None, reason) for one v0.1 network."""
    jsons = _find_v01(release_dir, json_name)
    if explicit_h5 is not None:
        h5s = [Path(explicit_h5)]
        if not h5s[0].is_file():
            raise ModelError(f"weights file {h5s[0]} does not exist")
    else:
        h5s = sorted(_find_v01(release_dir, h5_pattern), key=_epoch_of)
    if not h5s:
        return None, f"no {h5_pattern} in {release_dir}"
    h5 = h5s[-1]  # the latest epoch if several
    if not jsons:
        raise ModelError(f"{h5} has no architecture: {json_name} not found in {release_dir}")
    json_path = jsons[0]
    try:
        k2_config = json.loads(json_path.read_text())
        kwargs = kwargs_of(k2_config, json_path)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"cannot read Keras 2 model config {json_path}: {exc}") from exc
    try:
        model = builder(**kwargs)
        k2_names = _check_topology(k2_config, model, json_path)
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(
            f"{json_path}: this architecture cannot be rebuilt with pi-DOC's builders: {exc!r}"
        ) from exc
    _set_keras2_weights(model, k2_names, h5)
    info = {
        "config": json_path.name,
        "weights": h5.name,
        "weights_sha256": sha256(h5),
        "keras_version": k2_config.get("keras_version"),
    }
    return model, info


def _load_npy_scalar(path: Path) -> float:
    try:
        value = np.load(path, allow_pickle=False)
        return float(np.asarray(value, dtype=float).reshape(()))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot read a scalar from {path}: {exc}") from exc


# ---------------------------------------------------------------------------------------------


class V01Import:
    """Mixin of :class:`~pidoc_core.model.PiDOC`: the :meth:`from_v01` constructor."""

    @classmethod
    def from_v01(
        cls,
        release_dir: str | os.PathLike,
        *,
        mass_weights: str | os.PathLike | None = None,
        age_distance_weights: str | os.PathLike | None = None,
    ) -> "PiDOC":
        """Load the authors' Keras 2.3.1 release of pi-DOC v0.1.

        Looks in ``release_dir`` and in the release's sub-directories (``trained_piDOC/``,
        ``input_files/standardization_files/``) for ``CED.json`` + ``CED_*.h5`` (mass network),
        ``CNN.json`` + ``CNN_*.h5`` (age/distance network; the latest epoch if several) and the
        standardisation ``.npy`` files. A network whose weights are absent is skipped (recorded in
        ``provenance["skipped"]``); at least one must be present. Each JSON config is mapped to
        our builder, the rebuilt model is checked layer by layer (class, options, wiring) against
        the JSON, and the HDF5 weights are read with h5py by layer name.

        Parameters
        ----------
        release_dir : path-like
            Directory of the release (e.g. ``weights/pidoc-v0.1``).
        mass_weights, age_distance_weights : path-like, optional
            Explicit ``.h5`` weight files instead of the ones found in ``release_dir``.

        Returns
        -------
        PiDOC

        Raises
        ------
        ModelError
            Missing directory, config, weights or standardisation file; unreadable or corrupt
            file; an architecture that does not match our builders. The message names the file.
        """
        release_dir = Path(release_dir)
        if not release_dir.is_dir():
            raise ModelError(f"pi-DOC v0.1 release directory {release_dir} does not exist")
        provenance = {
            "source": "pi-DOC v0.1 (Chardin & Bianchini 2021, MNRAS 504, 5656), Keras 2.3.1",
            "release_dir": str(release_dir),
            "skipped": {},
        }
        nets = {}
        for role, json_name, kwargs_of, builder, explicit in (
            ("mass", "CED.json", _encoder_decoder_kwargs, networks.build_encoder_decoder,
             mass_weights),
            ("age_distance", "CNN.json", _cnn_kwargs, networks.build_age_distance_cnn,
             age_distance_weights),
        ):
            h5_pattern = json_name.replace(".json", "_*.h5")
            nets[role], info = _load_v01_network(release_dir, json_name, h5_pattern, kwargs_of,
                                                 builder, explicit)
            (provenance["skipped"] if nets[role] is None else provenance)[role] = info
        mass_net, ad_net = nets["mass"], nets["age_distance"]
        if mass_net is None and ad_net is None:
            raise ModelError(
                f"no network weights in {release_dir}: {provenance['skipped']['mass']}, "
                f"{provenance['skipped']['age_distance']}"
            )
        needed = ["flux_mean", "flux_std"]
        if mass_net is not None:
            needed += ["mass_mean", "mass_std"]
        if ad_net is not None:
            needed += ["distance_age_mean", "distance_age_std"]
        standardisation = {}
        for key in needed:
            found = _find_v01(release_dir, _V01_NPY[key])
            if not found:
                raise ModelError(
                    f"standardisation file {_V01_NPY[key]} ({key}) not found in {release_dir}"
                )
            standardisation[key] = _load_npy_scalar(found[0])
        return cls(
            mass_network=mass_net,
            age_distance_network=ad_net,
            standardisation=standardisation,
            provenance=provenance,
        )

