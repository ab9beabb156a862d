"""Saved pi-DOC models: a directory with ``manifest.json`` and one ``.weights.h5`` per network.

The manifest records the architecture arguments, standardisation, conventions, provenance and the
sha256 of each file; :meth:`SavedModelIO.load` verifies every checksum and rebuilds each network
from code (:func:`pidoc_core.networks.build_network`), loading weights only. Whether a directory
is a saved model is decided here, by :func:`is_saved_model`, and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import keras

from .. import networks
from .._atomic import replace_directory
from ..conventions import PIXEL_ARCSEC
from .spec import OUTPUT_UNITS, OUTPUTS, ModelError

__all__ = [
    "MANIFEST_NAME",
    "DEFAULT_WEIGHTS_DIR",
    "SHIPPED_MODELS",
    "SavedModelIO",
    "resolve_model_path",
    "is_saved_model",
    "manifest_path",
    "sha256",
]

#: Name of the manifest file of a saved model directory.
MANIFEST_NAME = "manifest.json"
#: Where the shipped, trained model lives in the repository.
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "pidoc"
#: Shipped models by name: ``paper``, trained on the paper's protocol (its N = 50,000 runs; the
#: numbers of the model card), and ``wide``, trained on the grid that spans the paper's
#: Table 3 clusters (``pidoc dataset build --preset wide``), shipped once it is trained.
SHIPPED_MODELS = {"paper": DEFAULT_WEIGHTS_DIR,
                  "wide": DEFAULT_WEIGHTS_DIR.parent / "pidoc-wide"}


def resolve_model_path(path=None) -> Path:
    """The directory of a model: a shipped model's name (:data:`SHIPPED_MODELS`; ``None`` is
    ``'paper'``) or a path. A name that is also an existing directory is taken as the directory.

    Examples
    --------
    >>> resolve_model_path("paper") == resolve_model_path() == DEFAULT_WEIGHTS_DIR
    True
    """
    if path is None:
        return SHIPPED_MODELS["paper"]
    if isinstance(path, str) and path in SHIPPED_MODELS and not Path(path).is_dir():
        return SHIPPED_MODELS[path]
    return Path(path)

_FORMAT = "pidoc-weights"
_FORMAT_VERSION = 1
_FILES = {"mass": "mass.weights.h5", "mass_ml": "mass_ml.weights.h5",
          "age_distance": "age_distance.weights.h5"}


def sha256(path: Path) -> str:
    """Hex sha256 digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(directory: str | os.PathLike) -> Path:
    """The manifest file a saved model directory holds (it may not exist)."""
    return Path(directory) / MANIFEST_NAME


