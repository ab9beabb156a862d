"""PiDOC: trained pi-DOC networks with their standardisation, loading, saving and prediction.

A :class:`PiDOC` holds an optional mass network (flux map -> mass map, the encoder-decoder of
:func:`pidoc_core.networks.build_encoder_decoder`), an optional age/distance network (flux map ->
``[distance, age]``, :func:`pidoc_core.networks.build_age_distance_cnn`) and the standardisation
constants of their training set. :meth:`PiDOC.predict` takes log10 flux maps in Lsun kpc^-2 and
returns an :class:`xarray.Dataset` in physical units; standardisation happens inside.

Sources of a PiDOC:

- :func:`open_model`: the one loader, for a saved model directory or the v0.1 release (decided by
  :func:`is_saved_model`); ``open_model()`` is the shipped model in ``weights/pidoc/``.
- :meth:`PiDOC.from_v01`: the authors' Keras 2.3.1 release (Chardin & Bianchini 2021): ``CED.json``
  + ``CED_200.h5`` and ``CNN.json`` + ``CNN_100.h5`` with the standardisation ``.npy`` files.
- :meth:`PiDOC.load`: a directory written by :meth:`PiDOC.save`: a manifest (architecture
  arguments, standardisation, conventions, provenance, sha256 of each file) and one
  ``.weights.h5`` per network.
- :meth:`PiDOC.build`: freshly initialised networks, e.g. for training.

Conventions (the published networks'): input maps are 160 x 160 pixels of 0.25", values
log10(F / (Lsun kpc^-2)) standardised as ``(flux - flux_mean) / flux_std``; the mass network
outputs standardised log10(M / Msun) per pixel; the age/distance network outputs ``[distance, age]``
standardised with ``distance_age_mean``/``distance_age_std`` (v0.1: one joint scalar pair,
29.63 and 32.40, for distance in kpc and age in Gyr).

Modules: :mod:`.container` (the class, :func:`open_model`), :mod:`.io` (manifest, checksums,
save/load), :mod:`.v01` (Keras 2 import), :mod:`.predict` (checked input, XLA batches),
:mod:`.spec` (outputs, units, standardisation keys, :class:`ModelError`).
"""

from .container import PiDOC, observation_model, open_model
from .io import (DEFAULT_WEIGHTS_DIR, MANIFEST_NAME, SHIPPED_MODELS, is_saved_model, manifest_path,
                 resolve_model_path)
from .spec import OUTPUT_UNITS, OUTPUTS, STANDARDISATION_KEYS, ModelError

_STANDARDISATION_KEYS = STANDARDISATION_KEYS  # the name before the split; kept for old imports

__all__ = [
    "ModelError",
    "PiDOC",
    "OUTPUTS",
    "OUTPUT_UNITS",
    "MANIFEST_NAME",
    "DEFAULT_WEIGHTS_DIR",
    "SHIPPED_MODELS",
    "STANDARDISATION_KEYS",
    "open_model",
    "observation_model",
    "is_saved_model",
    "manifest_path",
    "resolve_model_path",
]
