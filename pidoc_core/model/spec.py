"""What a pi-DOC model takes and gives: output names and units, standardisation keys, errors.

Shared by the container (:mod:`.container`), saved-model I/O (:mod:`.io`), the v0.1 import
(:mod:`.v01`) and prediction (:mod:`.predict`).
"""

from __future__ import annotations

import numpy as np

from ..errors import PidocError

__all__ = ["ModelError", "OUTPUTS", "OUTPUT_UNITS", "STANDARDISATION_KEYS", "as_float_or_pair",
           "training_info_key", "training_infos"]

#: Order of the age/distance network's outputs.
OUTPUTS = ("distance", "age")
#: Units of the outputs of :meth:`PiDOC.predict <pidoc_core.model.PiDOC.predict>`.
OUTPUT_UNITS = {"mass": "log10(Msun)", "ml": "log10(Msun/Lsun)", "distance": "kpc",
                "age": "Gyr"}
#: Keys of a model's standardisation constants (log10 Lsun kpc^-2, log10 Msun, kpc and Gyr).
STANDARDISATION_KEYS = (
    "flux_mean",
    "flux_std",
    "mass_mean",
    "mass_std",
    "distance_age_mean",
    "distance_age_std",
    "ml_mean",
    "ml_std",
    "log_distance_mean",
    "log_distance_std",
)


#: Prefix of the keys of the extra training stores' descriptions in a training record.
_EXTRA_TRAIN_INFO = "extra_train_info_"


def training_info_key(k: int | None = None) -> str:
    """Key of a training store's description in a manifest's training record: the training
    split's (``k`` None), or the ``k``-th extra training store's (``pidoc train --extra-train``)."""
    return "train_info" if k is None else f"{_EXTRA_TRAIN_INFO}{int(k)}"


def training_infos(data: dict) -> list:
    """The descriptions of every store a network was trained on, from a training record's
    ``data``: the training split's first, then the extra stores' in order.

    Examples
    --------
    >>> training_infos({"train_info": "a", "validation_info": "v", "extra_train_info_1": "c",
    ...                 "extra_train_info_0": "b"})
    ['a', 'b', 'c']
    """
    infos = [data[training_info_key()]] if training_info_key() in data else []
    n = len(_EXTRA_TRAIN_INFO)
    extra = sorted((int(key[n:]), info) for key, info in data.items()
                   if key.startswith(_EXTRA_TRAIN_INFO) and key[n:].isdigit())
    return infos + [info for _, info in extra]


class ModelError(PidocError):
    """A model file, manifest or input map that pi-DOC cannot use; the message says why."""


def as_float_or_pair(name, value):
    """A standardisation constant as a float or a ``[distance, age]`` pair, checked.

    Parameters
    ----------
    name : str
        Its key (one of :data:`STANDARDISATION_KEYS`); ``*_std`` values must be > 0.
    value : float or sequence of 2 floats
        The constant, in the units of its quantity.

    Raises
    ------
    ModelError
        Not a scalar or pair, not finite, or a non-positive ``*_std``.
    """
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
