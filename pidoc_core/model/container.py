"""The PiDOC container: networks with their standardisation, checked at construction.

Its other jobs live in mixins, one module each: saving and loading with checksums
(:mod:`.io`), the import of the authors' v0.1 release (:mod:`.v01`), and prediction
(:mod:`.predict`). :func:`open_model` is the one loader for "a saved model or the v0.1 release".
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import keras
import numpy as np

from .. import networks
from .io import SHIPPED_MODELS, SavedModelIO, is_saved_model, resolve_model_path
from .predict import Predictor
from .spec import OUTPUTS, STANDARDISATION_KEYS, ModelError, as_float_or_pair
from .v01 import V01Import

__all__ = ["PiDOC", "open_model", "observation_model"]

_STANDARDISATION_KEYS = STANDARDISATION_KEYS


class PiDOC(Predictor, SavedModelIO, V01Import):
    """The pi-DOC networks with their standardisation constants.

    Parameters
    ----------
    mass_network : keras.Model, optional
        The paper's flux-only network: standardised log10 flux ``(n, H, W, 1)`` -> standardised
        log10 mass ``(n, H, W, 1)``.
    mass_ml_network : keras.Model, optional
        The distance-aware network: standardised log10 flux and a constant map of the
        standardised log10 distance ``(n, H, W, 2)`` -> standardised log10 M/L_V per pixel
        ``(n, H, W, 1)``; mass = M/L_V x L with L = 4 pi d^2 F per pixel.
    age_distance_network : keras.Model, optional
        Standardised log10 flux ``(n, H, W, 1)`` -> ``(n, 2)`` standardised ``[distance, age]``.
    standardisation : dict
        ``flux_mean``, ``flux_std`` (log10 Lsun kpc^-2); ``mass_mean``, ``mass_std`` (log10 Msun,
        needed with a mass network); ``distance_age_mean``, ``distance_age_std`` (needed with an
        age/distance network): a scalar applied to both outputs (v0.1) or ``[distance (kpc),
        age (Gyr)]`` pairs; ``ml_mean``, ``ml_std`` (log10 Msun/Lsun) and
        ``log_distance_mean``, ``log_distance_std`` (log10 kpc) with a distance-aware network.
    mass_architecture, mass_ml_architecture, age_distance_architecture : dict, optional
        Builder records ``{"builder": ..., "kwargs": ...}``; taken from models made by
        :mod:`pidoc_core.networks` builders when not given. Needed by :meth:`save`.
    provenance : dict, optional
        Free-form description of where the weights come from; stored in manifests.

    Attributes
    ----------
    xla : bool
        Whether :meth:`predict` sends full batches of at least :attr:`XLA_MIN_BATCH` maps through
        an XLA-compiled call (compiled once per network and batch size, ~1-2 s; equal to
        ``predict_on_batch`` to ~1e-6). Default False: on a CPU it made the paper's
        encoder-decoder ~1.4x faster, but the compact U-Nets with bilinear up-sampling 2x slower
        (``benchmarks/bench_inference.py`` measures both).

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
        mass_ml_network: keras.Model | None = None,
        age_distance_network: keras.Model | None = None,
        standardisation: dict,
        mass_architecture: dict | None = None,
        mass_ml_architecture: dict | None = None,
        age_distance_architecture: dict | None = None,
        provenance: dict | None = None,
    ):
        if mass_network is None and mass_ml_network is None and age_distance_network is None:
            raise ModelError("a PiDOC needs a mass network, an age/distance network or both")
        self.mass_network = mass_network
        self.mass_ml_network = mass_ml_network
        self.age_distance_network = age_distance_network
        self.mass_architecture = mass_architecture or (
            networks.architecture_of(mass_network) if mass_network is not None else None
        )
        self.mass_ml_architecture = mass_ml_architecture or (
            networks.architecture_of(mass_ml_network) if mass_ml_network is not None else None
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
        if mass_ml_network is not None:
            ml_shape = tuple(mass_ml_network.input_shape[1:])
            if len(ml_shape) != 3 or ml_shape[-1] != 2:
                raise ModelError(f"the distance-aware network must take (H, W, 2) maps (flux, "
                                 f"log10 distance), not {ml_shape}")
            shapes.add((*ml_shape[:2], 1))
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
        self.xla = False
        self._compiled, self._folded = {}, {}

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
        if self.mass_ml_network is not None:
            needed += ["ml_mean", "ml_std", "log_distance_mean", "log_distance_std"]
        if self.age_distance_network is not None:
            needed += ["distance_age_mean", "distance_age_std"]
        missing = [k for k in needed if s.get(k) is None]
        if missing:
            raise ModelError(f"standardisation lacks {missing}")
        out = {}
        for key in _STANDARDISATION_KEYS:
            if s.get(key) is None:
                continue
            value = as_float_or_pair(key, s[key])
            if key.startswith(("flux", "mass", "ml", "log_distance")) and isinstance(value, list):
                raise ModelError(f"standardisation {key} must be a scalar, got {s[key]!r}")
            out[key] = value
        return out

    # -- properties --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Which model this is, in words: a shipped model's name (``'paper'``, ``'wide'``), else
        the directory it was loaded from, else ``'pi-DOC (not saved)'``."""
        loaded = self.provenance.get("loaded_from")
        if loaded is None:
            return "pi-DOC (not saved)"
        for name, directory in SHIPPED_MODELS.items():
            if Path(loaded).resolve() == Path(directory).resolve():
                return name
        return str(loaded)

    @property
    def has_mass(self) -> bool:
        """Whether a mass network (flux-only or distance-aware) is present."""
        return self.mass_network is not None or self.mass_ml_network is not None

    @property
    def has_flux_only_mass(self) -> bool:
        """Whether the paper's flux-only mass network is present."""
        return self.mass_network is not None

    @property
    def has_distance_aware_mass(self) -> bool:
        """Whether the distance-aware (M/L) mass network is present."""
        return self.mass_ml_network is not None

    @property
    def has_age_distance(self) -> bool:
        """Whether an age/distance network is present."""
        return self.age_distance_network is not None

    def __repr__(self):
        nets = [n for n, net in (("mass", self.mass_network),
                                 ("distance-aware mass", self.mass_ml_network),
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
    def combine(cls, *, mass: "PiDOC | None" = None, age_distance: "PiDOC",
                mass_ml: "PiDOC | None" = None, provenance: dict | None = None) -> "PiDOC":
        """One model from networks trained separately.

        Parameters
        ----------
        mass : PiDOC, optional
            A model holding the flux-only mass network.
        age_distance : PiDOC
            A model holding the age/distance network.
        mass_ml : PiDOC, optional
            A model holding the distance-aware mass network.
        provenance : dict, optional
            More provenance entries of the combined model (e.g. interval calibration).

        All must standardise the input flux maps identically (train with
        ``--flux-standardisation-from``).

        Raises
        ------
        ModelError
            If a network is missing or the flux standardisations differ.
        """
        if mass is None and mass_ml is None:
            raise ModelError("combine: give a 'mass' or a 'mass_ml' model")
        if mass is not None and mass.mass_network is None:
            raise ModelError("combine: the 'mass' model has no mass network")
        if mass_ml is not None and mass_ml.mass_ml_network is None:
            raise ModelError("combine: the 'mass_ml' model has no distance-aware mass network")
        if age_distance.age_distance_network is None:
            raise ModelError("combine: the 'age_distance' model has no age/distance network")
        parts = {"mass": mass, "mass_ml": mass_ml, "age_distance": age_distance}
        parts = {k: v for k, v in parts.items() if v is not None}
        for name, part in parts.items():
            for key in ("flux_mean", "flux_std"):
                a, b = part.standardisation[key], age_distance.standardisation[key]
                if not np.isclose(a, b, rtol=1e-6, atol=0.0):
                    raise ModelError(f"combine: the networks standardise flux differently ({key}"
                                     f" {a!r} vs {b!r}); retrain one with "
                                     "--flux-standardisation-from")
        prefixes = {"mass": ("flux", "mass"), "mass_ml": ("ml", "log_distance"),
                    "age_distance": ("flux", "distance_age")}
        standardisation, merged = {}, {}
        for name, part in parts.items():
            standardisation.update({k: v for k, v in part.standardisation.items()
                                    if k.startswith(prefixes[name])})
            merged.update(part.provenance)
            merged[f"{name}_network"] = dict(part.provenance)
        merged.update(provenance or {})
        merged.pop("loaded_from", None)
        return cls(mass_network=None if mass is None else mass.mass_network,
                   mass_ml_network=None if mass_ml is None else mass_ml.mass_ml_network,
                   age_distance_network=age_distance.age_distance_network,
                   standardisation=standardisation,
                   mass_architecture=None if mass is None else mass.mass_architecture,
                   mass_ml_architecture=None if mass_ml is None else mass_ml.mass_ml_architecture,
                   age_distance_architecture=age_distance.age_distance_architecture,
                   provenance=merged)



def open_model(path: str | os.PathLike | None = None) -> PiDOC:
    """Load a pi-DOC model from wherever it is: the one loader of the package.

    Parameters
    ----------
    path : path-like, optional
        A directory written by :meth:`PiDOC.save` (it holds a manifest; loaded with
        :meth:`PiDOC.load`, checksums verified) or else the authors' v0.1 release directory
        (:meth:`PiDOC.from_v01`), or a shipped model's name (``'paper'``, ``'wide'``;
        :data:`~pidoc_core.model.io.SHIPPED_MODELS`). ``None``: the shipped ``'paper'`` model in
        ``weights/pidoc/``.

    Returns
    -------
    PiDOC

    Raises
    ------
    ModelError
        As :meth:`PiDOC.load` or :meth:`PiDOC.from_v01`; the message names the file.
    """
    path = resolve_model_path(path)
    if is_saved_model(path) or path in SHIPPED_MODELS.values():
        return PiDOC.load(path)
    return PiDOC.from_v01(path)


def observation_model(path: str | os.PathLike | None = None) -> PiDOC:
    """The model for real images: ``path`` (as :func:`open_model`), else the shipped ``'wide'``
    model (trained on clusters like the observed ones) when it is shipped, else ``'paper'``."""
    if path is not None:
        return open_model(path)
    return open_model("wide" if is_saved_model(SHIPPED_MODELS["wide"]) else "paper")