def is_saved_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory written by :meth:`SavedModelIO.save` (it has a manifest).

    Anything else is taken for the authors' v0.1 release by
    :func:`pidoc_core.model.open_model`.
    """
    return manifest_path(path).is_file()


def read_manifest(directory: Path) -> dict:
    """The manifest of a saved model directory, with its format and every file checksum verified.

    Raises
    ------
    ModelError
        No or unreadable manifest, another format or version, a listed file missing or changed.
    """
    path = manifest_path(directory)
    if not path.is_file():
        raise ModelError(f"{path} does not exist; not a saved pi-DOC model directory")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ModelError(f"{path}: not a {_FORMAT} manifest")
    if manifest.get("format_version") != _FORMAT_VERSION:
        raise ModelError(
            f"{path}: format_version {manifest.get('format_version')!r}, this "
            f"pi-DOC reads {_FORMAT_VERSION}"
        )
    for name, entry in manifest.get("files", {}).items():
        fpath = directory / name
        if not fpath.is_file():
            raise ModelError(f"{fpath} listed in {path} does not exist")
        digest = sha256(fpath)
        if digest != entry.get("sha256"):
            raise ModelError(
                f"checksum mismatch for {fpath}: sha256 {digest}, manifest says "
                f"{entry.get('sha256')}; the file is corrupt or was changed"
            )
    return manifest


def _write_json(path: Path, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


class SavedModelIO:
    """Mixin of :class:`~pidoc_core.model.PiDOC`: :meth:`load`, :meth:`manifest`, :meth:`save`."""

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "PiDOC":
        """Load a model directory written by :meth:`save`, verifying every checksum.

        Parameters
        ----------
        path : path-like or str, optional
            The directory holding ``manifest.json``, or a shipped model's name
            (:data:`SHIPPED_MODELS`: ``'paper'``, ``'wide'``). ``None``: ``'paper'``, the
            shipped model in ``weights/pidoc/``.

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
        directory = resolve_model_path(path)
        shipped = [name for name, d in SHIPPED_MODELS.items() if d == directory]
        if (path is None or shipped) and not is_saved_model(directory):
            raise ModelError(
                f"the {shipped[0] if shipped else 'paper'} model is not shipped in this "
                f"version: {manifest_path(directory)} does not exist. Shipped: "
                f"{', '.join(n for n, d in SHIPPED_MODELS.items() if is_saved_model(d)) or 'none'};"
                " load a model directory with PiDOC.load(path), or the authors' v0.1 release "
                "with PiDOC.from_v01('weights/pidoc-v0.1') (age/distance network only)."
            )
        manifest = read_manifest(directory)
        where, files = manifest_path(directory), manifest.get("files", {})
        nets = {}
        for role, entry in manifest.get("networks", {}).items():
            if role not in _FILES:
                raise ModelError(f"{where}: unknown network {role!r}")
            fname = entry.get("file")
            if fname not in files:
                raise ModelError(
                    f"{where}: network {role!r} file {fname!r} has no checksum in 'files'"
                )
            try:
                net = networks.build_network(entry["architecture"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(
                    f"{where}: cannot build network {role!r} from its architecture: {exc}"
                ) from exc
            try:
                net.load_weights(directory / fname)
            except Exception as exc:  # Keras raises ValueError, OSError, KeyError...
                raise ModelError(f"cannot load weights {directory / fname}: {exc}") from exc
            nets[role] = (net, entry["architecture"])
        if not nets:
            raise ModelError(f"{where}: lists no networks")
        provenance = dict(manifest.get("provenance", {}))
        provenance["loaded_from"] = str(directory)
        return cls(
            mass_network=nets.get("mass", (None, None))[0],
            mass_ml_network=nets.get("mass_ml", (None, None))[0],
            age_distance_network=nets.get("age_distance", (None, None))[0],
            mass_architecture=nets.get("mass", (None, None))[1],
            mass_ml_architecture=nets.get("mass_ml", (None, None))[1],
            age_distance_architecture=nets.get("age_distance", (None, None))[1],
            standardisation=manifest.get("standardisation", {}),
            provenance=provenance,
        )

    def manifest(self) -> dict:
        """The manifest :meth:`save` writes, without the ``files`` checksums."""
        nets = {}
        for role, net, arch in (
            ("mass", self.mass_network, self.mass_architecture),
            ("mass_ml", self.mass_ml_network, self.mass_ml_architecture),
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
        if self.has_flux_only_mass:
            outputs["mass"] = {
                "dims": ["sample", "y", "x"], "units": OUTPUT_UNITS["mass"],
                "network_output": "(log10 M - mass_mean) / mass_std per pixel",
            }
        if self.has_distance_aware_mass:
            outputs["ml"] = {
                "dims": ["sample", "y", "x"], "units": OUTPUT_UNITS["ml"],
                "network_input": "[(log10 F - flux_mean) / flux_std, (log10 d - "
                                 "log_distance_mean) / log_distance_std] (d in kpc)",
                "network_output": "(log10 M/L_V - ml_mean) / ml_std per pixel; log10 M = "
                                  "log10 M/L_V + log10 F + log10(4 pi) + 2 log10 d",
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
                    "pixel_arcsec": PIXEL_ARCSEC,
                    "units": "log10(Lsun kpc-2)",
                    "network_input": "(log10 F - flux_mean) / flux_std",
                }
            },
            "outputs": outputs,
            "standardisation": self.standardisation,
            "networks": nets,
            "provenance": self.provenance,
        }

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
                              ("mass_ml", self.mass_ml_network),
                              ("age_distance", self.age_distance_network)):
                if net is None:
                    continue
                fpath = tmp / _FILES[role]
                net.save_weights(fpath)
                files[fpath.name] = {"sha256": sha256(fpath), "bytes": fpath.stat().st_size}
            manifest["files"] = files
            _write_json(manifest_path(tmp), manifest)
            replace_directory(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

