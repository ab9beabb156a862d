"""PiDOC: trained pi-DOC networks with their standardisation, loading, saving and prediction.

A :class:`PiDOC` holds an optional mass network (flux map -> mass map, the encoder-decoder of
:func:`pidoc_core.networks.build_encoder_decoder`), an optional age/distance network (flux map ->
``[distance, age]``, :func:`pidoc_core.networks.build_age_distance_cnn`) and the standardisation
constants of their training set. :meth:`PiDOC.predict` takes log10 flux maps in Lsun kpc^-2 and
returns an :class:`xarray.Dataset` in physical units; standardisation happens inside.

Sources of a PiDOC:

- :meth:`PiDOC.from_v01`: the authors' Keras 2.3.1 release (Chardin & Bianchini 2021): ``CED.json``
  + ``CED_200.h5`` and ``CNN.json`` + ``CNN_100.h5`` with the standardisation ``.npy`` files. The
  JSON configs are mapped onto our builders (checked layer by layer) and the HDF5 weights are read
  with h5py by layer name.
- :meth:`PiDOC.load`: a directory written by :meth:`PiDOC.save`: ``manifest.json`` (architecture
  arguments, standardisation, conventions, provenance, sha256 of each file) and one
  ``.weights.h5`` per network. ``PiDOC.load()`` looks for the shipped model in ``weights/pidoc/``.
- :meth:`PiDOC.build`: freshly initialised networks, e.g. for training.

Conventions (the published networks'): input maps are 160 x 160 pixels of 0.25", values
log10(F / (Lsun kpc^-2)) standardised as ``(flux - flux_mean) / flux_std``; the mass network
outputs standardised log10(M / Msun) per pixel; the age/distance network outputs ``[distance, age]``
standardised with ``distance_age_mean``/``distance_age_std`` (v0.1: one joint scalar pair,
29.63 and 32.40, for distance in kpc and age in Gyr).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import xarray as xr

from . import networks
from ._atomic import replace_directory

__all__ = [
    "ModelError",
    "PiDOC",
    "OUTPUTS",
    "OUTPUT_UNITS",
    "MANIFEST_NAME",
    "DEFAULT_WEIGHTS_DIR",
]

#: Order of the age/distance network's outputs.
OUTPUTS = ("distance", "age")
#: Units of the outputs of :meth:`PiDOC.predict`.
OUTPUT_UNITS = {"mass": "log10(Msun)", "distance": "kpc", "age": "Gyr"}
#: Name of the manifest file of a saved model directory.
MANIFEST_NAME = "manifest.json"
#: Where the shipped, trained model lives in the repository.
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "pidoc"

_FORMAT = "pidoc-weights"
_FORMAT_VERSION = 1
_FILES = {"mass": "mass.weights.h5", "age_distance": "age_distance.weights.h5"}
_STANDARDISATION_KEYS = (
    "flux_mean",
    "flux_std",
    "mass_mean",
    "mass_std",
    "distance_age_mean",
    "distance_age_std",
)
# v0.1 file names; searched in the release directory and the release's own sub-directories.
_V01_NPY = {
    "flux_mean": "meanluminosityVtrain.npy",
    "flux_std": "stdluminosityVtrain.npy",
    "mass_mean": "meanmasstrain.npy",
    "mass_std": "stdmasstrain.npy",
    "distance_age_mean": "mean_distance_age_train.npy",
    "distance_age_std": "std_distance_age_train.npy",
}
_V01_SUBDIRS = (".", "trained_piDOC", "input_files/standardization_files", "input_files")


class ModelError(ValueError):
    """A model file, manifest or input map that pi-DOC cannot use; the message says why."""


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _as_float_or_pair(name, value):
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        out = float(arr)
    elif arr.shape == (len(OUTPUTS),):
        out = [float(v) for v in arr]
    else:
        raise ModelError(
            f"standardisation {name} must be a scalar or one value per output {OUTPUTS}, "
            f"got {value!r}"
        )
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"standardisation {name} must be finite, got {value!r}")
    if name.endswith("_std") and np.any(arr <= 0):
        raise ModelError(f"standardisation {name} must be > 0, got {value!r}")
    return out


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
        "weights_sha256": _sha256(h5),
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
# PiDOC
# ---------------------------------------------------------------------------------------------


class PiDOC:
    """The pi-DOC networks with their standardisation constants.

    Parameters
    ----------
    mass_network : keras.Model, optional
        Standardised log10 flux ``(n, H, W, 1)`` -> standardised log10 mass ``(n, H, W, 1)``.
    age_distance_network : keras.Model, optional
        Standardised log10 flux ``(n, H, W, 1)`` -> ``(n, 2)`` standardised ``[distance, age]``.
    standardisation : dict
        ``flux_mean``, ``flux_std`` (log10 Lsun kpc^-2); ``mass_mean``, ``mass_std`` (log10 Msun,
        needed with a mass network); ``distance_age_mean``, ``distance_age_std`` (needed with an
        age/distance network): a scalar applied to both outputs (v0.1) or ``[distance (kpc),
        age (Gyr)]`` pairs.
    mass_architecture, age_distance_architecture : dict, optional
        Builder records ``{"builder": ..., "kwargs": ...}``; taken from models made by
        :mod:`pidoc_core.networks` builders when not given. Needed by :meth:`save`.
    provenance : dict, optional
        Free-form description of where the weights come from; stored in manifests.

    Attributes
    ----------
    xla : bool
        Whether :meth:`predict` sends full batches of at least :attr:`XLA_MIN_BATCH` maps through
        an XLA-compiled call (default True; compiled once per network and batch size, ~1-2 s;
        about twice as fast per map on a CPU, equal to ``predict_on_batch`` to ~1e-6).

    Examples
    --------
    >>> pidoc = PiDOC.from_v01("weights/pidoc-v0.1")  # doctest: +SKIP
    >>> ds = pidoc.predict(flux_map)  # doctest: +SKIP
    >>> float(ds.distance[0]), ds.distance.attrs["units"]  # doctest: +SKIP
    (31.2, 'kpc')
    """

    def __init__(
        self,
        *,
        mass_network: keras.Model | None = None,
        age_distance_network: keras.Model | None = None,
        standardisation: dict,
        mass_architecture: dict | None = None,
        age_distance_architecture: dict | None = None,
        provenance: dict | None = None,
    ):
        if mass_network is None and age_distance_network is None:
            raise ModelError("a PiDOC needs a mass network, an age/distance network or both")
        self.mass_network = mass_network
        self.age_distance_network = age_distance_network
        self.mass_architecture = mass_architecture or (
            networks.architecture_of(mass_network) if mass_network is not None else None
        )
        self.age_distance_architecture = age_distance_architecture or (
            networks.architecture_of(age_distance_network)
            if age_distance_network is not None
            else None
        )
        self.standardisation = self._check_standardisation(standardisation)
        self.provenance = dict(provenance or {})
        shapes = {
            tuple(net.input_shape[1:])
            for net in (mass_network, age_distance_network)
            if net is not None
        }
        if len(shapes) != 1:
            raise ModelError(f"the networks take different input shapes: {sorted(shapes)}")
        (shape,) = shapes
        if len(shape) != 3 or shape[-1] != 1 or None in shape:
            raise ModelError(f"the networks must take (H, W, 1) maps, not {shape}")
        if age_distance_network is not None and age_distance_network.output_shape[1:] != (
            len(OUTPUTS),
        ):
            raise ModelError(
                f"the age/distance network must output {len(OUTPUTS)} values {OUTPUTS}, "
                f"not shape {age_distance_network.output_shape[1:]}"
            )
        self.map_shape = tuple(int(s) for s in shape[:2])
        self._lock = threading.Lock()
        self.xla = True
        self._compiled = {}

    def _check_standardisation(self, standardisation):
        s = dict(standardisation)
        unknown = set(s) - set(_STANDARDISATION_KEYS)
        if unknown:
            raise ModelError(
                f"unknown standardisation keys {sorted(unknown)}; expected {_STANDARDISATION_KEYS}"
            )
        needed = ["flux_mean", "flux_std"]
        if self.mass_network is not None:
            needed += ["mass_mean", "mass_std"]
        if self.age_distance_network is not None:
            needed += ["distance_age_mean", "distance_age_std"]
        missing = [k for k in needed if s.get(k) is None]
        if missing:
            raise ModelError(f"standardisation lacks {missing}")
        out = {}
        for key in _STANDARDISATION_KEYS:
            if s.get(key) is None:
                continue
            value = _as_float_or_pair(key, s[key])
            if key.startswith(("flux", "mass")) and isinstance(value, list):
                raise ModelError(f"standardisation {key} must be a scalar, got {s[key]!r}")
            out[key] = value
        return out

    # -- properties --------------------------------------------------------------------------

    @property
    def has_mass(self) -> bool:
        """Whether a mass network is present."""
        return self.mass_network is not None

    @property
    def has_age_distance(self) -> bool:
        """Whether an age/distance network is present."""
        return self.age_distance_network is not None

    def __repr__(self):
        nets = [n for n, net in (("mass", self.mass_network),
                                 ("age/distance", self.age_distance_network)) if net is not None]
        source = self.provenance.get("source", "unknown source")
        return f"PiDOC({' + '.join(nets)}, maps {self.map_shape}, {source})"

    # -- constructors --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        mass: dict | bool | None = None,
        age_distance: dict | bool | None = None,
        standardisation: dict,
        provenance: dict | None = None,
    ) -> "PiDOC":
        """Freshly initialised networks, from builder keyword arguments.

        Parameters
        ----------
        mass, age_distance : dict or bool, optional
            Keyword arguments of :func:`~pidoc_core.networks.build_encoder_decoder` /
            :func:`~pidoc_core.networks.build_age_distance_cnn` (``True``: defaults; ``None`` or
            ``False``: no such network).
        standardisation, provenance
            As for :class:`PiDOC`.

        Examples
        --------
        >>> p = PiDOC.build(age_distance=True, standardisation=dict(  # doctest: +SKIP
        ...     flux_mean=-5.38, flux_std=0.97, distance_age_mean=29.63, distance_age_std=32.40))
        """
        def make(builder, spec):
            if spec is None or spec is False:
                return None
            return builder(**({} if spec is True else dict(spec)))

        return cls(
            mass_network=make(networks.build_encoder_decoder, mass),
            age_distance_network=make(networks.build_age_distance_cnn, age_distance),
            standardisation=standardisation,
            provenance=provenance,
        )

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
        mass_net, info = _load_v01_network(
            release_dir, "CED.json", "CED_*.h5", _encoder_decoder_kwargs,
            networks.build_encoder_decoder, mass_weights,
        )
        if mass_net is None:
            provenance["skipped"]["mass"] = info
        else:
            provenance["mass"] = info
        ad_net, info = _load_v01_network(
            release_dir, "CNN.json", "CNN_*.h5", _cnn_kwargs,
            networks.build_age_distance_cnn, age_distance_weights,
        )
        if ad_net is None:
            provenance["skipped"]["age_distance"] = info
        else:
            provenance["age_distance"] = info
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

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "PiDOC":
        """Load a model directory written by :meth:`save`, verifying every checksum.

        Parameters
        ----------
        path : path-like, optional
            The directory holding ``manifest.json``. ``None``: the shipped model,
            ``weights/pidoc/`` in the repository.

        Returns
        -------
        PiDOC

        Raises
        ------
        ModelError
            No such directory or manifest (for ``None``: no model shipped yet), an unreadable
            manifest, a missing file or a sha256 mismatch (naming the file), weights that do not
            fit the recorded architecture.
        """
        if path is None:
            directory = DEFAULT_WEIGHTS_DIR
            if not (directory / MANIFEST_NAME).is_file():
                raise ModelError(
                    f"no trained pi-DOC model is shipped yet: {directory / MANIFEST_NAME} does not "
                    "exist. Load a model directory with PiDOC.load(path), or the authors' v0.1 "
                    "release with PiDOC.from_v01('weights/pidoc-v0.1') (age/distance network only)."
                )
        else:
            directory = Path(path)
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ModelError(f"{manifest_path} does not exist; not a saved pi-DOC model directory")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {manifest_path}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise ModelError(f"{manifest_path}: not a {_FORMAT} manifest")
        if manifest.get("format_version") != _FORMAT_VERSION:
            raise ModelError(
                f"{manifest_path}: format_version {manifest.get('format_version')!r}, this "
                f"pi-DOC reads {_FORMAT_VERSION}"
            )
        files = manifest.get("files", {})
        for name, entry in files.items():
            fpath = directory / name
            if not fpath.is_file():
                raise ModelError(f"{fpath} listed in {manifest_path} does not exist")
            digest = _sha256(fpath)
            if digest != entry.get("sha256"):
                raise ModelError(
                    f"checksum mismatch for {fpath}: sha256 {digest}, manifest says "
                    f"{entry.get('sha256')}; the file is corrupt or was changed"
                )
        nets = {}
        for role, entry in manifest.get("networks", {}).items():
            if role not in _FILES:
                raise ModelError(f"{manifest_path}: unknown network {role!r}")
            fname = entry.get("file")
            if fname not in files:
                raise ModelError(
                    f"{manifest_path}: network {role!r} file {fname!r} has no checksum in 'files'"
                )
            try:
                net = networks.build_network(entry["architecture"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(
                    f"{manifest_path}: cannot build network {role!r} from its architecture: {exc}"
                ) from exc
            try:
                net.load_weights(directory / fname)
            except Exception as exc:  # Keras raises ValueError, OSError, KeyError...
                raise ModelError(f"cannot load weights {directory / fname}: {exc}") from exc
            nets[role] = (net, entry["architecture"])
        if not nets:
            raise ModelError(f"{manifest_path}: lists no networks")
        provenance = dict(manifest.get("provenance", {}))
        provenance["loaded_from"] = str(directory)
        return cls(
            mass_network=nets.get("mass", (None, None))[0],
            age_distance_network=nets.get("age_distance", (None, None))[0],
            mass_architecture=nets.get("mass", (None, None))[1],
            age_distance_architecture=nets.get("age_distance", (None, None))[1],
            standardisation=manifest.get("standardisation", {}),
            provenance=provenance,
        )

    # -- saving --------------------------------------------------------------------------------

    def manifest(self) -> dict:
        """The manifest :meth:`save` writes, without the ``files`` checksums."""
        nets = {}
        for role, net, arch in (
            ("mass", self.mass_network, self.mass_architecture),
            ("age_distance", self.age_distance_network, self.age_distance_architecture),
        ):
            if net is None:
                continue
            if arch is None:
                raise ModelError(
                    f"the {role} network has no architecture record: build it with "
                    "pidoc_core.networks or pass the architecture to PiDOC"
                )
            nets[role] = {"file": _FILES[role], "architecture": arch,
                          "parameters": int(net.count_params())}
        outputs = {}
        if self.has_mass:
            outputs["mass"] = {
                "dims": ["sample", "y", "x"], "units": OUTPUT_UNITS["mass"],
                "network_output": "(log10 M - mass_mean) / mass_std per pixel",
            }
        if self.has_age_distance:
            outputs["distance_age"] = {
                "order": list(OUTPUTS), "units": [OUTPUT_UNITS[k] for k in OUTPUTS],
                "network_output": "(value - distance_age_mean) / distance_age_std",
            }
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
            "inputs": {
                "flux": {
                    "shape": list(self.map_shape),
                    "pixel_arcsec": 0.25,
                    "units": "log10(Lsun kpc-2)",
                    "network_input": "(log10 F - flux_mean) / flux_std",
                }
            },
            "outputs": outputs,
            "standardisation": self.standardisation,
            "networks": nets,
            "provenance": self.provenance,
        }

    @classmethod
    def combine(cls, *, mass: "PiDOC", age_distance: "PiDOC") -> "PiDOC":
        """One model from a mass network and an age/distance network trained separately.

        Parameters
        ----------
        mass, age_distance : PiDOC
            Models holding the mass network and the age/distance network; both must standardise
            the input flux maps identically (train with ``--flux-standardisation-from``).

        Raises
        ------
        ModelError
            If a network is missing or the flux standardisations differ.
        """
        if mass.mass_network is None:
            raise ModelError("combine: the 'mass' model has no mass network")
        if age_distance.age_distance_network is None:
            raise ModelError("combine: the 'age_distance' model has no age/distance network")
        for key in ("flux_mean", "flux_std"):
            a, b = mass.standardisation[key], age_distance.standardisation[key]
            if not np.isclose(a, b, rtol=1e-6, atol=0.0):
                raise ModelError(f"combine: the networks standardise flux differently ({key} "
                                 f"{a!r} vs {b!r}); retrain one with --flux-standardisation-from")
        standardisation = {k: v for k, v in mass.standardisation.items()
                           if k.startswith(("flux", "mass"))}
        standardisation.update({k: v for k, v in age_distance.standardisation.items()
                                if k.startswith("distance_age")})
        provenance = {**age_distance.provenance, **mass.provenance,
                      "mass_network": dict(mass.provenance),
                      "age_distance_network": dict(age_distance.provenance)}
        provenance.pop("loaded_from", None)
        return cls(mass_network=mass.mass_network,
                   age_distance_network=age_distance.age_distance_network,
                   standardisation=standardisation,
                   mass_architecture=mass.mass_architecture,
                   age_distance_architecture=age_distance.age_distance_architecture,
                   provenance=provenance)

    def save(
        self,
        directory: str | os.PathLike,
        *,
        manifest_extra: dict | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the networks' ``.weights.h5`` and ``manifest.json`` to a directory, atomically.

        Everything is written to a temporary directory next to ``directory`` and renamed into
        place, so a reader never sees a half-written model.

        Parameters
        ----------
        directory : path-like
            Target directory (created; must not exist unless ``overwrite``).
        manifest_extra : dict, optional
            More top-level manifest entries: training data provenance, metrics, VGG source of
            the perceptual loss... They may not replace the entries PiDOC writes.
        overwrite : bool
            Replace an existing directory.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        directory = Path(directory)
        if directory.exists() and not overwrite:
            raise ModelError(f"{directory} exists; pass overwrite=True to replace it")
        manifest = self.manifest()
        extra = dict(manifest_extra or {})
        clash = sorted(set(extra) & (set(manifest) | {"files"}))
        if clash:
            raise ModelError(f"manifest_extra may not replace the manifest's {clash}")
        manifest.update(extra)
        try:
            json.dumps(manifest)
        except TypeError as exc:
            raise ModelError(f"manifest_extra is not JSON-serialisable: {exc}") from exc
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        try:
            files = {}
            for role, net in (("mass", self.mass_network),
                              ("age_distance", self.age_distance_network)):
                if net is None:
                    continue
                fpath = tmp / _FILES[role]
                net.save_weights(fpath)
                files[fpath.name] = {"sha256": _sha256(fpath), "bytes": fpath.stat().st_size}
            manifest["files"] = files
            with open(tmp / MANIFEST_NAME, "w") as f:
                json.dump(manifest, f, indent=2, sort_keys=False)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            replace_directory(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    # -- prediction ----------------------------------------------------------------------------

    def _check_flux(self, flux):
        """-> (float32 array (n, H, W), {name: (dim, values, attrs)} coordinates to keep)."""
        coords = {}
        if isinstance(flux, xr.DataArray):
            values = flux.values
            sample_dim = flux.dims[0] if flux.ndim in (3, 4) else None
            y_dim, x_dim = flux.dims[-2:] if flux.ndim in (2, 3) else flux.dims[-3:-1]
            rename = {y_dim: "y", x_dim: "x"}
            for name, c in flux.coords.items():
                if sample_dim is not None and c.dims == (sample_dim,):
                    if name not in OUTPUT_UNITS:  # would clash with an output variable
                        coords[name] = ("sample", c.values, c.attrs)
                elif self.has_mass and len(c.dims) == 1 and c.dims[0] in rename:
                    if name not in OUTPUT_UNITS:
                        coords[name] = (rename[c.dims[0]], c.values, c.attrs)
        elif isinstance(flux, xr.Dataset):
            raise ModelError("pass the flux DataArray (e.g. ds['flux']), not a Dataset")
        else:
            values = flux
        try:
            arr = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"flux map must be numeric, got {type(values).__name__}") from exc
        h, w = self.map_shape
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (h, w) or arr.shape[0] == 0:
            raise ModelError(
                f"flux map must have shape ({h}, {w}) or (n, {h}, {w}) with n >= 1; got "
                f"{np.shape(values)}"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            samples = np.flatnonzero(bad.any(axis=(1, 2)))
            raise ModelError(
                f"flux map has {int(bad.sum())} NaN/inf pixel(s) in sample(s) "
                f"{samples[:10].tolist()}{' ...' if samples.size > 10 else ''}; pi-DOC needs "
                "finite log10 flux everywhere (use the imager's floor for empty pixels)"
            )
        return arr, coords

    #: Smallest batch that :meth:`predict` compiles with XLA (smaller ones are not worth it).
    XLA_MIN_BATCH = 16

    def _compiled_call(self, net):
        """``net(x, training=False)`` compiled with XLA; None when XLA is off or unavailable."""
        if not self.xla:
            return None
        key = id(net)
        if key not in self._compiled:
            import tensorflow as tf

            @tf.autograph.experimental.do_not_convert
            def call(x):
                return net(x, training=False)

            self._compiled[key] = tf.function(call, jit_compile=True, reduce_retracing=False)
        return self._compiled[key]

    def _run(self, net, x, batch_size):
        out = []
        with self._lock:
            compiled = self._compiled_call(net) if batch_size >= self.XLA_MIN_BATCH else None
            for start in range(0, x.shape[0], batch_size):
                chunk = x[start:start + batch_size]
                if compiled is not None and chunk.shape[0] == batch_size:
                    try:
                        out.append(np.asarray(compiled(chunk)))
                        continue
                    except Exception as exc:  # an op without an XLA kernel on this build
                        import warnings

                        warnings.warn(f"XLA compilation failed ({type(exc).__name__}: {exc}); "
                                      "predicting without it", RuntimeWarning, stacklevel=3)
                        self.xla = False
                        compiled = None
                out.append(np.asarray(net.predict_on_batch(chunk)))
        return np.concatenate(out, axis=0)

    def predict(self, flux, *, batch_size: int = 32) -> xr.Dataset:
        """Predict mass map, distance and age from log10 flux maps.

        Parameters
        ----------
        flux : numpy.ndarray or xarray.DataArray
            One map ``(H, W)`` or a batch ``(n, H, W)`` (a trailing channel of 1 is accepted) of
            log10(F / (Lsun kpc^-2)), not standardised, finite everywhere; ``(H, W)`` is
            :attr:`map_shape` (160 x 160 for the published networks). A DataArray's coordinates
            along its first (sample) dimension are kept on ``sample``, except ones named like an
            output (``mass``, ``age``, ``distance``).
        batch_size : int
            Maps per network call.

        Returns
        -------
        xarray.Dataset
            ``mass`` (log10 Msun per pixel, dims ``sample, y, x``; only with a mass network),
            ``distance`` (kpc) and ``age`` (Gyr) (dims ``sample``; only with an age/distance
            network). A single map gives ``sample`` of length 1.

        Raises
        ------
        ModelError
            Wrong shape, non-numeric or non-finite input.

        Notes
        -----
        Thread-safe: network calls are serialised by a lock. Runs in inference mode: full batches
        of ``batch_size >= XLA_MIN_BATCH`` maps through an XLA-compiled call (see :attr:`xla`),
        the rest through ``predict_on_batch``; never ``Model.predict``.

        Examples
        --------
        >>> ds = PiDOC.from_v01("weights/pidoc-v0.1").predict(np.full((160, 160), -5.4))
        ... # doctest: +SKIP
        >>> ds.age.attrs["units"]  # doctest: +SKIP
        'Gyr'
        """
        arr, coords = self._check_flux(flux)
        s = self.standardisation
        x = ((arr - s["flux_mean"]) / s["flux_std"]).astype(np.float32)[..., None]
        batch_size = max(1, int(batch_size))
        data_vars = {}
        if self.has_mass:
            m = self._run(self.mass_network, x, batch_size)[..., 0].astype(np.float64)
            data_vars["mass"] = (
                ("sample", "y", "x"),
                (m * s["mass_std"] + s["mass_mean"]).astype(np.float32),
                {"units": OUTPUT_UNITS["mass"], "long_name": "log10 of the mass per pixel"},
            )
        if self.has_age_distance:
            out = self._run(self.age_distance_network, x, batch_size).astype(np.float64)
            out = out * np.asarray(s["distance_age_std"]) + np.asarray(s["distance_age_mean"])
            for i, key in enumerate(OUTPUTS):
                data_vars[key] = (
                    ("sample",),
                    out[:, i],
                    {"units": OUTPUT_UNITS[key], "long_name": f"predicted {key}"},
                )
        attrs = {"model": self.provenance.get("source", "pi-DOC")}
        if "loaded_from" in self.provenance:
            attrs["model_path"] = self.provenance["loaded_from"]
        ds = xr.Dataset(data_vars, attrs=attrs)
        for name, (dim, values, cattrs) in coords.items():
            ds = ds.assign_coords({name: (dim, values, cattrs)})
        return ds
