"""Shared pieces of :mod:`pidoc_core.training`: the kinds of network, the paper's settings, the
layout of a run directory, :class:`TrainingError` and the argument checks."""

from __future__ import annotations

from ..errors import PidocError

#: The networks: kind -> default builder of :mod:`pidoc_core.networks`. ``'mass'`` is the
#: paper's flux-only mass network, ``'mass-ml'`` the distance-aware one (flux + log10 distance ->
#: log10 M/L_V per pixel), ``'age-distance'`` the CNN.
KINDS = {"mass": "build_encoder_decoder", "mass-ml": "build_mass_unet",
         "age-distance": "build_age_distance_cnn"}
#: Builders each kind may use: the paper's network and π-DOC Explorer's CPU recipe.
BUILDERS = {"mass": ("build_encoder_decoder", "build_mass_unet"),
            "mass-ml": ("build_mass_unet",),
            "age-distance": ("build_age_distance_cnn", "build_age_distance_net")}
#: Adam learning rates of the paper (Sect. 3.1.1 and 3.1.2); 10^-3 for the distance-aware net.
PAPER_LEARNING_RATES = {"mass": 10**-2.5, "mass-ml": 1e-3, "age-distance": 1e-4}
#: Losses of the paper: perceptual (Appendix A) for the mass maps, MSE for distance and age.
PAPER_LOSSES = {"mass": "perceptual", "mass-ml": "mse", "age-distance": "mse"}
#: Learning-rate schedules of :func:`fit`.
LR_SCHEDULES = ("constant", "cosine")
#: Keys of the caller's data provenance that are copied into the exported model's provenance.
_PREDICTION_PROVENANCE = ("training_mass_to_light", "training_grid")
#: Sub-directories and files of ``out_dir``.
CHECKPOINT_DIR = "checkpoints"
CSV_NAME = "training_log.csv"
LOG_DIR = "logs"
EXPORT_DIR = "model"

_ROLES = {"mass": "mass", "mass-ml": "mass_ml", "age-distance": "age_distance"}
_CKPT_FORMAT = "pidoc-training-checkpoint"
_CKPT_VERSION = 1
_CKPT_PREFIX = "epoch-"
_CKPT_SUFFIX = ".npz"


class TrainingError(PidocError):
    """Training cannot start or resume as asked; the message says why and what to do."""


def _check_kind(kind):
    k = str(kind).replace("_", "-").lower()
    if k not in KINDS:
        raise TrainingError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return k


def _positive_int(name, value, *, allow_zero=False):
    try:
        ok = int(value) == value and (int(value) >= 0 if allow_zero else int(value) >= 1)
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(value, bool):
        raise TrainingError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                         f"integer, got {value!r}")
    return int(value)
